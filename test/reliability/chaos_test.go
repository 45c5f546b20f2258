package reliability

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReceiverChaos delivers effects to a receiver that answers 30% 503, hangs past the
// webhook timeout 10% of the time, resets 5% of the connections and answers 5% with 429
// and Retry-After. Every effect ends delivered (its first 2xx) or dead (after exactly
// the attempt budget); every attempt the receiver saw is logged with its status or
// error, in order; and the gaps between attempts stay within the backoff's bounds and
// honour Retry-After.
func TestReceiverChaos(t *testing.T) {
	t.Parallel()
	const (
		maxAttempts = 6
		timeout     = 500 * time.Millisecond
		initial     = 50 * time.Millisecond
		maxInterval = 2 * time.Second
		retryAfter  = 1 // seconds
	)
	for i, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dbURL := newDatabaseURL(t, backend)
			rcv := startReceiver(t)
			rcv.choose = randomModes(uint64(42+i), 30, 10, 5, 5)
			rcv.hang = 3 * timeout
			rcv.retryAfter = retryAfter
			srv := startServer(t, dbURL, map[string]string{
				"IRONFLOW_WEBHOOK_TIMEOUT":        timeout.String(),
				"IRONFLOW_MAX_ATTEMPTS":           fmt.Sprint(maxAttempts),
				"IRONFLOW_RETRY_INITIAL_INTERVAL": initial.String(),
				"IRONFLOW_RETRY_MAX_INTERVAL":     maxInterval.String(),
			})
			c := newClient(srv.URL, 30*time.Second)
			defer c.Close()
			c.putDefinition(t, "chaos", tickDefinition(true))
			c.putWebhook(t, "chaos", rcv.URL)

			n := pick(60, 300)
			for k := range n {
				r := c.Do(t, request{Method: http.MethodPost, Path: fmt.Sprintf("/v1/workflows/chaos/c-%d/inputs", k),
					Body: `{"type":"tick","data":{"n":1}}`})
				require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			}
			waitFor(t, 90*time.Second, "every effect delivered or dead", func() bool {
				return queryInt(t, dbURL, "SELECT count(*) FROM effects WHERE status = 'pending'") == 0
			})

			byEffect := rcv.byEffect()
			ids := queryStrings(t, dbURL, "SELECT id FROM effects")
			require.Len(t, ids, n)
			var delivered, dead, attempts int
			modes := map[receiverMode]int{}
			var maxGapOverCeiling time.Duration
			late := 0
			lateAfter := map[receiverMode]int{}
			for _, id := range ids {
				r := c.Get(t, "/v1/effects/"+id)
				require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
				eff := r.JSON(t)
				log := byEffect[id]
				got, _ := eff["attempts"].([]any)
				require.Len(t, got, len(log), "effect %s: the attempt log has every delivery the receiver saw", id)
				attempts += len(log)
				for k, d := range log {
					modes[d.Mode]++
					a := got[k].(map[string]any)
					require.EqualValues(t, k+1, a["number"])
					code, _ := a["status_code"].(float64)
					errText, _ := a["error"].(string)
					switch d.Mode {
					case modeOK:
						require.EqualValues(t, 200, code, "effect %s attempt %d", id, k+1)
						require.Empty(t, errText)
					case modeUnavail:
						require.EqualValues(t, 503, code, "effect %s attempt %d", id, k+1)
					case modeRetryLate:
						require.EqualValues(t, 429, code, "effect %s attempt %d", id, k+1)
					case modeHang:
						require.Zero(t, code)
						require.Contains(t, strings.ToLower(errText), "timeout", "effect %s attempt %d: %s", id, k+1, errText)
					case modeReset:
						require.Zero(t, code)
						require.NotEmpty(t, errText, "effect %s attempt %d", id, k+1)
					}
					if k == 0 {
						continue
					}
					// Gap between two deliveries: the previous attempt's duration (at most
					// the timeout) plus the backoff, at most its ceiling, or Retry-After.
					gap := d.At.Sub(log[k-1].At)
					ceiling := min(initial<<(k-1), maxInterval)
					if log[k-1].Mode == modeRetryLate {
						ceiling = min(retryAfter*time.Second, maxInterval)
						require.GreaterOrEqual(t, gap, ceiling-50*time.Millisecond, "effect %s: Retry-After honoured", id)
					}
					// Pickup may lag by up to the workers' poll interval (2 s), the
					// fallback when no wake-up arrives.
					over := gap - timeout - ceiling
					maxGapOverCeiling = max(maxGapOverCeiling, over)
					if over > 300*time.Millisecond {
						late++
						lateAfter[log[k-1].Mode]++
					}
					require.Less(t, over, 2500*time.Millisecond, "effect %s attempt %d came %s after the previous one (ceiling %s); log %v; attempts %v", id, k+1, gap, ceiling, log, got)
				}
				last := log[len(log)-1]
				switch eff["status"] {
				case "delivered":
					delivered++
					require.Equal(t, modeOK, last.Mode, "effect %s: delivered by its last attempt", id)
					require.LessOrEqual(t, len(log), maxAttempts)
					for _, d := range log[:len(log)-1] {
						require.NotEqual(t, modeOK, d.Mode, "effect %s: nothing after the first 2xx", id)
					}
				case "dead":
					dead++
					require.Len(t, log, maxAttempts, "effect %s: dead after exactly the budget", id)
					for _, d := range log {
						require.NotEqual(t, modeOK, d.Mode, "effect %s: dead despite a 2xx", id)
					}
				default:
					t.Fatalf("effect %s ended %v", id, eff["status"])
				}
			}
			require.EqualValues(t, delivered, queryInt(t, dbURL, "SELECT count(*) FROM inputs WHERE source = 'effect'"), "one routed ack per delivered effect")
			t.Logf("receiver chaos (%s): effects=%d delivered=%d dead=%d attempts=%d (ok %d, 503 %d, hang %d, reset %d, 429 %d); slowest retry beyond its ceiling %s, retries >300ms late %d (after mode: %v)",
				backend, n, delivered, dead, attempts, modes[modeOK], modes[modeUnavail], modes[modeHang], modes[modeReset], modes[modeRetryLate],
				maxGapOverCeiling.Round(time.Millisecond), late, lateAfter)
			require.Positive(t, delivered)
			errs, panics := srv.logCounts()
			require.Zero(t, panics)
			_ = errs
		})
	}
}
