// Package http speaks HTTP for ironflow: one chi route table, JSON handlers over the
// engine, RFC 9457 problem details from one error mapping table, bearer-key auth,
// access logs, Prometheus metrics, the generated OpenAPI spec and Swagger UI.
//
// The swag annotations on the handlers are the source of openapi/ (`make generate`).
//
//	@title						ironflow API
//	@version					1.0
//	@description				Event-sourced workflow engine. Define a workflow type as a declarative state machine, send inputs, and get a decision for each: accepted (200), rejected (409) or already completed (409). Errors are RFC 9457 application/problem+json.
//	@BasePath					/
//	@accept						json
//	@produce					json
//	@security					BearerAuth
//
//	@securityDefinitions.apikey	BearerAuth
//	@in							header
//	@name						Authorization
//	@description				"Bearer <key>" with a key from IRONFLOW_API_KEYS. Not needed when the server runs without keys (loopback only).
//
//	@tag.name					workflow-types
//	@tag.description			Versioned workflow definitions and their diagrams.
//	@tag.name					workflows
//	@tag.description			Inputs, decisions and the history of workflow instances.
//	@tag.name					webhooks
//	@tag.description			The endpoint each workflow type's effects are delivered to, signed per Standard Webhooks.
//	@tag.name					effects
//	@tag.description			Effect deliveries, their attempt logs and operator retries.
//	@tag.name					timers
//	@tag.description			Durable timers and delayed inputs; operator retries and cancellation.
//	@tag.name					events
//	@tag.description			The global event feed of every instance, paged, long-polled or streamed (Server-Sent Events).
//	@tag.name					operations
//	@tag.description			Health, readiness and metrics.
package http

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/feed"
	"github.com/ironflow/ironflow/internal/http/ui"
)

// Config wires a Server.
type Config struct {
	// Engine executes inputs and answers queries. Required.
	Engine *engine.Engine
	// Logger receives access logs and errors; discarded when nil.
	Logger *slog.Logger
	// APIKeys are the accepted bearer tokens; none disables authentication (the caller
	// makes sure the server then listens on loopback only).
	APIKeys []string
	// MaxBodyBytes bounds request bodies (413 beyond); 1 MiB when zero.
	MaxBodyBytes int64
	// Gatherer is what /metrics exposes; Metrics must be registered in it. An empty
	// registry when nil.
	Gatherer prometheus.Gatherer
	// Metrics records HTTP requests; a private registry's when nil.
	Metrics *Metrics
	// ReadyFunc tells /readyz whether the server can do its work (cmd/server passes the
	// store's Ping: the database answers and its migrations are applied); an error is
	// 503. When nil, /readyz answers 200 like /healthz.
	ReadyFunc func(ctx context.Context) error
	// ReadyTimeout bounds one ReadyFunc call; 2 s when zero.
	ReadyTimeout time.Duration
	// RateLimit is the number of requests per second each API key (or, without a valid
	// key, each client IP) may make to the authenticated routes; 0 is no limit.
	RateLimit int
	// Feed follows the event feed for the waiting routes (wait=, If-None-Match, the
	// event stream); the caller starts and stops it. Without it requests answer at
	// once and the event stream is unavailable (503).
	Feed *feed.Hub
	// MaxWait caps the wait= of long-polls; 60 s when zero.
	MaxWait time.Duration
	// MaxStreams bounds the event streams open per API key (or client address); 8
	// when zero.
	MaxStreams int
	// StreamHeartbeat is the interval of the event stream's keep-alive comments; 15 s
	// when zero.
	StreamHeartbeat time.Duration
}

// Server is the HTTP API. Create it with New; it is an http.Handler.
type Server struct {
	engine       *engine.Engine
	ready        func(ctx context.Context) error
	log          *slog.Logger
	keyHashes    [][sha256.Size]byte
	maxBody      int64
	gatherer     prometheus.Gatherer
	metrics      *Metrics
	readyTimeout time.Duration
	promHandler  http.Handler
	swaggerUI    http.Handler
	docsCSP      string       // the Content-Security-Policy of the Swagger UI pages
	console      http.Handler // the web console's embedded assets under /ui
	handler      http.Handler

	// rateLimitPerSecond is Config.RateLimit.
	rateLimitPerSecond int

	// The waiting routes (feed.go).
	feed       *feed.Hub
	maxWait    time.Duration
	maxStreams int
	heartbeat  time.Duration
	streams    streamCounter
	closing    chan struct{} // closed by CloseStreams
	closeOnce  sync.Once
}

// New builds the Server and its router.
func New(cfg Config) *Server {
	s := &Server{
		engine:       cfg.Engine,
		ready:        cfg.ReadyFunc,
		log:          cfg.Logger,
		maxBody:      cfg.MaxBodyBytes,
		gatherer:     cfg.Gatherer,
		metrics:      cfg.Metrics,
		readyTimeout: cfg.ReadyTimeout,
		console:      ui.Handler("/ui"),

		rateLimitPerSecond: cfg.RateLimit,

		feed:       cfg.Feed,
		maxWait:    cmp.Or(cfg.MaxWait, defaultMaxWait),
		maxStreams: cmp.Or(cfg.MaxStreams, defaultMaxStreams),
		heartbeat:  cmp.Or(cfg.StreamHeartbeat, defaultStreamHeartbeat),
		streams:    streamCounter{open: make(map[string]int)},
		closing:    make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = 1 << 20
	}
	if s.metrics == nil || s.gatherer == nil {
		reg := prometheus.NewRegistry()
		if s.metrics == nil {
			s.metrics = NewMetrics(reg)
		}
		if s.gatherer == nil {
			s.gatherer = reg
		}
	}
	if s.readyTimeout <= 0 {
		s.readyTimeout = 2 * time.Second
	}
	for _, k := range cfg.APIKeys {
		s.keyHashes = append(s.keyHashes, sha256.Sum256([]byte(k)))
	}
	s.promHandler = promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{})
	s.swaggerUI, s.docsCSP = newSwaggerUI()
	s.handler = s.router()
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// handlerFunc is a handler that returns its error instead of writing it: the router
// turns every error into a problem through the one mapping table.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one entry of the route table.
type route struct {
	method  string
	pattern string
	// public routes need no API key.
	public bool
	// query names every query parameter the handler reads. Any other parameter, or one
	// given twice, is a 400 problem before the handler runs (DESIGN §10: an unknown
	// query parameter is refused as an unknown body field is), so a typo like ?sate=
	// never silently lists everything. A route that reads none leaves it nil;
	// anyQuery is only for the static assets of /docs and /ui.
	query   []string
	handler handlerFunc
}

// anyQuery lets a route take any query parameter: browsers add cache busters to
// asset URLs. No API route may use it.
const anyQuery = "*"

// routes is THE route table. To add a route: add it here with every query parameter its
// handler reads, and give the handler swag annotations declaring the same parameters;
// TestSpecMatchesRoutes checks that routes, methods and query parameters here and in
// openapi/ agree.
func (s *Server) routes() []route {
	page := func(extra ...string) []string { return append(extra, "cursor", "limit") }
	return []route{
		// Operations.
		{http.MethodGet, "/healthz", true, nil, s.handleHealthz},
		{http.MethodGet, "/readyz", true, nil, s.handleReadyz},
		{http.MethodGet, "/metrics", false, nil, s.handleMetrics},
		{http.MethodGet, "/openapi.json", true, nil, s.handleOpenAPI},
		{http.MethodGet, "/docs", true, []string{anyQuery}, s.handleDocsRedirect},
		{http.MethodGet, "/docs/*", true, []string{anyQuery}, s.handleDocs},
		{http.MethodGet, "/ui", true, []string{anyQuery}, s.handleUIRedirect},
		{http.MethodGet, "/ui/*", true, []string{anyQuery}, s.handleUI},

		// Workflow types.
		{http.MethodGet, "/v1/workflow-types", false, page(), s.handleListDefinitions},
		{http.MethodPut, "/v1/workflow-types/{type}", false, nil, s.handlePutDefinition},
		{http.MethodGet, "/v1/workflow-types/{type}", false, nil, s.handleGetDefinition},
		{http.MethodGet, "/v1/workflow-types/{type}/versions", false, page(), s.handleListDefinitionVersions},
		{http.MethodGet, "/v1/workflow-types/{type}/versions/{version}", false, nil, s.handleGetDefinitionVersion},
		{http.MethodGet, "/v1/workflow-types/{type}/diagram", false, []string{"format", "version"}, s.handleDiagram},

		// Workflows.
		{http.MethodGet, "/v1/workflows", false, page("type", "state", "status", "id_prefix", "created_after", "created_before"), s.handleListWorkflows},
		{http.MethodGet, "/v1/workflow-counts", false, []string{"type", "created_after", "created_before"}, s.handleCountWorkflows},
		{http.MethodPost, "/v1/workflows/{type}/inputs", false, []string{"dry_run"}, s.handleInputNewWorkflow},
		{http.MethodPost, "/v1/workflows/{type}/{id}/inputs", false, []string{"dry_run"}, s.handleInput},
		{http.MethodGet, "/v1/workflows/{type}/{id}", false, []string{"at_version", "wait"}, s.handleGetWorkflow},
		{http.MethodGet, "/v1/workflows/{type}/{id}/events", false, page("after", "wait"), s.handleListEvents},
		{http.MethodGet, "/v1/workflows/{type}/{id}/inputs", false, page(), s.handleListInputs},
		{http.MethodGet, "/v1/workflows/{type}/{id}/children", false, page("status"), s.handleListChildren},
		{http.MethodPost, "/v1/workflows/{type}/{id}/terminate", false, nil, s.handleTerminate},

		// The global event feed.
		{http.MethodGet, "/v1/events", false, page("after", "workflow_type", "wait"), s.handleListFeed},
		{http.MethodGet, "/v1/events/stream", false, []string{"after", "workflow_type"}, s.handleStreamFeed},

		// Webhooks, effects and timers.
		{http.MethodPut, "/v1/workflow-types/{type}/webhook", false, nil, s.handlePutWebhook},
		{http.MethodGet, "/v1/workflow-types/{type}/webhook", false, nil, s.handleGetWebhook},
		{http.MethodDelete, "/v1/workflow-types/{type}/webhook", false, nil, s.handleDeleteWebhook},
		{http.MethodPost, "/v1/workflow-types/{type}/webhook/rotate-secret", false, nil, s.handleRotateWebhookSecret},
		{http.MethodGet, "/v1/workflows/{type}/{id}/effects", false, page("status"), s.handleListWorkflowEffects},
		{http.MethodGet, "/v1/workflows/{type}/{id}/timers", false, page("status"), s.handleListWorkflowTimers},
		{http.MethodGet, "/v1/effects", false, page("status", "workflow_type", "workflow_id"), s.handleListEffects},
		{http.MethodGet, "/v1/effects/{id}", false, nil, s.handleGetEffect},
		{http.MethodDelete, "/v1/effects/{id}", false, nil, s.handleCancelEffect},
		{http.MethodPost, "/v1/effects/{id}/retry", false, nil, s.handleRetryEffect},
		{http.MethodGet, "/v1/timers", false, page("status", "workflow_type", "workflow_id"), s.handleListTimers},
		{http.MethodGet, "/v1/timers/{id}", false, nil, s.handleGetTimer},
		{http.MethodDelete, "/v1/timers/{id}", false, nil, s.handleCancelTimer},
		{http.MethodPost, "/v1/timers/{id}/retry", false, nil, s.handleRetryTimer},
	}
}

func (s *Server) router() http.Handler {
	r := chi.NewRouter()
	r.Use(routeOnEscapedPath, withRequestID, s.accessLog, s.recoverPanics)
	r.NotFound(s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("%w: %s %s", errRouteNotFound, r.Method, r.URL.EscapedPath())
	}))
	mux := r
	r.MethodNotAllowed(s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		// A custom 405 handler loses chi's Allow header (RFC 9110 requires it): rebuild it.
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete} {
			if mux.Match(chi.NewRouteContext(), m, r.URL.EscapedPath()) {
				allowed = append(allowed, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return fmt.Errorf("%w: %s %s; allowed: %s", errMethodNotAllowed, r.Method, r.URL.EscapedPath(), strings.Join(allowed, ", "))
	}))
	limit := s.rateLimit(s.rateLimitPerSecond)
	for _, rt := range s.routes() {
		var h http.Handler = s.adapt(checkQuery(rt.query, rt.handler))
		if !rt.public {
			h = s.authenticate(h)
			if limit != nil {
				h = limit(h)
			}
		}
		r.Method(rt.method, rt.pattern, h)
	}
	return r
}

// adapt turns a handlerFunc into an http.HandlerFunc that writes its error as a
// problem.
func (s *Server) adapt(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}
