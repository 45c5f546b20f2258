package reliability

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slowDefinition's decision runs three comprehensions of 8,100 iterations each: about
// 240,000 cost units, just under a decision's limit of 250,000, so it is accepted when
// nothing stops it, and it is the most CPU one input can buy within the cost limits.
const slowDefinition = `{"initial_state":"s","inputs":{"go":{}},"states":{"s":{"on":{"go":{"to":"s","effects":[
  {"name":"a","payload":"{'n': input.data.r.filter(i, input.data.r.exists(j, j == i + 1000.0)).size()}"},
  {"name":"b","payload":"{'n': input.data.r.filter(i, input.data.r.exists(j, j == i + 2000.0)).size()}"},
  {"name":"c","payload":"{'n': input.data.r.filter(i, input.data.r.exists(j, j == i + 3000.0)).size()}"}]}}}}}`

// slowInput is the input that makes slowDefinition's decision expensive.
func slowInput() string {
	r := make([]string, 90)
	for i := range r {
		r[i] = fmt.Sprint(i)
	}
	return inputOf("go", `{"r":[`+strings.Join(r, ",")+`]}`)
}

// TestAbandonedDecisions: a decision that overruns IRONFLOW_DECISION_TIMEOUT is
// stopped at its budget (422 evaluation_failed naming it, nothing recorded), and one
// whose client goes away stops when the connection closes, not when the decision
// would have ended: the server's own log shows the abandoned requests ending in a
// fraction of the time the same decision takes when its client waits. Meanwhile
// another client's writes keep their idle p99 (within 2×, as for every limit). Not
// parallel: the expensive decisions it measures would weigh on the bystanders of the
// other tests, and theirs on its measurements.
func TestAbandonedDecisions(t *testing.T) {
	body := slowInput()

	t.Run("over its budget", func(t *testing.T) {
		srv := startServer(t, newDatabaseURL(t, "sqlite"), map[string]string{"IRONFLOW_DECISION_TIMEOUT": "5ms"})
		c := newClient(srv.URL, 60*time.Second)
		defer c.Close()
		b := newBystander(t, srv)
		c.putDefinition(t, "slow", slowDefinition)

		req := func(i int) request {
			return request{Method: http.MethodPost, Path: fmt.Sprintf("/v1/workflows/slow/s-%d/inputs", i), Body: body}
		}
		r := c.Do(t, req(0))
		requireProblem(t, r, http.StatusUnprocessableEntity, "evaluation_failed", "")
		require.Contains(t, string(r.Body), "budget of 5ms", "stopped by the time budget, not the cost limit")
		require.Equal(t, http.StatusNotFound, c.Get(t, "/v1/workflows/slow/s-0").Status, "nothing recorded")

		requireBystanderFast(t, b, func() func() {
			f := startFlood(c, 1, floodPause, req)
			return func() {
				statuses, _, errs := f.stop()
				require.Zero(t, errs)
				require.Equal(t, []int{http.StatusUnprocessableEntity}, slices.Sorted(func(yield func(int) bool) {
					for st := range statuses {
						if !yield(st) {
							return
						}
					}
				}))
			}
		})
	})

	t.Run("its client gone", func(t *testing.T) {
		// The decisions here must end by their client leaving or by finishing, never by
		// the budget (1 s by default), which a loaded machine can stretch a 40 ms
		// decision past.
		srv := startServer(t, newDatabaseURL(t, "sqlite"), map[string]string{"IRONFLOW_DECISION_TIMEOUT": "30s"})
		c := newClient(srv.URL, 60*time.Second)
		defer c.Close()
		b := newBystander(t, srv)
		c.putDefinition(t, "slow", slowDefinition)

		// A loaded machine (the race detector, other tests' load) can delay the server's
		// notice that a client left by tens of milliseconds, so the comparison is made
		// afresh up to three times; a server that finishes abandoned decisions fails all
		// three.
		const samples = 9
		var full, gone []time.Duration
		var wait time.Duration
		abandon := func(ctx context.Context, id string, wait time.Duration) error {
			rctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			_, err := c.Send(rctx, request{Method: http.MethodPost, Path: "/v1/workflows/slow/" + id + "/inputs", Body: body})
			return err
		}
		for attempt := range 3 {
			// What the decision costs when its client waits, as the server logs it.
			for i := range samples {
				r := c.Do(t, request{Method: http.MethodPost, Path: fmt.Sprintf("/v1/workflows/slow/full-%d-%d/inputs", attempt, i), Body: body})
				require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			}
			full = loggedDurations(t, srv, fmt.Sprintf("/v1/workflows/slow/full-%d-", attempt), samples, samples)

			// The same requests, each abandoned by its client a tenth of that into it.
			wait = max(full[samples/2]/10, time.Millisecond)
			for i := range samples {
				require.Error(t, abandon(context.Background(), fmt.Sprintf("gone-%d-%d", attempt, i), wait),
					"the client gave up before the answer")
			}
			// A request its client gave up on before the server read it is not logged.
			gone = loggedDurations(t, srv, fmt.Sprintf("/v1/workflows/slow/gone-%d-", attempt), samples, samples/2+1)
			t.Logf("the decision: %s (median of %d) when its client waits; %s (median of %d) when its client leaves after %s",
				full[samples/2].Round(time.Microsecond), samples, gone[len(gone)/2].Round(time.Microsecond), len(gone), wait.Round(time.Microsecond))
			if gone[len(gone)/2] < full[samples/2]*3/4 {
				break
			}
		}
		require.Less(t, gone[len(gone)/2], full[samples/2]*3/4, "an abandoned decision stops when its client leaves, not when it would have ended")
		require.Equal(t, http.StatusNotFound, c.Get(t, "/v1/workflows/slow/gone-0-0").Status, "nothing recorded")

		// A client that keeps starting expensive decisions and leaving slows no one.
		requireBystanderFast(t, b, func() func() {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; ctx.Err() == nil; i++ {
					_ = abandon(ctx, fmt.Sprintf("flood-%d", i), wait) // it gives up, or is stopped
					select {
					case <-ctx.Done():
					case <-time.After(floodPause):
					}
				}
			}()
			return func() {
				cancel()
				<-done
			}
		})
	})
}

// loggedDurations waits for n "http request" log lines of the server for paths
// starting with prefix, or after 5 s for at least least of them, and returns their
// durations, sorted.
func loggedDurations(t *testing.T, srv *server, prefix string, n, least int) []time.Duration {
	t.Helper()
	var d []time.Duration
	start := time.Now()
	waitFor(t, 30*time.Second, "the server's log lines of "+prefix, func() bool {
		d = d[:0]
		for _, l := range srv.logLines("http request") {
			if p, _ := l["path"].(string); strings.HasPrefix(p, prefix) {
				ms, _ := l["duration_ms"].(float64)
				d = append(d, time.Duration(ms*float64(time.Millisecond)))
			}
		}
		return len(d) >= n || len(d) >= least && time.Since(start) > 5*time.Second
	})
	slices.Sort(d)
	return d
}
