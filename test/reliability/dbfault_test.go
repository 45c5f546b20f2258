package reliability

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDatabaseFaults runs a server on a private PostgreSQL cluster under load and, while
// clients keep sending inputs with idempotency keys, kills its connections
// (pg_terminate_backend), restarts the cluster (pg_ctl restart -m fast) and stops it for
// a few seconds. The server is never restarted. Clients get 200 or 503, never another
// 5xx and never a hang; /readyz turns 503 during the outage and 200 after; clients
// resend with the same keys, and every input answered 200 is in the history exactly
// once with gapless seqs.
func TestDatabaseFaults(t *testing.T) {
	t.Parallel()
	requireBinary(t)
	pg := startPrivatePG(t)
	dbURL := pg.createDatabase("ironflow")
	srv := startServer(t, dbURL, nil)
	c := newClient(srv.URL, 30*time.Second)
	defer c.Close()
	c.putDefinition(t, "tick", tickDefinition(false))

	probe := startReadyProbe(srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	statsc := make(chan *loadStats, 1)
	go func() {
		statsc <- runLoad(ctx, t, loadOpts{typ: "tick", clients: 8, instances: 4,
			bases: func() []string { return []string{srv.URL} }, timeout: 20 * time.Second}, 60*time.Second)
	}()

	outage := pick(3*time.Second, 10*time.Second)
	rounds := pick(1, 3)
	terminated := 0
	for range rounds {
		time.Sleep(time.Second)
		terminated += pg.terminateBackends("ironflow")
		time.Sleep(time.Second)
		pg.restart()
		time.Sleep(time.Second)
		pg.stop()
		time.Sleep(outage)
		pg.start()
	}
	time.Sleep(2 * time.Second)
	cancel()
	st := <-statsc
	statuses, maxReadyWait := probe.finish()

	hc := verifyHistory(t, c, "tick", st)
	t.Logf("database faults: %d rounds (pg_terminate_backend: %d connections, restart, %s outage); %s; readyz %v (slowest %s); history: %d instances, %d events, duplicates %d, lost 0",
		rounds, terminated, outage, st, statuses, maxReadyWait.Round(time.Millisecond), hc.instances, hc.events, hc.duplicates)

	require.Zero(t, st.serverErrors.Load(), "no 5xx but 503")
	require.Zero(t, st.transport.Load(), "the server answered every request (no hang, no dropped connection)")
	require.Positive(t, st.unavailable.Load(), "clients saw 503 during the outage")
	require.Less(t, time.Duration(st.maxLatency.Load()), 15*time.Second, "no request hung")
	require.Less(t, maxReadyWait, 5*time.Second, "/readyz answers promptly during the outage")
	// Ready, then not ready during the outage, then ready again.
	i := slices.Index(statuses, http.StatusServiceUnavailable)
	require.Positive(t, i, "readyz was 200 before the outage: %v", statuses)
	require.Equal(t, http.StatusOK, statuses[len(statuses)-1], "readyz green again: %v", statuses)
	require.NotContains(t, statuses, 0, "readyz always answered: %v", statuses)
	require.Zero(t, hc.duplicates)
	require.EqualValues(t, st.accepted.Load(), hc.apiInputs, "every accepted input is recorded once")
	errs, panics := srv.logCounts()
	require.Zero(t, panics)
	t.Logf("server error log lines during the faults: %d", errs)
}
