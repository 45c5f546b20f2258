package http

import (
	"net/http"
)

// handleUIRedirect sends /ui to the console's index page. The console is a browser
// page, not an API operation: it has no annotations and is not in the OpenAPI document.
func (s *Server) handleUIRedirect(w http.ResponseWriter, r *http.Request) error {
	s.console.ServeHTTP(w, r)
	return nil
}

// handleUI serves the console's embedded assets.
func (s *Server) handleUI(w http.ResponseWriter, r *http.Request) error {
	s.console.ServeHTTP(w, r)
	return nil
}
