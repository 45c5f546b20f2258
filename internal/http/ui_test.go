package http

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/store/sqlite"
)

// TestConsoleRoutes: the console's assets are served without a key (the page asks for
// one), while the API behind them still requires it.
func TestConsoleRoutes(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ui.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	srv := New(Config{Engine: engine.New(engine.Config{Store: st}), APIKeys: []string{"k"}})

	cases := []struct {
		target      string
		status      int
		contentType string
	}{
		{"/ui", http.StatusMovedPermanently, ""},
		{"/ui/", http.StatusOK, "text/html; charset=utf-8"},
		{"/ui/js/app.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{"/ui/style.css", http.StatusOK, "text/css; charset=utf-8"},
		{"/ui/missing.js", http.StatusNotFound, ""},
		{"/v1/workflow-types", http.StatusUnauthorized, "application/problem+json"},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.target, nil))
		require.Equal(t, c.status, rec.Code, c.target)
		if c.contentType != "" {
			require.Equal(t, c.contentType, rec.Header().Get("Content-Type"), c.target)
		}
	}
}
