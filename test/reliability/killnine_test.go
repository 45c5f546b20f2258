package reliability

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// putWebhook registers url as the endpoint of typ.
func (c *apiClient) putWebhook(t *testing.T, typ, url string) {
	t.Helper()
	r := c.Do(t, request{Method: http.MethodPut, Path: "/v1/workflow-types/" + typ + "/webhook",
		Body: map[string]string{"url": url}})
	require.Contains(t, []int{http.StatusOK, http.StatusCreated}, r.Status, "PUT webhook: %s", r.Body)
}

// effectFigures checks the outbox after a run: every effect delivered, seen by the
// receiver, and its routed ack applied exactly once. It returns the number of effects
// and of redundant deliveries.
func effectFigures(t *testing.T, dbURL string, rcv *receiver) (effects, duplicates int) {
	t.Helper()
	ids := queryStrings(t, dbURL, "SELECT id FROM effects")
	seen := rcv.seen()
	for _, id := range ids {
		require.GreaterOrEqual(t, seen[id], 1, "effect %s was never delivered to the receiver", id)
		duplicates += seen[id] - 1
	}
	require.Len(t, seen, len(ids), "the receiver saw no effect the database does not have")
	require.Zero(t, queryInt(t, dbURL, "SELECT count(*) FROM effects WHERE status <> 'delivered'"))
	// One routed input per effect, keyed by the effect id.
	require.EqualValues(t, len(ids), queryInt(t, dbURL, "SELECT count(*) FROM inputs WHERE source = 'effect'"))
	require.EqualValues(t, len(ids), queryInt(t, dbURL, "SELECT count(DISTINCT idempotency_key) FROM inputs WHERE source = 'effect'"))
	// NOT IN over a subquery: both databases build it once (a hash or a temporary
	// b-tree), where a correlated NOT EXISTS scans inputs once per effect on SQLite.
	require.Zero(t, queryInt(t, dbURL, `SELECT count(*) FROM effects WHERE id NOT IN (
    SELECT idempotency_key FROM inputs WHERE source = 'effect' AND outcome = 'accepted')`))
	return len(ids), duplicates
}

// TestKillNineUnderLoad kills the server with SIGKILL while clients send inputs with
// idempotency keys and webhook deliveries (answered with a routed input) are in flight,
// restarts it on the same database, and lets the clients resend what went unanswered.
func TestKillNineUnderLoad(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dbURL := newDatabaseURL(t, backend)
			rcv := startReceiver(t)
			rcv.delay = 20 * time.Millisecond // keeps deliveries in flight when the kill comes
			srv := startServer(t, dbURL, map[string]string{
				"IRONFLOW_WEBHOOK_TIMEOUT":        "1s", // lease 3 s: the dead process's claims come back soon
				"IRONFLOW_RETRY_INITIAL_INTERVAL": "100ms",
				"IRONFLOW_RETRY_MAX_INTERVAL":     "1s",
				"IRONFLOW_MAX_ATTEMPTS":           "1000",
			})
			c := newClient(srv.URL, 30*time.Second)
			defer c.Close()
			c.putDefinition(t, "kill", tickDefinition(true))
			c.putWebhook(t, "kill", rcv.URL)

			ctx, cancel := context.WithCancel(context.Background())
			statsc := make(chan *loadStats, 1)
			go func() {
				statsc <- runLoad(ctx, t, loadOpts{typ: "kill", clients: 8, instances: 2,
					bases: func() []string { return []string{srv.URL} }, timeout: 10 * time.Second}, 60*time.Second)
			}()

			kills := pick(2, 6)
			inFlight := 0
			for range kills {
				time.Sleep(pick(1500*time.Millisecond, 3*time.Second))
				srv.kill()
				// Deliveries the receiver saw whose effect was not recorded as delivered:
				// those may be delivered again.
				seen := rcv.seen()
				delivered := map[string]bool{}
				for _, id := range queryStrings(t, dbURL, "SELECT id FROM effects WHERE status = 'delivered'") {
					delivered[id] = true
				}
				for id := range seen {
					if !delivered[id] {
						inFlight++
					}
				}
				time.Sleep(200 * time.Millisecond) // clients meet a dead server
				srv.start()
			}
			time.Sleep(time.Second)
			cancel()
			st := <-statsc

			waitFor(t, 60*time.Second, "every effect delivered", func() bool {
				return queryInt(t, dbURL, "SELECT count(*) FROM effects WHERE status <> 'delivered'") == 0 &&
					queryInt(t, dbURL, "SELECT count(*) FROM effects") == st.accepted.Load()
			})
			hc := verifyHistory(t, c, "kill", st)
			effects, duplicates := effectFigures(t, dbURL, rcv)
			t.Logf("kill -9 (%s): kills=%d inputs=%d effects=%d deliveries=%d duplicates=%d in_flight_at_kills=%d routed=%d lost=0; %s; history: %d instances, %d events",
				backend, kills, st.accepted.Load(), effects, len(rcv.log()), duplicates, inFlight, hc.routed, st, hc.instances, hc.events)

			require.Zero(t, st.serverErrors.Load(), "no 5xx but 503")
			require.Positive(t, st.transport.Load()+st.resent.Load(), "some requests met a dead server and were resent")
			require.EqualValues(t, st.accepted.Load(), hc.apiInputs, "every accepted input is in the history exactly once")
			require.Equal(t, effects, hc.routed, "one routed ack per effect")
			require.LessOrEqual(t, duplicates, inFlight, "duplicates ≤ deliveries in flight at the kills")
			require.Zero(t, hc.duplicates)
		})
	}
}
