package http

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
)

type ctxKey int

const requestIDKey ctxKey = iota

// requestID returns the id the request was given by withRequestID.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// withRequestID takes the client's X-Request-Id when it is a sane token, or makes one,
// and echoes it in the response so a client can quote it.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validHeaderToken(id) || len(id) > 128 {
			id = uuid.Must(uuid.NewV7()).String()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// accessLog writes one log line per request and records the request metrics. It runs
// outside recoverPanics so that a recovered panic is logged with its 500.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		d := time.Since(start)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		route := "unmatched"
		if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePattern() != "" {
			route = rctx.RoutePattern()
		}
		s.metrics.observeRequest(metricMethod(r.Method), route, status, d)
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(r.Context(), level, "http request",
			slog.String("request_id", requestID(r.Context())),
			slog.String("method", r.Method),
			slog.String("path", r.URL.EscapedPath()),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Int("bytes", ww.BytesWritten()),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000),
			slog.String("remote", r.RemoteAddr),
		)
	})
}

// metricMethod bounds the method label to the methods HTTP defines.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// recoverPanics turns a handler panic into a logged 500 problem instead of a dropped
// connection. It is a safety net: no input should reach it.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel value compared as net/http does
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "panic serving request",
				slog.String("request_id", requestID(r.Context())),
				slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())))
			s.writeError(w, r, fmt.Errorf("panic: %v", v))
		}()
		next.ServeHTTP(w, r)
	})
}

// keyIndex returns which configured API key r's "Authorization: Bearer <key>" carries.
// Keys are compared through their SHA-256, so the comparison takes the same time
// whatever the key's length or content, and every key is tried.
func (s *Server) keyIndex(r *http.Request) (int, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	index := -1
	for i, want := range s.keyHashes {
		index = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(got[:], want[:]), i, index)
	}
	return index, index >= 0 && strings.EqualFold(scheme, "Bearer")
}

// authenticate requires "Authorization: Bearer <key>" with one of the configured keys
// when there are any (keyIndex).
func (s *Server) authenticate(next http.Handler) http.Handler {
	if len(s.keyHashes) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.keyIndex(r); !ok {
			s.writeError(w, r, fmt.Errorf("%w: send Authorization: Bearer <key> with a key from IRONFLOW_API_KEYS", errUnauthorized))
			return
		}
		next.ServeHTTP(w, r)
	})
}
