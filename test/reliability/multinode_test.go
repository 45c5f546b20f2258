package reliability

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// leaseHolders returns "id locked_by" of the pending effects and timers that are
// claimed right now.
func leaseHolders(t *testing.T, dbURL string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, q := range []string{
		"SELECT id || ' ' || locked_by FROM effects WHERE status = 'pending' AND locked_by <> ''",
		"SELECT id || ' ' || locked_by FROM timers WHERE status = 'pending' AND locked_by <> ''",
	} {
		for _, s := range queryStrings(t, dbURL, q) {
			out[s] = true
		}
	}
	return out
}

// effectClaims returns the holder (locked_by) of each pending effect claimed right now.
func effectClaims(t *testing.T, dbURL string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range queryStrings(t, dbURL, "SELECT id || ' ' || locked_by FROM effects WHERE status = 'pending' AND locked_by <> ''") {
		id, holder, _ := strings.Cut(s, " ")
		out[id] = holder
	}
	return out
}

// holders returns the distinct holders of claims.
func holders(claims map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, h := range claims {
		out[h] = true
	}
	return out
}

// TestThreeServersOneKilled runs three server processes on one PostgreSQL database under
// load (inputs, effects routed back, timers) and kills one with SIGKILL midway. Clients
// move to the survivors and resend with the same keys. No decision is lost or applied
// twice, every effect is delivered and every timer fired, and the claims the dead
// process held are taken over by the survivors once their leases expire.
func TestThreeServersOneKilled(t *testing.T) {
	t.Parallel()
	dbURL := newDatabaseURL(t, "postgres")
	rcv := startReceiver(t)
	rcv.delay = 100 * time.Millisecond
	env := map[string]string{
		"IRONFLOW_WEBHOOK_TIMEOUT":        "1s", // effect lease 3 s
		"IRONFLOW_RETRY_INITIAL_INTERVAL": "100ms",
		"IRONFLOW_RETRY_MAX_INTERVAL":     "1s",
		"IRONFLOW_MAX_ATTEMPTS":           "1000",
	}
	var servers []*server
	for i := range 3 {
		servers = append(servers, startServerProc(t, dbURL, serverOpts{name: "server" + itoa(i+1), env: env}))
	}
	c := newClient(servers[0].URL, 30*time.Second)
	defer c.Close()
	c.putDefinition(t, "multi", tickDefinition(true, "300ms"))
	c.putWebhook(t, "multi", rcv.URL)

	var mu sync.Mutex
	live := []string{servers[0].URL, servers[1].URL, servers[2].URL}
	bases := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), live...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	statsc := make(chan *loadStats, 1)
	go func() {
		statsc <- runLoad(ctx, t, loadOpts{typ: "multi", clients: 9, instances: 8, bases: bases,
			pause: 10 * time.Millisecond, timeout: 10 * time.Second}, 60*time.Second)
	}()

	time.Sleep(pick(3*time.Second, 20*time.Second))
	// On a loaded machine a server can be between two claims at any instant. The
	// receiver holds every delivery until each server holds a claim, so the one killed
	// surely dies holding some.
	rcv.held.pause()
	waitFor(t, 20*time.Second, "every server to hold a claim", func() bool { return len(holders(effectClaims(t, dbURL))) >= 3 })
	victim := servers[1]
	victim.kill()
	mu.Lock()
	live = []string{servers[0].URL, servers[2].URL}
	mu.Unlock()
	atKill := leaseHolders(t, dbURL)
	claimedAtKill := effectClaims(t, dbURL)
	rcv.held.resume()
	// The dead process's claims are those of the holder that makes no claim after the
	// kill; both survivors go on claiming.
	after := map[string]bool{}
	waitFor(t, 20*time.Second, "both survivors to claim again", func() bool {
		for id, h := range effectClaims(t, dbURL) {
			if claimedAtKill[id] != h {
				after[h] = true
			}
		}
		return len(after) >= 2
	})
	orphaned := map[string]bool{}
	for id, h := range claimedAtKill {
		if !after[h] {
			orphaned[id] = true
		}
	}
	time.Sleep(pick(3*time.Second, 20*time.Second))
	cancel()
	st := <-statsc

	waitFor(t, 60*time.Second, "every effect delivered and every timer fired", func() bool {
		return queryInt(t, dbURL, "SELECT count(*) FROM effects WHERE status <> 'delivered'") == 0 &&
			queryInt(t, dbURL, "SELECT count(*) FROM effects") == st.accepted.Load() &&
			queryInt(t, dbURL, "SELECT count(*) FROM timers WHERE status NOT IN ('fired', 'cancelled')") == 0
	})
	hc := verifyHistory(t, c, "multi", st)
	effects, duplicates := effectFigures(t, dbURL, rcv)
	fired := queryInt(t, dbURL, "SELECT count(*) FROM timers WHERE status = 'fired'")
	cancelled := queryInt(t, dbURL, "SELECT count(*) FROM timers WHERE status = 'cancelled'")
	firedInputs := queryInt(t, dbURL, "SELECT count(*) FROM inputs WHERE source = 'timer'")
	t.Logf("3 servers, 1 killed: inputs=%d effects=%d deliveries=%d duplicates=%d timers fired=%d (replaced %d) leases taken over=%d lost=0; %s; history: %d instances, %d events, %d routed, %d fired",
		st.accepted.Load(), effects, len(rcv.log()), duplicates, fired, cancelled, len(orphaned), st, hc.instances, hc.events, hc.routed, hc.fired)

	require.Zero(t, st.serverErrors.Load())
	require.EqualValues(t, st.accepted.Load(), hc.apiInputs, "no decision lost or applied twice")
	require.Zero(t, hc.duplicates)
	require.Equal(t, effects, hc.routed, "one routed ack per effect")
	require.Equal(t, fired, firedInputs, "each fired timer applied its input once")
	require.EqualValues(t, fired, hc.fired)
	require.Positive(t, fired, "timers fired")
	require.NotEmpty(t, orphaned, "the killed process held claims that the survivors took over")
	require.LessOrEqual(t, duplicates, len(atKill), "duplicates ≤ deliveries in flight at the kill")
	require.Zero(t, queryInt(t, dbURL, "SELECT count(DISTINCT idempotency_key) - count(*) FROM inputs WHERE source = 'timer'"))
}
