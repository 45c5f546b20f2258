package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ironflow/ironflow/internal/apitest"
	"github.com/ironflow/ironflow/internal/store/postgres"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// logSink collects the server's JSON log lines and reports the address of the
// "listening" line, which is how a test finds a server started on port 0.
type logSink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []map[string]any
	addr  chan string
}

func newLogSink() *logSink { return &logSink{addr: make(chan string, 1)} }

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadBytes('\n')
		if err != nil {
			// Keep the partial line for the next write.
			rest := append([]byte(nil), line...)
			l.buf.Reset()
			l.buf.Write(rest)
			break
		}
		var rec map[string]any
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		l.lines = append(l.lines, rec)
		if rec["msg"] == "listening" {
			if a, ok := rec["addr"].(string); ok {
				select {
				case l.addr <- a:
				default:
				}
			}
		}
	}
	return len(p), nil
}

// find returns the log records with message msg.
func (l *logSink) find(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, r := range l.lines {
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// testServer is a real server started by run in-process.
type testServer struct {
	t    testing.TB
	URL  string
	Key  string
	api  *apitest.Client
	logs *logSink
	// stop shuts the server down and checks that run returned cleanly; it runs once,
	// at cleanup at the latest.
	stop func()
}

// backends lists the stores every end-to-end test runs against.
var backends = []string{"sqlite", "postgres"}

// databaseURL returns an empty database of the given backend for one test (on
// PostgreSQL a migrated one from pgtest's pool).
func databaseURL(t testing.TB, backend string) string {
	t.Helper()
	if backend == "postgres" {
		return pgtest.MigratedDatabaseURL(t, postgres.Migrate)
	}
	return "sqlite://" + filepath.Join(t.TempDir(), "ironflow.db")
}

// startServer runs the server on 127.0.0.1:0 with env (IRONFLOW_* variables) over the
// defaults below and stops it when the test ends.
func startServer(t testing.TB, backend string, env map[string]string) *testServer {
	t.Helper()
	vars := map[string]string{
		"IRONFLOW_LISTEN_ADDR": "127.0.0.1:0",
		"IRONFLOW_LOG_FORMAT":  "json",
		"IRONFLOW_API_KEYS":    "test-key-1,test-key-2",
	}
	for k, v := range env {
		vars[k] = v
	}
	if vars["IRONFLOW_DATABASE_URL"] == "" {
		vars["IRONFLOW_DATABASE_URL"] = databaseURL(t, backend)
	}
	getenv := func(k string) string { return vars[k] }

	ctx, cancel := context.WithCancel(context.Background())
	logs := newLogSink()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, getenv, logs) }()

	var addr string
	select {
	case addr = <-logs.addr:
	case err := <-done:
		cancel()
		t.Fatalf("server exited before listening: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not log its address within 30s")
	}
	key := strings.Split(vars["IRONFLOW_API_KEYS"], ",")[0]
	s := &testServer{
		t:    t,
		URL:  "http://" + addr,
		Key:  key,
		api:  apitest.New("http://"+addr, apitest.Options{Key: key}),
		logs: logs,
	}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			s.api.Close()
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err, "run returned an error on shutdown")
			case <-time.After(40 * time.Second):
				t.Error("server did not shut down within 40s")
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

// req and response are the shared test client's request and response.
type (
	req      = apitest.Request
	response = apitest.Response
)

// do sends r to the server with its first API key unless r.NoAuth.
func (s *testServer) do(t *testing.T, r req) response {
	t.Helper()
	resp := s.api.Do(t, r)
	if !r.Raw {
		hr, err := http.NewRequest(r.Method, s.api.BaseURL+r.Path, nil)
		require.NoError(t, err)
		checkAgainstSpec(t, hr, resp.Status, resp.Header, resp.Body)
	}
	return resp
}

func (s *testServer) get(t *testing.T, path string) response {
	t.Helper()
	return s.api.Get(t, path)
}

// input posts an input to an instance.
func (s *testServer) input(t *testing.T, typ, escapedID string, body any, header map[string]string) response {
	t.Helper()
	return s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/" + typ + "/" + escapedID + "/inputs", Body: body, Header: header})
}

// orderDefinition is examples/order.json, the DESIGN §3 example.
func orderDefinition(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "order.json"))
	require.NoError(t, err)
	return b
}

// defineOrder stores the order example as type typ.
func (s *testServer) defineOrder(t *testing.T, typ string) {
	t.Helper()
	r := s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/" + typ, Body: orderDefinition(t)})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
}

// requireProblem checks a problem+json answer and returns its body.
func requireProblem(t *testing.T, r response, status int, typ string) map[string]any {
	t.Helper()
	require.Equal(t, status, r.Status, "body: %s", r.Body)
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"), "body: %s", r.Body)
	p := r.JSON(t)
	require.Equal(t, typ, p["type"], "body: %s", r.Body)
	require.EqualValues(t, status, p["status"])
	require.NotEmpty(t, p["title"])
	require.NotEmpty(t, p["detail"])
	require.Equal(t, r.Header.Get("X-Request-Id"), p["request_id"])
	return p
}

// path digs into a decoded JSON value: path(m, "workflow", "state", "name").
func path(t *testing.T, v any, keys ...any) any {
	t.Helper()
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			require.True(t, ok, "not an object at %q: %v", k, v)
			v = m[k]
		case int:
			a, ok := v.([]any)
			require.True(t, ok, "not an array at %d: %v", k, v)
			require.Greater(t, len(a), k)
			v = a[k]
		}
	}
	return v
}
