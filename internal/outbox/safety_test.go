package outbox_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/enginetest"
	"github.com/ironflow/ironflow/internal/outbox"
	"github.com/ironflow/ironflow/internal/store"
)

func TestLoopbackRefusedUnlessAllowed(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		rcv := newReceiver(t, nil)
		e.putWebhook(rcv.URL)
		// An allow-list that names some other network does not cover loopback.
		e.worker(e.store, outbox.Config{MaxAttempts: 2, AllowNets: mustPrefixes("10.9.0.0/16")})
		effectID := e.place("o-1")
		v := e.waitEffect(effectID, store.EffectDead)
		require.Len(t, v.AttemptLog, 2)
		for _, a := range v.AttemptLog {
			require.Zero(t, a.StatusCode)
			require.Contains(t, a.Error, "webhook address not allowed")
			require.Contains(t, a.Error, "loopback")
		}
		require.Empty(t, rcv.deliveries(), "no request may reach the receiver")
	})
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		var target atomic.Int32
		rcv := newReceiver(t, nil)
		mux := http.NewServeMux()
		mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		})
		mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
			target.Add(1)
			_, _ = w.Write([]byte(reservedInput))
		})
		rcv.Config.Handler = mux
		e.putWebhook(rcv.URL + "/hook")
		e.worker(e.store, outbox.Config{MaxAttempts: 2})
		effectID := e.place("o-1")
		v := e.waitEffect(effectID, store.EffectDead)
		require.Len(t, v.AttemptLog, 2)
		require.Equal(t, http.StatusTemporaryRedirect, v.AttemptLog[0].StatusCode)
		require.Contains(t, v.AttemptLog[0].Error, "redirects are not followed")
		require.Zero(t, target.Load(), "the redirect target was never called")
	})
}

func TestSlowReceiverTimesOut(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		rcv := newReceiver(t, nil)
		rcv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client hanging up
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		e.putWebhook(rcv.URL)
		e.worker(e.store, outbox.Config{MaxAttempts: 1, Timeout: 150 * time.Millisecond})
		effectID := e.place("o-1")
		v := e.waitEffect(effectID, store.EffectDead)
		require.Len(t, v.AttemptLog, 1)
		require.Contains(t, v.AttemptLog[0].Error, "timeout")
		// The attempt itself, not the test's stopwatch (a loaded machine stretches the
		// claim and the recording around it): cut off by the timeout, long before the
		// receiver's 5 s.
		require.GreaterOrEqual(t, v.AttemptLog[0].DurationMS, 140.0)
		require.Less(t, v.AttemptLog[0].DurationMS, 4000.0)
	})
}

func TestOversizedResponseCapped(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		huge := `{"input": {"type": "reserved", "data": {"ok": true, "pad": "` + strings.Repeat("x", 1<<20) + `"}}}`
		rcv := newReceiver(t, func(int, delivery) (int, string) { return 200, huge })
		e.putWebhook(rcv.URL)
		e.worker(e.store, outbox.Config{})
		effectID := e.place("o-1")
		v := e.waitEffect(effectID, store.EffectDelivered)
		a := v.AttemptLog[0]
		require.Len(t, a.Response, outbox.MaxRecordedResponse)
		require.Equal(t, huge[:outbox.MaxRecordedResponse], a.Response)
		require.Contains(t, a.Error, "exceeds")
		require.Empty(t, a.RoutedOutcome, "a response past the cap is not routed")
		require.Equal(t, "reserving", e.workflowState("o-1"))
	})
}
