package reliability

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRateLimit: with IRONFLOW_RATE_LIMIT=5 a key that sends more than 5 requests in a
// second gets 429 problem+json with Retry-After; another key and the health checks are
// unaffected; requests without a valid key are limited per client IP; the key recovers
// a second later.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newDatabaseURL(t, "sqlite"), map[string]string{"IRONFLOW_RATE_LIMIT": "5"})
	c := newClient(srv.URL, 10*time.Second)
	defer c.Close()

	statuses := map[int]int{}
	var limited response
	for range 20 {
		r := c.Get(t, "/v1/workflows")
		statuses[r.Status]++
		if r.Status == http.StatusTooManyRequests {
			limited = r
		}
	}
	require.Equal(t, 20, statuses[200]+statuses[429], "only 200 and 429: %v", statuses)
	require.LessOrEqual(t, statuses[200], 10, "at most 5 per window (two windows at most): %v", statuses)
	require.GreaterOrEqual(t, statuses[429], 10, "%v", statuses)
	require.Equal(t, "application/problem+json", limited.Header.Get("Content-Type"))
	require.Equal(t, "rate_limited", limited.JSON(t)["type"])
	require.NotEmpty(t, limited.Header.Get("Retry-After"))

	// Another key has its own budget; health checks have none.
	c2 := newClient(srv.URL, 10*time.Second)
	c2.Key = apiKey2
	defer c2.Close()
	require.Equal(t, http.StatusOK, c2.Get(t, "/v1/workflows").Status)
	for range 20 {
		require.Equal(t, http.StatusOK, c.Do(t, request{Method: http.MethodGet, Path: "/healthz", NoAuth: true}).Status)
	}

	// Guessing keys is limited per IP.
	unauth := map[int]int{}
	for range 20 {
		r := c.Do(t, request{Method: http.MethodGet, Path: "/v1/workflows", NoAuth: true,
			Header: map[string]string{"Authorization": "Bearer guess"}})
		unauth[r.Status]++
	}
	require.Equal(t, 20, unauth[401]+unauth[429], "%v", unauth)
	require.Positive(t, unauth[429], "guesses are limited too: %v", unauth)

	// The window passes.
	time.Sleep(2100 * time.Millisecond)
	require.Equal(t, http.StatusOK, c.Get(t, "/v1/workflows").Status)
	t.Logf("rate limit 5/s: %d answered, %d limited (429); other key and /healthz unaffected; guesses: %v", statuses[200], statuses[429], unauth)
}

// retentionDefinition completes an instance after two inputs, cancelling a timer on the
// way.
const retentionDefinition = `{"initial_state":"new","inputs":{"start":{},"go":{},"stop":{}},"states":{
  "new":{"on":{"start":{"to":"waiting"}}},
  "waiting":{"timers":[{"key":"t","after":"1h","input":{"type":"stop"}}],"on":{"go":{"to":"done"},"stop":{"to":"done"}}},
  "done":{"terminal":true}}}`

// TestRetention: with IRONFLOW_RETENTION=2s the background service prunes a completed
// instance's inputs and its cancelled timer, and keeps the instance, its events and
// everything of a running instance.
func TestRetention(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dbURL := newDatabaseURL(t, backend)
			srv := startServer(t, dbURL, map[string]string{"IRONFLOW_RETENTION": "2s"})
			c := newClient(srv.URL, 10*time.Second)
			defer c.Close()
			c.putDefinition(t, "ret", retentionDefinition)
			for _, in := range []struct{ id, typ string }{{"a", "start"}, {"a", "go"}, {"b", "start"}} {
				r := c.Do(t, request{Method: http.MethodPost, Path: "/v1/workflows/ret/" + in.id + "/inputs", Body: `{"type":"` + in.typ + `"}`})
				require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			}
			require.EqualValues(t, 3, queryInt(t, dbURL, "SELECT count(*) FROM inputs"))
			require.EqualValues(t, 2, queryInt(t, dbURL, "SELECT count(*) FROM timers"))

			// The worker logs once its last batch found nothing more: wait for the line
			// too, not only for the rows it logs about.
			waitFor(t, 20*time.Second, "retention to prune a's inputs and timer", func() bool {
				return queryInt(t, dbURL, "SELECT count(*) FROM inputs") == 1 &&
					queryInt(t, dbURL, "SELECT count(*) FROM timers") == 1 &&
					len(srv.logLines("pruned")) > 0
			})
			require.Empty(t, c.ListAll(t, "/v1/workflows/ret/a/inputs"))
			require.Len(t, c.ListAll(t, "/v1/workflows/ret/b/inputs"), 1, "a running instance keeps its inputs")
			require.Len(t, c.ListAll(t, "/v1/workflows/ret/a/events"), 2, "events are never pruned")
			r := c.Get(t, "/v1/workflows/ret/a")
			require.Equal(t, http.StatusOK, r.Status)
			require.Equal(t, "completed", r.JSON(t)["status"])
		})
	}
}
