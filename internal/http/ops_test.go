package http

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/store"
)

// TestReadyzAsksTheReadyFunc: /readyz is 200 while the readiness function reports
// nothing, 503 problem+json when it fails or outlasts ReadyTimeout, and 200 without
// one; /healthz never asks it.
func TestReadyzAsksTheReadyFunc(t *testing.T) {
	t.Parallel()
	failing := func(context.Context) error { return store.ErrUnavailable }
	slow := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	for _, tc := range []struct {
		name   string
		ready  func(context.Context) error
		status int
	}{
		{"ready", func(context.Context) error { return nil }, http.StatusOK},
		{"failing", failing, http.StatusServiceUnavailable},
		{"too slow", slow, http.StatusServiceUnavailable},
		{"none", nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := New(Config{Engine: engine.New(engine.Config{}), ReadyFunc: tc.ready, ReadyTimeout: 50 * time.Millisecond})
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			if tc.status != http.StatusOK {
				require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
				var p map[string]any
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
				require.Equal(t, "not_ready", p["type"])
			}
			rec = httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			require.Equal(t, http.StatusOK, rec.Code)
		})
	}
}
