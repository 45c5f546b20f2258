package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store/postgres"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
)

// shopDefinition: placing emits reserve_stock, paying emits ship; the receiver answers
// both with the next input. An unpaid order expires after a sub-second state timeout,
// or after the "timeout" its place input carries: an order a test means to pay must
// not race the 400 ms clock on a loaded machine.
const shopDefinition = `{
  "initial_state": "new",
  "inputs": {"place": {"schema": {"type": "object", "required": ["total"]}},
             "reserved": {}, "pay": {}, "expire": {}, "shipped": {}},
  "states": {
    "new": {"on": {"place": {"to": "awaiting_payment", "event": "OrderPlaced",
      "effects": [{"name": "reserve_stock", "payload": "{'total': input.data.total}"}]}}},
    "awaiting_payment": {
      "timers": [{"key": "payment_timeout", "input": {"type": "expire"},
                  "at": "now + duration(has(input.data.timeout) ? string(input.data.timeout) : '400ms')"}],
      "on": {"reserved": {"event": "StockReserved"},
             "pay": {"to": "paid", "event": "Paid", "effects": [{"name": "ship"}]},
             "expire": {"to": "expired", "event": "Expired"}}},
    "paid": {"on": {"shipped": {"to": "done", "event": "Shipped"}}},
    "done": {"terminal": true},
    "expired": {"terminal": true}
  }
}`

// hookReceiver answers each effect with the input that follows it and keeps what it got.
type hookReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []http.Header
	raw [][]byte
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, r.Header.Clone())
		h.raw = append(h.raw, body)
		h.mu.Unlock()
		var msg struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(body, &msg)
		switch {
		case strings.HasSuffix(msg.Type, ".reserve_stock"):
			_, _ = io.WriteString(w, `{"input": {"type": "reserved"}}`)
		case strings.HasSuffix(msg.Type, ".ship"):
			_, _ = io.WriteString(w, `{"input": {"type": "shipped"}}`)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

// verifySignature checks a delivery as the Standard Webhooks specification tells a
// receiver to, independently of the server's signer.
func verifySignature(t *testing.T, secret string, h http.Header, body []byte) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", h.Get("webhook-id"), h.Get("webhook-timestamp"), body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	require.Contains(t, strings.Split(h.Get("webhook-signature"), " "), want)
}

func (s *testServer) waitState(t *testing.T, typ, id, state string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := s.get(t, "/v1/workflows/"+typ+"/"+id)
		if r.Status == http.StatusOK && path(t, r.JSON(t), "state", "name") == state {
			return
		}
		if time.Now().After(deadline) {
			// Say where its timers stand: a timer claimed and not fired shows whose
			// lease holds it.
			timers := s.get(t, "/v1/timers?workflow_type="+typ+"&workflow_id="+id)
			t.Fatalf("%s/%s never reached %s: %d %s; timers: %s", typ, id, state, r.Status, r.Body, timers.Body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWebhooksAndTimersEndToEnd(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, backend, map[string]string{"IRONFLOW_WEBHOOK_ALLOW_NETS": "127.0.0.0/8"})
			rcv := newHookReceiver(t)
			r := s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/shop", Body: shopDefinition})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)

			r = s.get(t, "/v1/workflow-types/shop/webhook")
			requireProblem(t, r, http.StatusNotFound, "webhook_not_found")
			r = s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/shop/webhook", Body: map[string]string{"url": "ftp://x"}})
			requireProblem(t, r, http.StatusUnprocessableEntity, "invalid_webhook")
			r = s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/shop/webhook", Body: map[string]string{"url": rcv.URL}})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			hook := r.JSON(t)
			secret := hook["secret"].(string)
			require.Regexp(t, `^whsec_[A-Za-z0-9+/]{43}=$`, secret)
			require.Equal(t, "active", hook["status"])

			// Placed and paid: both effects are delivered and their routed inputs
			// complete the workflow; leaving awaiting_payment cancelled its timeout.
			r = s.input(t, "shop", "o-1", map[string]any{"type": "place", "data": map[string]any{"total": 40, "timeout": "1h"}}, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Eventually(t, func() bool { // reserve_stock answered "reserved"
				return path(t, s.get(t, "/v1/workflows/shop/o-1").JSON(t), "version") == 2.0
			}, 10*time.Second, 10*time.Millisecond)
			r = s.input(t, "shop", "o-1", map[string]any{"type": "pay"}, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			s.waitState(t, "shop", "o-1", "done")
			r = s.get(t, "/v1/workflows/shop/o-1/effects")
			require.Equal(t, http.StatusOK, r.Status)
			effects := path(t, r.JSON(t), "items").([]any)
			require.Len(t, effects, 2)
			for _, e := range effects {
				require.Equal(t, "delivered", path(t, e, "status"))
				id := path(t, e, "id").(string)
				one := s.get(t, "/v1/effects/"+id).JSON(t)
				require.Equal(t, "accepted", path(t, one, "attempts", 0, "routed_outcome"))
				require.EqualValues(t, 200, path(t, one, "attempts", 0, "status_code"))
				requireProblem(t, s.do(t, req{Method: http.MethodPost, Path: "/v1/effects/" + id + "/retry"}),
					http.StatusConflict, "wrong_status")
			}
			r = s.get(t, "/v1/workflows/shop/o-1/timers")
			require.Equal(t, "cancelled", path(t, r.JSON(t), "items", 0, "status"))
			rcv.mu.Lock()
			for i, got := range rcv.got {
				verifySignature(t, secret, got, rcv.raw[i])
			}
			rcv.mu.Unlock()

			// Not paid: the state timeout fires.
			r = s.input(t, "shop", "o-2", map[string]any{"type": "place", "data": map[string]any{"total": 5}}, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			s.waitState(t, "shop", "o-2", "expired")
			r = s.get(t, "/v1/timers?workflow_type=shop&workflow_id=o-2&status=fired")
			tm := path(t, r.JSON(t), "items", 0)
			require.Equal(t, "accepted", path(t, tm, "outcome"))
			// The timer's input is recorded; under load the routed "reserved" answer can
			// come before or after it, so look for it rather than at a position.
			var fromTimer []any
			for _, in := range path(t, s.get(t, "/v1/workflows/shop/o-2/inputs").JSON(t), "items").([]any) {
				if path(t, in, "source") == "timer" {
					fromTimer = append(fromTimer, path(t, in, "type"))
				}
			}
			require.Equal(t, []any{"expire"}, fromTimer)

			// A delayed input: 202 with the timer; the instance appears when it fires. Its
			// payment timeout is an hour: the 400 ms one would fire a second timer input
			// on a loaded machine before they are counted.
			delayed := map[string]any{"type": "place", "data": map[string]any{"total": 1, "timeout": "1h"}, "deliver_after": "200ms"}
			keyed := map[string]string{"Idempotency-Key": "d-1"}
			r = s.input(t, "shop", "o-3", delayed, keyed)
			require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
			require.Empty(t, r.Header.Get("Idempotent-Replayed"))
			body := r.JSON(t)
			require.Equal(t, "scheduled", body["outcome"])
			timerID := path(t, body, "timer", "id").(string)
			fireAt := path(t, body, "timer", "fire_at")
			require.NotEmpty(t, path(t, body, "timer", "key"))
			require.NotEmpty(t, fireAt)
			// A retry with the same Idempotency-Key answers the same timer, unmoved.
			r = s.input(t, "shop", "o-3", delayed, keyed)
			require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
			require.Equal(t, "true", r.Header.Get("Idempotent-Replayed"))
			require.Equal(t, timerID, path(t, r.JSON(t), "timer", "id"))
			require.Equal(t, fireAt, path(t, r.JSON(t), "timer", "fire_at"))
			// The instance appears when the timer fires, in the same transaction: 404 until
			// then. A loaded machine may already be past the 200 ms, so what holds either
			// way is checked: an instance exists only once its timer fired.
			if r = s.get(t, "/v1/workflows/shop/o-3"); r.Status == http.StatusOK {
				require.Equal(t, "fired", s.get(t, "/v1/timers/"+timerID).JSON(t)["status"], "an instance before its timer fired")
			} else {
				requireProblem(t, r, http.StatusNotFound, "workflow_not_found")
			}
			s.waitState(t, "shop", "o-3", "awaiting_payment")
			require.Equal(t, "fired", s.get(t, "/v1/timers/"+timerID).JSON(t)["status"])
			// After it fired, a retry still schedules nothing: the input is applied once.
			r = s.input(t, "shop", "o-3", delayed, keyed)
			require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
			require.Equal(t, "true", r.Header.Get("Idempotent-Replayed"))
			require.Equal(t, "fired", path(t, r.JSON(t), "timer", "status"))
			fromTimers := 0
			for _, in := range path(t, s.get(t, "/v1/workflows/shop/o-3/inputs").JSON(t), "items").([]any) {
				if in.(map[string]any)["source"] == "timer" {
					fromTimers++
				}
			}
			require.Equal(t, 1, fromTimers)
			r = s.input(t, "shop", "o-3", map[string]any{"type": "place", "data": map[string]any{"total": 2}, "deliver_after": "200ms"}, keyed)
			requireProblem(t, r, http.StatusUnprocessableEntity, "idempotency_key_reused")

			// A delayed input far ahead, cancelled by an operator.
			at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
			r = s.input(t, "shop", "o-4", map[string]any{"type": "place", "data": map[string]any{"total": 1}, "deliver_at": at}, nil)
			require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
			later := path(t, r.JSON(t), "timer", "id").(string)
			r = s.do(t, req{Method: http.MethodDelete, Path: "/v1/timers/" + later})
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Equal(t, "cancelled", r.JSON(t)["status"])
			requireProblem(t, s.do(t, req{Method: http.MethodDelete, Path: "/v1/timers/" + later}), http.StatusConflict, "wrong_status")
			requireProblem(t, s.get(t, "/v1/timers/nope"), http.StatusNotFound, "timer_not_found")
			requireProblem(t, s.get(t, "/v1/effects/nope"), http.StatusNotFound, "effect_not_found")

			// Invalid delayed inputs are refused up front.
			r = s.input(t, "shop", "o-5", map[string]any{"type": "teleport", "deliver_after": "1s"}, nil)
			requireProblem(t, r, http.StatusUnprocessableEntity, "unknown_input")
			r = s.input(t, "shop", "o-5", map[string]any{"type": "place", "deliver_after": "soon"}, nil)
			requireProblem(t, r, http.StatusUnprocessableEntity, "invalid_request")

			// The rotation's optional body is checked like any other; bad ones rotate nothing.
			rotate := "/v1/workflow-types/shop/webhook/rotate-secret"
			r = s.do(t, req{Method: http.MethodPost, Path: rotate,
				Body: `{"grace_period": "` + strings.Repeat("x", 2<<20) + `"}`})
			requireProblem(t, r, http.StatusRequestEntityTooLarge, "body_too_large")
			r = s.do(t, req{Method: http.MethodPost, Path: rotate, Body: `{"grace_period": "1h"}`,
				Header: map[string]string{"Content-Type": "text/plain"}})
			requireProblem(t, r, http.StatusUnsupportedMediaType, "unsupported_media_type")
			require.Equal(t, "whsec_…"+secret[len(secret)-4:], s.get(t, "/v1/workflow-types/shop/webhook").JSON(t)["secret"],
				"reads mask the secret")

			// Rotation: the next delivery carries both signatures.
			r = s.do(t, req{Method: http.MethodPost, Path: "/v1/workflow-types/shop/webhook/rotate-secret",
				Body: map[string]string{"grace_period": "1h"}})
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			newSecret := r.JSON(t)["secret"].(string)
			require.NotEqual(t, secret, newSecret)
			r = s.input(t, "shop", "o-6", map[string]any{"type": "place", "data": map[string]any{"total": 2}}, nil)
			require.Equal(t, http.StatusOK, r.Status)
			require.Eventually(t, func() bool {
				rcv.mu.Lock()
				defer rcv.mu.Unlock()
				for i, h := range rcv.got {
					if !strings.Contains(string(rcv.raw[i]), `"o-6"`) {
						continue
					}
					require.Len(t, strings.Split(h.Get("webhook-signature"), " "), 2)
					verifySignature(t, secret, h, rcv.raw[i])
					verifySignature(t, newSecret, h, rcv.raw[i])
					return true
				}
				return false
			}, 10*time.Second, 10*time.Millisecond)

			// A worker records its metric after the commit the test waited for: wait for
			// the metric too.
			delivered := regexp.MustCompile(`ironflow_webhook_deliveries_total\{result="delivered"\} [1-9]`)
			fired := regexp.MustCompile(`ironflow_timers_fired_total\{result="fired"\} [1-9]`)
			var m string
			require.Eventually(t, func() bool {
				m = string(s.get(t, "/metrics").Body)
				return delivered.MatchString(m) && fired.MatchString(m)
			}, 10*time.Second, 10*time.Millisecond, "delivery and firing metrics")
			require.Contains(t, m, "ironflow_effects_pending ")
			require.Contains(t, m, "ironflow_timers_pending ")
		})
	}
}

// TestRestartFiresOverdueTimers: a server stops with timers pending; they fall due
// while it is down; a new server on the same database fires them right after it starts.
func TestRestartFiresOverdueTimers(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dbURL := databaseURL(t, backend)
			env := map[string]string{"IRONFLOW_DATABASE_URL": dbURL, "IRONFLOW_API_KEYS": "k"}
			first := startServer(t, backend, env)
			r := first.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/shop", Body: shopDefinition})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			// A payment timeout of an hour keeps them in awaiting_payment once fired: a
			// loaded machine must not see them pass through it to expired unseen.
			for i := range 3 {
				r = first.input(t, "shop", fmt.Sprintf("o-%d", i), map[string]any{"type": "place",
					"data": map[string]any{"total": 1, "timeout": "1h"}, "deliver_after": "300ms"}, nil)
				require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
			}
			first.stop() // the server goes down before they fire
			time.Sleep(400 * time.Millisecond)

			second := startServer(t, backend, env)
			started := time.Now()
			for i := range 3 {
				second.waitState(t, "shop", fmt.Sprintf("o-%d", i), "awaiting_payment")
			}
			require.Less(t, time.Since(started), 2*time.Second)
		})
	}
}

// TestTwoServersShareTimers: two servers on one PostgreSQL database fire every timer
// exactly once between them.
func TestTwoServersShareTimers(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.MigratedDatabaseURL(t, postgres.Migrate)
	env := map[string]string{"IRONFLOW_DATABASE_URL": dbURL}
	a := startServer(t, "postgres", env)
	b := startServer(t, "postgres", env)
	r := a.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/shop", Body: shopDefinition})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	const n = 60
	at := time.Now().Add(500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	for i := range n {
		srv := a
		if i%2 == 1 {
			srv = b
		}
		r = srv.input(t, "shop", fmt.Sprintf("o-%d", i), map[string]any{"type": "place",
			"data": map[string]any{"total": 1}, "deliver_at": at}, nil)
		require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
	}
	// Each delayed place fires once; then each instance's 400ms state timeout fires.
	fired := func(s *testServer) int {
		m := regexp.MustCompile(`ironflow_timers_fired_total\{result="fired"\} (\d+)`).FindStringSubmatch(string(s.get(t, "/metrics").Body))
		if m == nil {
			return 0
		}
		v, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		return v
	}
	require.Eventually(t, func() bool { return fired(a)+fired(b) >= 2*n }, 15*time.Second, 20*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, 2*n, fired(a)+fired(b), "every timer fired exactly once")
	for i := range n {
		a.waitState(t, "shop", fmt.Sprintf("o-%d", i), "expired")
	}
	t.Logf("server a fired %d, server b fired %d", fired(a), fired(b))
}
