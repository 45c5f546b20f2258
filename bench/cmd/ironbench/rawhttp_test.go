package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The lean client against net/http's server: the framings it answers with, and a
// connection reused only when the response allows it.
func TestRawClient(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			assert.Equal(t, http.MethodPost, r.Method)
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
			_, _ = w.Write(body)
		case "/chunked": // flushed early: net/http switches to chunked framing
			_, _ = w.Write([]byte("first,"))
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte("second"))
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"status": 409}`))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newRawClient(strings.TrimPrefix(srv.URL, "http://"), 5*time.Second)
	t.Cleanup(c.close)
	ctx := context.Background()

	for i := range 3 {
		status, body, err := c.post(ctx, "/echo", []byte(`{"n": 1}`))
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, `{"n": 1}`, string(body), "request %d", i)
	}
	assert.EqualValues(t, 1, conns.Load(), "one kept-alive connection carried every request")

	status, body, err := c.post(ctx, "/chunked", nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "first,second", string(body))
	assert.EqualValues(t, 1, conns.Load())

	status, body, err = c.post(ctx, "/close", nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusConflict, status)
	assert.JSONEq(t, `{"status": 409}`, string(body))
	_, _, err = c.post(ctx, "/echo", []byte(`{}`))
	require.NoError(t, err)
	assert.EqualValues(t, 2, conns.Load(), "the connection the server closed was not reused")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = c.post(cancelled, "/echo", []byte(`{}`))
	assert.ErrorIs(t, err, context.Canceled)
}
