package http

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// Errors of the HTTP layer itself. Handlers wrap them with a detail message; the
// mapping table below turns them into statuses like every other sentinel.
var (
	errMalformed             = errors.New("malformed request")
	errUnknownQueryParameter = errors.New("unknown query parameter")
	errInvalidRequest        = errors.New("invalid request")
	errUnsupportedMediaType  = errors.New("unsupported media type")
	errBodyTooLarge          = errors.New("request body too large")
	errUnauthorized          = errors.New("unauthorized")
	errRateLimited           = errors.New("too many requests")
	errRouteNotFound         = errors.New("no such route")
	errMethodNotAllowed      = errors.New("method not allowed")
	errNotReady              = errors.New("not ready")
)

// Problem is an RFC 9457 problem details body, sent as application/problem+json for
// every error. The enum tag of Type lists every type of errorKinds, so generated
// clients can switch on it; TestSpecProblemTypes keeps the two equal.
type Problem struct {
	// Type identifies the kind of problem; docs/API.md describes each.
	Type   string `json:"type" example:"version_mismatch" enums:"type_not_found,workflow_not_found,webhook_not_found,effect_not_found,timer_not_found,not_found,method_not_allowed,malformed_request,unknown_query_parameter,invalid_id,invalid_argument,invalid_cursor,unauthorized,body_too_large,unsupported_media_type,rate_limited,unique_key_conflict,wrong_status,version_mismatch,invalid_definition,invalid_webhook,unknown_input,invalid_input,evaluation_failed,too_large,idempotency_key_reused,invalid_request,not_ready,unavailable,internal"`
	Title  string `json:"title" example:"Version mismatch"`
	Status int    `json:"status" example:"412"`
	Detail string `json:"detail,omitempty" example:"version mismatch"`
	// Instance is the request path.
	Instance string `json:"instance,omitempty" example:"/v1/workflows/order/o-1/inputs"`
	// RequestID matches the X-Request-Id response header and the access log.
	RequestID string `json:"request_id,omitempty" example:"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"`
	// Errors lists every validation problem with a JSON pointer to where it is.
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError is one validation problem: Path is a JSON pointer (RFC 6901) into the
// request body or the definition.
type FieldError struct {
	Path    string `json:"path" example:"/data/amount"`
	Message string `json:"message" example:"missing property 'amount'"`
}

// errorKind maps a sentinel error to a status and problem type.
type errorKind struct {
	err    error
	status int
	typ    string
	title  string
}

// errorKinds is THE table from errors to HTTP statuses: the first entry whose sentinel
// matches (errors.Is) wins. Anything unmatched is a 500 and is logged.
func errorKinds() []errorKind {
	return []errorKind{
		{engine.ErrTypeNotFound, http.StatusNotFound, "type_not_found", "Workflow type not found"},
		{engine.ErrInstanceNotFound, http.StatusNotFound, "workflow_not_found", "Workflow not found"},
		{engine.ErrWebhookNotFound, http.StatusNotFound, "webhook_not_found", "Webhook not found"},
		{engine.ErrEffectNotFound, http.StatusNotFound, "effect_not_found", "Effect not found"},
		{engine.ErrTimerNotFound, http.StatusNotFound, "timer_not_found", "Timer not found"},
		{store.ErrNotFound, http.StatusNotFound, "not_found", "Not found"},
		{errRouteNotFound, http.StatusNotFound, "not_found", "Not found"},
		{errMethodNotAllowed, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed"},

		{errMalformed, http.StatusBadRequest, "malformed_request", "Malformed request"},
		{errUnknownQueryParameter, http.StatusBadRequest, "unknown_query_parameter", "Unknown query parameter"},
		{engine.ErrInvalidID, http.StatusBadRequest, "invalid_id", "Invalid workflow id"},
		{engine.ErrInvalidArgument, http.StatusBadRequest, "invalid_argument", "Invalid argument"},
		{store.ErrInvalidCursor, http.StatusBadRequest, "invalid_cursor", "Invalid cursor"},
		{errUnauthorized, http.StatusUnauthorized, "unauthorized", "Unauthorized"},
		{errBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large"},
		{errUnsupportedMediaType, http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type"},
		{errRateLimited, http.StatusTooManyRequests, "rate_limited", "Too many requests"},

		{store.ErrUniqueKeyConflict, http.StatusConflict, "unique_key_conflict", "Unique key conflict"},
		{store.ErrWrongStatus, http.StatusConflict, "wrong_status", "Wrong status"},
		{store.ErrVersionMismatch, http.StatusPreconditionFailed, "version_mismatch", "Version mismatch"},

		{workflow.ErrInvalidDefinition, http.StatusUnprocessableEntity, "invalid_definition", "Invalid workflow definition"},
		{engine.ErrInvalidWebhook, http.StatusUnprocessableEntity, "invalid_webhook", "Invalid webhook"},
		{workflow.ErrUnknownInput, http.StatusUnprocessableEntity, "unknown_input", "Undeclared input type"},
		{workflow.ErrInvalidInput, http.StatusUnprocessableEntity, "invalid_input", "Invalid input"},
		{workflow.ErrEvaluation, http.StatusUnprocessableEntity, "evaluation_failed", "Expression evaluation failed"},
		{workflow.ErrTooLarge, http.StatusUnprocessableEntity, "too_large", "Too large"},
		{store.ErrIdempotencyMismatch, http.StatusUnprocessableEntity, "idempotency_key_reused", "Idempotency key reused with a different request"},
		{errInvalidRequest, http.StatusUnprocessableEntity, "invalid_request", "Invalid request"},

		{errNotReady, http.StatusServiceUnavailable, "not_ready", "Not ready"},
		{store.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
		{context.DeadlineExceeded, http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
		{context.Canceled, http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	}
}

// problemFor turns err into a problem. internal is true for a 500: the detail is then
// generic and the caller logs err.
func problemFor(err error) (p Problem, internal bool) {
	for _, k := range errorKinds() {
		if !errors.Is(err, k.err) {
			continue
		}
		p = Problem{Type: k.typ, Title: k.title, Status: k.status, Detail: clip(err.Error())}
		switch {
		case k.status == http.StatusServiceUnavailable:
			p.Detail = "the database is unavailable or the request timed out; retry later"
		case errors.Is(err, store.ErrUniqueKeyConflict):
			// The store's message names its backend and the holder's row; the client
			// gets what it can act on.
			p.Detail = "another running instance of this workflow type holds the same unique key; the key is free again once that instance ends"
		}
		var ve *workflow.ValidationError
		if errors.As(err, &ve) {
			for _, fe := range ve.Errors {
				p.Errors = append(p.Errors, FieldError{Path: clip(fe.Path), Message: clip(fe.Message)})
			}
		} else if errors.Is(err, workflow.ErrUnknownInput) {
			p.Errors = []FieldError{{Path: "/type", Message: clip(err.Error())}}
		}
		return p, false
	}
	return Problem{
		Type:   "internal",
		Title:  "Internal server error",
		Status: http.StatusInternalServerError,
		Detail: "an internal error occurred; the server log has it under this request id",
	}, true
}

// maxProblemText bounds each text of a problem: messages quote what the client sent
// (an input type, a field), and an error must not echo a megabyte back.
const maxProblemText = 1024

// clip shortens s to maxProblemText bytes, on a rune boundary, marking the cut.
func clip(s string) string {
	if len(s) <= maxProblemText {
		return s
	}
	cut := maxProblemText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "… (truncated)"
}

// writeError answers with the problem err maps to.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p, internal := problemFor(err)
	p.Instance = r.URL.EscapedPath()
	p.RequestID = requestID(r.Context())
	if internal {
		s.log.ErrorContext(r.Context(), "internal error", slog.String("request_id", p.RequestID), slog.Any("error", err))
	} else if p.Status == http.StatusServiceUnavailable {
		s.log.WarnContext(r.Context(), "unavailable", slog.String("request_id", p.RequestID), slog.Any("error", err))
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p Problem) {
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: Problem has only strings and ints
		body = []byte(`{"type":"internal","title":"Internal server error","status":500}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="ironflow"`)
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}
