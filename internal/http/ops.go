package http

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"

	httpSwagger "github.com/swaggo/http-swagger/v2"

	"github.com/ironflow/ironflow/openapi"
)

// Status is the body of the health and readiness checks.
type Status struct {
	Status string `json:"status" example:"ok"`
}

// handleHealthz answers while the process is up.
//
//	@ID			healthz
//	@Security
//	@Summary		Liveness
//	@Description	200 while the process is up; it does not touch the database.
//	@Tags			operations
//	@Produce		json
//	@Success		200	{object}	Status
//	@Router			/healthz [get]
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, Status{Status: "ok"})
}

// handleReadyz answers 200 when the readiness function reports nothing wrong (the
// server's: the store answers and its migrations are applied).
//
//	@ID			readyz
//	@Security
//	@Summary		Readiness
//	@Description	200 when the database answers and its migrations are applied, else 503.
//	@Tags			operations
//	@Produce		json
//	@Produce		application/problem+json
//	@Success		200	{object}	Status
//	@Failure		503	{object}	Problem	"database unreachable or not migrated"
//	@Router			/readyz [get]
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	if s.ready == nil {
		return writeJSON(w, http.StatusOK, Status{Status: "ready"})
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.readyTimeout)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.log.WarnContext(r.Context(), "not ready", "error", err)
		return fmt.Errorf("%w: %w", errNotReady, err)
	}
	return writeJSON(w, http.StatusOK, Status{Status: "ready"})
}

// handleMetrics exposes the Prometheus metrics.
//
//	@ID			metrics
//	@Summary		Prometheus metrics
//	@Description	Inputs by workflow type and outcome, decision latency, HTTP requests by route and status, Go runtime and process metrics, in the Prometheus text format.
//	@Tags			operations
//	@Produce		plain
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Success		200	{string}	string	"Prometheus text exposition"
//	@Failure		401	{object}	Problem	"missing or wrong API key"
//	@Failure		429	{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Router			/metrics [get]
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	s.promHandler.ServeHTTP(w, r)
	return nil
}

// handleOpenAPI serves the generated spec.
//
//	@ID			getOpenAPI
//	@Security
//	@Summary		OpenAPI description
//	@Description	This document (OpenAPI 3.1), generated from the annotations in the source.
//	@Tags			operations
//	@Produce		json
//	@Success		200	{object}	object
//	@Router			/openapi.json [get]
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	writeRaw(w, http.StatusOK, openapi.JSON())
	return nil
}

// handleDocsRedirect sends /docs to the Swagger UI page. Like the other /docs and /ui
// routes it serves a browser page, not an API operation, so it has no annotations and
// is not in the OpenAPI document.
func (s *Server) handleDocsRedirect(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, "/docs/index.html", http.StatusFound)
	return nil
}

// handleDocs serves the Swagger UI assets under a Content-Security-Policy that lets
// the page run only its own scripts: an API key typed into the page can reach no
// other origin. doc.json, which http-swagger answers from swag's registry (empty here:
// a 500), is the spec.
func (s *Server) handleDocs(w http.ResponseWriter, r *http.Request) error {
	switch r.URL.Path {
	case "/docs/":
		return s.handleDocsRedirect(w, r)
	case "/docs/doc.json":
		return s.handleOpenAPI(w, r)
	}
	w.Header().Set("Content-Security-Policy", s.docsCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.swaggerUI.ServeHTTP(w, r)
	return nil
}

// newSwaggerUI returns the Swagger UI handler and the Content-Security-Policy of its
// pages. The page's one inline script (its configuration) is allowed by its hash,
// computed from the page itself so that an http-swagger upgrade cannot silently break
// it. Authorization is not persisted: the key lives as long as the tab.
func newSwaggerUI() (http.Handler, string) {
	h := httpSwagger.Handler(
		httpSwagger.URL("/openapi.json"),
		httpSwagger.PersistAuthorization(false),
	)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/docs/index.html", nil))
	scripts := []string{"'self'"}
	for _, m := range inlineScript.FindAllSubmatch(rec.Body.Bytes(), -1) {
		sum := sha256.Sum256(m[1])
		scripts = append(scripts, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	csp := "default-src 'none'; script-src " + strings.Join(scripts, " ") +
		"; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:" +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return h, csp
}

// inlineScript matches a <script> element without src and its content.
var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
