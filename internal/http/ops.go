package http

import (
	"context"
	"fmt"
	"net/http"

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
//	@Description	This document (Swagger 2.0), generated from the source by swag.
//	@Tags			operations
//	@Produce		json
//	@Success		200	{object}	object
//	@Router			/openapi.json [get]
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	writeRaw(w, http.StatusOK, openapi.JSON())
	return nil
}

// handleDocsRedirect sends /docs to the Swagger UI page.
//
//	@ID			docsRedirect
//	@Security
//	@Summary		Swagger UI
//	@Description	Redirects to the Swagger UI, served from embedded assets (works offline).
//	@Tags			operations
//	@Success		302
//	@Router			/docs [get]
func (s *Server) handleDocsRedirect(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, "/docs/index.html", http.StatusFound)
	return nil
}

// handleDocs serves the Swagger UI assets.
//
//	@ID			docsAsset
//	@Security
//	@Summary		Swagger UI assets
//	@Description	The Swagger UI page (index.html) and its scripts and styles.
//	@Tags			operations
//	@Produce		html
//	@Param			file	path	string	true	"asset name, e.g. index.html"
//	@Success		200		{string}	string	"the asset"
//	@Success		302		"/docs/ redirects to /docs/index.html"
//	@Failure		404		{string}	string	"no such asset"
//	@Router			/docs/{file} [get]
func (s *Server) handleDocs(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Path == "/docs/" {
		return s.handleDocsRedirect(w, r)
	}
	s.swaggerUI.ServeHTTP(w, r)
	return nil
}

func newSwaggerUI() http.Handler {
	return httpSwagger.Handler(
		httpSwagger.URL("/openapi.json"),
		httpSwagger.PersistAuthorization(true),
	)
}
