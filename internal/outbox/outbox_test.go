package outbox_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/enginetest"
	"github.com/ironflow/ironflow/internal/outbox"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const orderType = "order"

// orderDefinition: placing an order emits reserve_stock; the receiver answers with a
// "reserved" input that completes the workflow.
const orderDefinition = `{
  "initial_state": "new",
  "inputs": {
    "place": {},
    "reserved": {"schema": {"type": "object", "required": ["ok"]}}
  },
  "states": {
    "new": {"on": {"place": {"to": "reserving", "event": "OrderPlaced",
      "effects": [{"name": "reserve_stock", "payload": "{'total': input.data.total}"}]}}},
    "reserving": {"on": {"reserved": {"to": "done", "event": "StockReserved"}}},
    "done": {"terminal": true}
  }
}`

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// delivery is one request the receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver is a real webhook endpoint whose answers a test scripts.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []delivery
	respond func(n int, d delivery) (status int, body string)
}

func newReceiver(t *testing.T, respond func(n int, d delivery) (int, string)) *receiver {
	t.Helper()
	r := &receiver{respond: respond}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		d := delivery{header: req.Header.Clone(), body: body}
		r.mu.Lock()
		r.got = append(r.got, d)
		n := len(r.got)
		r.mu.Unlock()
		status, resp := http.StatusOK, ""
		if r.respond != nil {
			status, resp = r.respond(n, d)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, resp)
	}))
	t.Cleanup(r.Close)
	return r
}

// workflowID is the id of the instance whose effect d delivers.
func (d delivery) workflowID() string {
	var msg struct {
		Data struct {
			WorkflowID string `json:"workflow_id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(d.body, &msg)
	return msg.Data.WorkflowID
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// env is one test's store, engine and worker settings.
type env struct {
	t     testing.TB
	db    enginetest.Database
	store store.Store
	eng   *engine.Engine
}

func newEnv(t testing.TB, b enginetest.Backend) *env {
	t.Helper()
	db := b.NewDatabase(t)
	st := db.Open(t)
	e := &env{t: t, db: db, store: st, eng: engine.New(engine.Config{Store: st})}
	_, _, err := e.eng.PutDefinition(context.Background(), orderType, []byte(orderDefinition))
	require.NoError(t, err)
	return e
}

// worker returns a started outbox worker over st with test-sized intervals, stopped at
// cleanup; cfg fields left zero get those test defaults.
func (e *env) worker(st store.Store, cfg outbox.Config) *outbox.Worker {
	e.t.Helper()
	cfg.Store = st
	if cfg.Engine == nil {
		cfg.Engine = engine.New(engine.Config{Store: st})
	}
	if cfg.AllowNets == nil {
		cfg.AllowNets = loopback
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.RetryInitialInterval == 0 {
		cfg.RetryInitialInterval = 5 * time.Millisecond
		cfg.RetryMaxInterval = 20 * time.Millisecond
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	w, err := outbox.New(cfg)
	require.NoError(e.t, err)
	require.NoError(e.t, w.Start(context.Background()))
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(e.t, w.Stop(ctx))
	})
	return w
}

// stop stops w and waits for its deliveries in flight to finish, metrics included.
func (e *env) stop(w *outbox.Worker) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(e.t, w.Stop(ctx))
}

func (e *env) putWebhook(url string) engine.WebhookView {
	e.t.Helper()
	v, _, err := e.eng.PutWebhook(context.Background(), orderType, engine.WebhookInput{URL: url})
	require.NoError(e.t, err)
	return v
}

// place starts an order and returns its effect's id.
func (e *env) place(id string) string {
	e.t.Helper()
	out, err := e.eng.Execute(context.Background(), orderType, id,
		workflow.Input{Type: "place", Data: json.RawMessage(`{"total": 40}`)}, engine.ExecuteOptions{})
	require.NoError(e.t, err)
	require.Equal(e.t, store.OutcomeAccepted, out.Outcome)
	require.Len(e.t, out.Write.Effects, 1)
	return out.Write.Effects[0].ID
}

func (e *env) effect(id string) engine.EffectView {
	e.t.Helper()
	v, err := e.eng.GetEffect(context.Background(), id)
	require.NoError(e.t, err)
	return v
}

// waitEffect waits until the effect has status and returns it.
func (e *env) waitEffect(id, status string) engine.EffectView {
	e.t.Helper()
	var v engine.EffectView
	require.Eventually(e.t, func() bool {
		v = e.effect(id)
		return v.Status == status
	}, 10*time.Second, 5*time.Millisecond, "effect %s never became %s", id, status)
	return v
}

func (e *env) workflowState(id string) string {
	e.t.Helper()
	v, err := e.eng.GetWorkflow(context.Background(), orderType, id, 0)
	require.NoError(e.t, err)
	return v.State.Name
}

// routedInputs returns the inputs of an instance that came from effect responses.
func (e *env) routedInputs(id string) []engine.InputView {
	e.t.Helper()
	page, err := e.eng.ListInputs(context.Background(), orderType, id, "", 100)
	require.NoError(e.t, err)
	var out []engine.InputView
	for _, in := range page.Items {
		if in.Source == store.SourceEffect {
			out = append(out, in)
		}
	}
	return out
}

const reservedInput = `{"input": {"type": "reserved", "data": {"ok": true}}}`

// verifyStandardWebhook checks a delivery the way the Standard Webhooks specification
// tells a receiver to, written from the specification rather than from the signer:
// the signed content is "<webhook-id>.<webhook-timestamp>.<body>", the key is the
// base64 after "whsec_", the header holds space-separated "v1,<base64 MAC>" entries
// and one of them must match. It returns how many entries the secret matched.
func verifyStandardWebhook(t *testing.T, secret string, h http.Header, body []byte) int {
	t.Helper()
	id, ts, sigHeader := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	require.NotEmpty(t, id)
	unix, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err)
	require.InDelta(t, time.Now().Unix(), unix, 300, "timestamp outside the 5 minute tolerance")
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := mac.Sum(nil)
	matched := 0
	for _, entry := range strings.Split(sigHeader, " ") {
		version, sig, ok := strings.Cut(entry, ",")
		require.True(t, ok, "signature entry %q", entry)
		require.Equal(t, "v1", version)
		raw, err := base64.StdEncoding.DecodeString(sig)
		require.NoError(t, err)
		if hmac.Equal(raw, want) {
			matched++
		}
	}
	return matched
}

func TestDeliverRoutesInput(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		rcv := newReceiver(t, func(int, delivery) (int, string) { return 200, reservedInput })
		hook := e.putWebhook(rcv.URL + "/hooks")
		reg := prometheus.NewRegistry()
		w := e.worker(e.store, outbox.Config{Registerer: reg})

		effectID := e.place("o-1")
		v := e.waitEffect(effectID, store.EffectDelivered)
		require.Equal(t, "done", e.workflowState("o-1"))
		require.Len(t, v.AttemptLog, 1)
		a := v.AttemptLog[0]
		require.Equal(t, 1, a.Number)
		require.Equal(t, 200, a.StatusCode)
		require.Equal(t, store.OutcomeAccepted, a.RoutedOutcome)
		require.JSONEq(t, reservedInput, a.Response)
		require.NotNil(t, v.DeliveredAt)

		got := rcv.deliveries()
		require.Len(t, got, 1)
		d := got[0]
		require.Equal(t, effectID, d.header.Get("webhook-id"))
		require.Equal(t, 1, verifyStandardWebhook(t, hook.Secret, d.header, d.body))
		var msg struct {
			Type      string    `json:"type"`
			Timestamp time.Time `json:"timestamp"`
			Data      struct {
				EffectID     string          `json:"effect_id"`
				Effect       string          `json:"effect"`
				WorkflowType string          `json:"workflow_type"`
				WorkflowID   string          `json:"workflow_id"`
				Attempt      int             `json:"attempt"`
				Payload      json.RawMessage `json:"payload"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(d.body, &msg))
		require.Equal(t, "order.reserve_stock", msg.Type)
		require.WithinDuration(t, time.Now(), msg.Timestamp, time.Minute)
		require.Equal(t, effectID, msg.Data.EffectID)
		require.Equal(t, "reserve_stock", msg.Data.Effect)
		require.Equal(t, orderType, msg.Data.WorkflowType)
		require.Equal(t, "o-1", msg.Data.WorkflowID)
		require.Equal(t, 1, msg.Data.Attempt)
		require.JSONEq(t, `{"total": 40}`, string(msg.Data.Payload))

		routed := e.routedInputs("o-1")
		require.Len(t, routed, 1)
		require.Equal(t, effectID, routed[0].IdempotencyKey)

		// The delivery is recorded in the store before its metric: stopping the worker
		// waits for the delivery in flight.
		e.stop(w)
		n, err := testutilCount(reg, "ironflow_webhook_deliveries_total", "delivered")
		require.NoError(t, err)
		require.Equal(t, 1.0, n)
	})
}

func TestRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		rcv := newReceiver(t, func(n int, _ delivery) (int, string) {
			if n <= 2 {
				return 500, `{"input": {"type": "reserved", "data": {"ok": true}}, "error": "try later"}`
			}
			return 200, reservedInput
		})
		e.putWebhook(rcv.URL)
		e.worker(e.store, outbox.Config{})

		effectID := e.place("o-1")
		v := e.waitEffect(effectID, store.EffectDelivered)
		require.Len(t, v.AttemptLog, 3)
		for i, a := range v.AttemptLog {
			require.Equal(t, i+1, a.Number)
		}
		require.Equal(t, 500, v.AttemptLog[0].StatusCode)
		require.Contains(t, v.AttemptLog[0].Error, "500")
		require.Empty(t, v.AttemptLog[0].RoutedOutcome, "a failed attempt routes nothing")
		require.Equal(t, 500, v.AttemptLog[1].StatusCode)
		require.Equal(t, 200, v.AttemptLog[2].StatusCode)
		require.Equal(t, store.OutcomeAccepted, v.AttemptLog[2].RoutedOutcome)
		require.Len(t, e.routedInputs("o-1"), 1)
		require.Equal(t, "done", e.workflowState("o-1"))

		got := rcv.deliveries()
		require.Len(t, got, 3)
		for i, d := range got {
			require.Equal(t, effectID, d.header.Get("webhook-id"), "webhook-id is stable across retries")
			var msg struct {
				Data struct {
					Attempt int `json:"attempt"`
				} `json:"data"`
			}
			require.NoError(t, json.Unmarshal(d.body, &msg))
			require.Equal(t, i+1, msg.Data.Attempt)
		}
	})
}

func TestDeadThenOperatorRetry(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		var healthy sync.Mutex
		ok := false
		rcv := newReceiver(t, func(int, delivery) (int, string) {
			healthy.Lock()
			defer healthy.Unlock()
			if ok {
				return 200, reservedInput
			}
			return 503, "down"
		})
		e.putWebhook(rcv.URL)
		e.worker(e.store, outbox.Config{MaxAttempts: 3})

		effectID := e.place("o-1")
		v := e.waitEffect(effectID, store.EffectDead)
		require.Len(t, v.AttemptLog, 3)
		require.Equal(t, 3, v.Attempts)
		require.Contains(t, v.LastError, "503")
		time.Sleep(50 * time.Millisecond)
		require.Len(t, rcv.deliveries(), 3, "a dead effect is not delivered again")

		healthy.Lock()
		ok = true
		healthy.Unlock()
		r, err := e.eng.RetryEffect(context.Background(), effectID)
		require.NoError(t, err)
		require.Equal(t, store.EffectPending, r.Status)
		require.Zero(t, r.Attempts)
		_, err = e.eng.RetryEffect(context.Background(), effectID)
		require.ErrorIs(t, err, store.ErrWrongStatus, "only a dead effect can be retried")

		v = e.waitEffect(effectID, store.EffectDelivered)
		require.Len(t, v.AttemptLog, 4)
		require.Equal(t, 4, v.AttemptLog[3].Number)
		require.Equal(t, "done", e.workflowState("o-1"))
	})
}

func TestGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		var mu sync.Mutex
		gone := true
		rcv := newReceiver(t, func(int, delivery) (int, string) {
			mu.Lock()
			defer mu.Unlock()
			if gone {
				return http.StatusGone, ""
			}
			return 200, reservedInput
		})
		e.putWebhook(rcv.URL)
		e.worker(e.store, outbox.Config{})

		first := e.place("o-1")
		require.Eventually(t, func() bool {
			h, err := e.eng.GetWebhook(context.Background(), orderType)
			require.NoError(t, err)
			return h.Status == store.WebhookDisabled
		}, 10*time.Second, 5*time.Millisecond)
		second := e.place("o-2")
		time.Sleep(100 * time.Millisecond)
		require.Len(t, rcv.deliveries(), 1, "a disabled endpoint receives nothing")
		v := e.effect(first)
		require.Equal(t, store.EffectPending, v.Status)
		require.Len(t, v.AttemptLog, 1)
		require.Equal(t, 410, v.AttemptLog[0].StatusCode)
		require.Equal(t, store.EffectPending, e.effect(second).Status)

		mu.Lock()
		gone = false
		mu.Unlock()
		h := e.putWebhook(rcv.URL)
		require.Equal(t, store.WebhookActive, h.Status)
		e.waitEffect(first, store.EffectDelivered)
		e.waitEffect(second, store.EffectDelivered)
		require.Equal(t, "done", e.workflowState("o-1"))
		require.Equal(t, "done", e.workflowState("o-2"))
	})
}

func TestEffectsWaitForEndpoint(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		rcv := newReceiver(t, func(int, delivery) (int, string) { return 200, "thanks" })
		e.worker(e.store, outbox.Config{})
		effectID := e.place("o-1")
		time.Sleep(100 * time.Millisecond)
		v := e.effect(effectID)
		require.Equal(t, store.EffectPending, v.Status)
		require.Empty(t, v.AttemptLog, "no endpoint: not even claimed")

		e.putWebhook(rcv.URL)
		v = e.waitEffect(effectID, store.EffectDelivered)
		require.Equal(t, "thanks", v.AttemptLog[0].Response, "a non-input body is recorded")
		require.Empty(t, v.AttemptLog[0].RoutedOutcome)
		require.Equal(t, "reserving", e.workflowState("o-1"), "and ignored")
	})
}

// webhookReads counts the endpoint reads of a store.
type webhookReads struct {
	store.Store
	n atomic.Int32
}

func (s *webhookReads) GetWebhook(ctx context.Context, typ string) (store.Webhook, error) {
	s.n.Add(1)
	return s.Store.GetWebhook(ctx, typ)
}

// The endpoint comes with the claim: no read of its own, per claim or per delivery.
func TestEndpointReadWithTheClaim(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		rcv := newReceiver(t, func(int, delivery) (int, string) { return 200, "thanks" })
		e.putWebhook(rcv.URL)
		var ids []string
		for i := range 5 {
			ids = append(ids, e.place(fmt.Sprintf("o-%d", i)))
		}
		st := &webhookReads{Store: e.store}
		e.worker(st, outbox.Config{}) // its first claim takes all five
		for _, id := range ids {
			e.waitEffect(id, store.EffectDelivered)
		}
		require.Len(t, rcv.deliveries(), 5)
		require.Zero(t, st.n.Load())
	})
}

func TestRotationSignsWithBothSecrets(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		rcv := newReceiver(t, nil)
		old := e.putWebhook(rcv.URL)
		rotated, err := e.eng.RotateWebhookSecret(context.Background(), orderType, "", engine.DefaultGracePeriod)
		require.NoError(t, err)
		require.NotEqual(t, old.Secret, rotated.Secret)
		require.True(t, strings.HasPrefix(rotated.Secret, "whsec_"))
		require.Len(t, rotated.Secrets, 2)
		require.Equal(t, rotated.Secret, rotated.Secrets[0].Secret)
		require.NotNil(t, rotated.Secrets[1].ExpiresAt)
		e.worker(e.store, outbox.Config{})

		effectID := e.place("o-1")
		e.waitEffect(effectID, store.EffectDelivered)
		d := rcv.deliveries()[0]
		require.Len(t, strings.Split(d.header.Get("webhook-signature"), " "), 2)
		require.Equal(t, 1, verifyStandardWebhook(t, rotated.Secret, d.header, d.body))
		require.Equal(t, 1, verifyStandardWebhook(t, old.Secret, d.header, d.body))

		// Without a grace period the old secret stops signing at once.
		again, err := e.eng.RotateWebhookSecret(context.Background(), orderType, "", 0)
		require.NoError(t, err)
		e.place("o-2")
		require.Eventually(t, func() bool { return len(rcv.deliveries()) == 2 }, 10*time.Second, 5*time.Millisecond)
		d = rcv.deliveries()[1]
		require.Len(t, strings.Split(d.header.Get("webhook-signature"), " "), 1)
		require.Equal(t, 1, verifyStandardWebhook(t, again.Secret, d.header, d.body))
		require.Zero(t, verifyStandardWebhook(t, rotated.Secret, d.header, d.body))
	})
}

func TestInvalidRoutedInputIsDead(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		cases := map[string]string{
			"o-undeclared": `{"input": {"type": "teleport"}}`,
			"o-bad-data":   `{"input": {"type": "reserved", "data": {"nope": 1}}}`,
			"o-not-object": `{"input": "reserved"}`,
		}
		rcv := newReceiver(t, func(_ int, d delivery) (int, string) { return 200, cases[d.workflowID()] })
		e.putWebhook(rcv.URL)
		e.worker(e.store, outbox.Config{})
		for id := range cases {
			effectID := e.place(id)
			v := e.waitEffect(effectID, store.EffectDead)
			require.Len(t, v.AttemptLog, 1, id)
			require.Contains(t, v.AttemptLog[0].Error, "routed input is invalid", id)
			require.Equal(t, "reserving", e.workflowState(id), id)
		}
	})
}

// TestTwoWorkersDeliverOnce runs two engines with their own stores on one Postgres
// database: every effect arrives exactly once.
func TestTwoWorkersDeliverOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, enginetest.Backends()[1])
	rcv := newReceiver(t, func(int, delivery) (int, string) { return 200, reservedInput })
	e.putWebhook(rcv.URL)
	other := e.db.Open(t)
	w1 := e.worker(e.store, outbox.Config{Concurrency: 4})
	w2 := e.worker(other, outbox.Config{Concurrency: 4})
	require.NotEqual(t, w1.WorkerID(), w2.WorkerID())

	const n = 60
	ids := make([]string, n)
	for i := range n {
		ids[i] = e.place(fmt.Sprintf("o-%d", i))
	}
	for _, id := range ids {
		e.waitEffect(id, store.EffectDelivered)
	}
	seen := map[string]int{}
	for _, d := range rcv.deliveries() {
		seen[d.header.Get("webhook-id")]++
	}
	require.Len(t, seen, n)
	for id, c := range seen {
		require.Equal(t, 1, c, "effect %s delivered %d times", id, c)
	}
	for i := range n {
		require.Equal(t, "done", e.workflowState(fmt.Sprintf("o-%d", i)))
	}
}

// TestLeaseExpiryAndStaleCompletion: a worker whose clock runs behind leases an
// effect that, by the database's other workers' clocks, expires while its delivery
// hangs; another worker claims and delivers it; the first one's late completion is
// refused (lease_lost), so the attempt log and the routed input show one delivery.
func TestLeaseExpiryAndStaleCompletion(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		release := make(chan struct{})
		rcv := newReceiver(t, func(n int, _ delivery) (int, string) {
			if n == 1 {
				<-release // the stale worker's request hangs until the other delivered
			} else {
				defer close(release)
			}
			return 200, reservedInput
		})
		e.putWebhook(rcv.URL)
		staleReg := prometheus.NewRegistry()
		// Its clock is two hours behind and its lease one hour long: by every other
		// clock the lease has expired at once, while its own request (bounded by the
		// lease and the timeout) hangs for as long as a loaded machine needs. The
		// effect was due three hours ago, so that its clock sees it due.
		e.worker(e.store, outbox.Config{Lease: time.Hour, Timeout: time.Minute, Registerer: staleReg,
			NowFunc: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
		past := engine.New(engine.Config{Store: e.store, NowFunc: func() time.Time { return time.Now().Add(-3 * time.Hour) }})
		out, err := past.Execute(context.Background(), orderType, "o-1",
			workflow.Input{Type: "place", Data: json.RawMessage(`{"total": 40}`)}, engine.ExecuteOptions{})
		require.NoError(t, err)
		require.Len(t, out.Write.Effects, 1)
		effectID := out.Write.Effects[0].ID
		require.Eventually(t, func() bool { return len(rcv.deliveries()) == 1 }, 10*time.Second, time.Millisecond)

		// The second worker (another process, as far as leases go) takes over once the
		// lease has expired by its clock.
		e.worker(e.db.Open(t), outbox.Config{PollInterval: 20 * time.Millisecond})
		v := e.waitEffect(effectID, store.EffectDelivered)
		require.Len(t, v.AttemptLog, 1)

		require.Eventually(t, func() bool {
			n, err := testutilCount(staleReg, "ironflow_webhook_deliveries_total", "lease_lost")
			require.NoError(t, err)
			return n == 1
		}, 10*time.Second, 5*time.Millisecond)
		v = e.effect(effectID)
		require.Len(t, v.AttemptLog, 1, "the stale completion recorded nothing")
		require.Len(t, e.routedInputs("o-1"), 1)
		require.Len(t, rcv.deliveries(), 2, "at least once: the receiver saw it twice")
	})
}

// TestKilledWorkerLeaseExpires: a worker is hard-stopped mid-delivery (as if killed);
// nothing is recorded, and once its claim has expired another worker delivers.
func TestKilledWorkerLeaseExpires(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		// The first delivery is held until the worker is dead, however long the test
		// takes to kill it: a sleep in the receiver let a slow test see it finish.
		release := make(chan struct{})
		var releaseOnce sync.Once
		unblock := func() { releaseOnce.Do(func() { close(release) }) }
		rcv := newReceiver(t, func(n int, d delivery) (int, string) {
			if n == 1 {
				<-release
			}
			return 200, reservedInput
		})
		t.Cleanup(unblock) // before the receiver closes, which waits for its handlers
		e.putWebhook(rcv.URL)
		// A lease far longer than the test: it cannot expire (and end the held delivery)
		// before the worker is killed, however slow the machine.
		w, err := outbox.New(outbox.Config{Store: e.store, Engine: e.eng, AllowNets: loopback,
			Lease: time.Hour, PollInterval: 50 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, w.Start(context.Background()))
		effectID := e.place("o-1")
		require.Eventually(t, func() bool { return len(rcv.deliveries()) == 1 }, 10*time.Second, time.Millisecond)
		killed, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, w.Stop(killed), context.Canceled)
		unblock()
		require.Equal(t, store.EffectPending, e.effect(effectID).Status)

		// Another worker, whose clock is past the killed worker's lease, takes it over.
		e.worker(e.db.Open(t), outbox.Config{PollInterval: 50 * time.Millisecond,
			NowFunc: func() time.Time { return time.Now().Add(2 * time.Hour) }})
		v := e.waitEffect(effectID, store.EffectDelivered)
		require.Len(t, v.AttemptLog, 1)
	})
}

func testutilCount(reg *prometheus.Registry, name, result string) (float64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue(), nil
				}
			}
		}
	}
	return 0, nil
}
