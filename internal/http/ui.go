package http

import (
	"net/http"
)

// handleUIRedirect sends /ui to the console's index page.
//
//	@ID			consoleRedirect
//	@Security
//	@Summary		Web console
//	@Description	Redirects to /ui/, the web console: workflow types and their diagrams, instances with their history, effects and timers, dead letters with retry buttons, and a live overview. It calls this API with the key it asks for.
//	@Tags			operations
//	@Success		301
//	@Router			/ui [get]
func (s *Server) handleUIRedirect(w http.ResponseWriter, r *http.Request) error {
	s.console.ServeHTTP(w, r)
	return nil
}

// handleUI serves the console's embedded assets.
//
//	@ID			consoleAsset
//	@Security
//	@Summary		Web console assets
//	@Description	The console's page (/ui/ serves index.html), ES modules, stylesheet and vendored Mermaid bundle, embedded in the binary. Serving them needs no key; the data the console shows does.
//	@Tags			operations
//	@Produce		html
//	@Param			file	path	string	true	"asset path, e.g. js/app.js; empty for index.html"
//	@Success		200		{string}	string	"the asset"
//	@Success		304		"not modified (If-None-Match)"
//	@Failure		404		{string}	string	"no such asset"
//	@Router			/ui/{file} [get]
func (s *Server) handleUI(w http.ResponseWriter, r *http.Request) error {
	s.console.ServeHTTP(w, r)
	return nil
}
