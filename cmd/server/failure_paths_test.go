package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// transferDefinition: starting emits a deposit and arms a state timeout; a failure
// input ends the instance failed.
const transferDefinition = `{
  "initial_state": "new",
  "inputs": {"start": {}, "deposited": {}, "timeout": {}, "fail": {}},
  "states": {
    "new": {"on": {"start": {"to": "depositing", "effects": [{"name": "deposit"}]},
                   "fail": {"to": "failed"}}},
    "depositing": {
      "timers": [{"key": "give_up", "after": "1500ms", "input": {"type": "timeout"}}],
      "on": {"deposited": {"to": "done"}, "timeout": {"to": "failed"}}},
    "done": {"terminal": true},
    "failed": {"terminal": "failed"}
  }
}`

// blockingReceiver fails the first attempts of every delivery with 500, then holds the
// next one until release is closed and answers it 2xx with a routed input.
type blockingReceiver struct {
	*httptest.Server
	failFirst int
	release   chan struct{}
	held      chan struct{} // closed when the held attempt arrived
	mu        sync.Mutex
	n         int
}

func newBlockingReceiver(t *testing.T, failFirst int, answer string) *blockingReceiver {
	t.Helper()
	b := &blockingReceiver{failFirst: failFirst, release: make(chan struct{}), held: make(chan struct{})}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		b.mu.Lock()
		b.n++
		n := b.n
		b.mu.Unlock()
		switch {
		case n <= b.failFirst:
			w.WriteHeader(http.StatusInternalServerError)
		case n == b.failFirst+1:
			close(b.held)
			<-b.release
			_, _ = io.WriteString(w, answer)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(b.Close)
	t.Cleanup(func() {
		select {
		case <-b.release:
		default:
			close(b.release)
		}
	})
	return b
}

func (b *blockingReceiver) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// TestTerminateEndToEnd: an instance with a pending timer and a retrying effect whose
// attempt is in flight is terminated: one event, timer and effect cancelled, the answer
// that arrives afterwards recorded and never routed, no attempt after it, no firing; a
// second terminate is 409, the same Idempotency-Key replays. "terminal": "failed" ends
// an instance failed; the status filter and the ended counter see all of it.
func TestTerminateEndToEnd(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, backend, map[string]string{
				"IRONFLOW_WEBHOOK_ALLOW_NETS":     "127.0.0.0/8",
				"IRONFLOW_RETRY_INITIAL_INTERVAL": "20ms",
				"IRONFLOW_RETRY_MAX_INTERVAL":     "50ms",
				"IRONFLOW_MAX_ATTEMPTS":           "100",
			})
			rcv := newBlockingReceiver(t, 2, `{"input": {"type": "deposited"}}`)
			r := s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/transfer", Body: transferDefinition})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			r = s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/transfer/webhook", Body: map[string]string{"url": rcv.URL}})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)

			started := time.Now()
			r = s.input(t, "transfer", "t-1", map[string]any{"type": "start"}, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			select {
			case <-rcv.held: // two failed attempts, the third in flight
			case <-time.After(10 * time.Second):
				t.Fatal("the third deposit attempt never arrived")
			}

			terminate := func(reason, key string) response {
				h := map[string]string{}
				if key != "" {
					h["Idempotency-Key"] = key
				}
				return s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/transfer/t-1/terminate",
					Body: map[string]string{"reason": reason}, Header: h})
			}
			r = terminate("customer called", "term-1")
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			body := r.JSON(t)
			require.Equal(t, "accepted", body["outcome"])
			require.Equal(t, "terminated", path(t, body, "workflow", "status"))
			require.NotNil(t, path(t, body, "workflow", "completed_at"))
			require.EqualValues(t, 2, path(t, body, "workflow", "version"))
			require.Equal(t, "Terminated", path(t, body, "events", 0, "type"))
			terminated := r.Body

			events := path(t, s.get(t, "/v1/workflows/transfer/t-1/events").JSON(t), "items").([]any)
			require.Len(t, events, 2, "one event for the termination")
			require.Equal(t, "Terminated", path(t, events[1], "type"))
			require.Equal(t, "depositing", path(t, events[1], "to"))
			inputs := path(t, s.get(t, "/v1/workflows/transfer/t-1/inputs").JSON(t), "items").([]any)
			require.Equal(t, "customer called", path(t, inputs[len(inputs)-1], "data", "reason"))
			effects := path(t, s.get(t, "/v1/workflows/transfer/t-1/effects").JSON(t), "items").([]any)
			require.Len(t, effects, 1)
			require.Equal(t, "cancelled", path(t, effects[0], "status"))
			effectID := path(t, effects[0], "id").(string)
			require.Equal(t, "cancelled", path(t, s.get(t, "/v1/workflows/transfer/t-1/timers").JSON(t), "items", 0, "status"))
			require.Len(t, path(t, s.get(t, "/v1/effects?status=cancelled").JSON(t), "items"), 1)

			// The answer in flight arrives now: recorded, never routed, not retried.
			close(rcv.release)
			require.Eventually(t, func() bool {
				return len(path(t, s.get(t, "/v1/effects/"+effectID).JSON(t), "attempts").([]any)) == 3
			}, 10*time.Second, 10*time.Millisecond, "the late answer is recorded")
			eff := s.get(t, "/v1/effects/"+effectID).JSON(t)
			require.Equal(t, "cancelled", eff["status"])
			require.EqualValues(t, 200, path(t, eff, "attempts", 2, "status_code"))
			require.NotEqual(t, "accepted", path(t, eff, "attempts", 2, "routed_outcome"))

			// Past the timer's due time: nothing fired, nothing more was delivered.
			time.Sleep(time.Until(started.Add(2 * time.Second)))
			require.Equal(t, 3, rcv.count(), "no deposit attempt after the termination")
			wf := s.get(t, "/v1/workflows/transfer/t-1").JSON(t)
			require.EqualValues(t, 2, wf["version"], "neither the answer nor the timer reached the instance")
			require.Equal(t, "terminated", wf["status"])
			require.Equal(t, "cancelled", path(t, s.get(t, "/v1/workflows/transfer/t-1/timers").JSON(t), "items", 0, "status"))

			// Once ended: 409; the same key replays the first answer; another body 422.
			r = terminate("again", "")
			require.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
			require.Equal(t, "already_completed", r.JSON(t)["outcome"])
			r = terminate("customer called", "term-1")
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Equal(t, "true", r.Header.Get("Idempotent-Replayed"))
			require.JSONEq(t, string(terminated), string(r.Body))
			requireProblem(t, terminate("something else", "term-1"), http.StatusUnprocessableEntity, "idempotency_key_reused")
			requireProblem(t, s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/transfer/nope/terminate",
				Body: map[string]string{"reason": "x"}}), http.StatusNotFound, "workflow_not_found")
			r = s.input(t, "transfer", "t-1", map[string]any{"type": "deposited"}, nil)
			require.Equal(t, http.StatusConflict, r.Status)
			require.Equal(t, "already_completed", r.JSON(t)["outcome"])

			// "terminal": "failed".
			r = s.input(t, "transfer", "t-2", map[string]any{"type": "fail"}, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Equal(t, "failed", path(t, r.JSON(t), "workflow", "status"))
			for status, n := range map[string]int{"terminated": 1, "failed": 1, "completed": 0, "running": 0} {
				items := path(t, s.get(t, "/v1/workflows?type=transfer&status="+status).JSON(t), "items").([]any)
				require.Len(t, items, n, status)
			}
			requireProblem(t, s.get(t, "/v1/workflows?status=cancelled"), http.StatusBadRequest, "invalid_argument")

			metrics := string(s.get(t, "/metrics").Body)
			require.Contains(t, metrics, `ironflow_instances_ended_total{status="terminated",workflow_type="transfer"} 1`)
			require.Contains(t, metrics, `ironflow_instances_ended_total{status="failed",workflow_type="transfer"} 1`)
			require.Contains(t, metrics, "ironflow_effects_cancelled 1")
			require.True(t, strings.Contains(metrics, `result="cancelled"`), "the outbox counts the cancelled completion")
		})
	}
}

// raceDefinition: a deposit retried quickly, with the scope under test, and a state
// timeout that gives up after 1 s and refunds.
func raceDefinition(scope string) string {
	return `{
  "initial_state": "new",
  "inputs": {"start": {}, "deposited": {}, "timeout": {}, "refunded": {}},
  "states": {
    "new": {"on": {"start": {"to": "depositing", "effects": [{"name": "deposit", "scope": "` + scope + `", "timeout": "2s",
        "retry": {"max_attempts": 100, "initial_interval": "50ms", "max_interval": "200ms"}}]}}},
    "depositing": {
      "timers": [{"key": "give_up", "after": "1s", "input": {"type": "timeout"}}],
      "on": {"deposited": {"to": "done"},
             "timeout": {"to": "refunding", "effects": [{"name": "refund"}]}}},
    "refunding": {"on": {"refunded": {"to": "failed"}}},
    "done": {"terminal": true},
    "failed": {"terminal": "failed"}
  }
}`
}

// effectReceiver answers each delivery as answer says for its effect (status code and
// body) and records the order in which they arrived.
type effectReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	n        int              // deliveries arrived
	arrivals map[string][]int // by effect name, each delivery's place in the arrival order (1, 2, …)
}

func newEffectReceiver(t *testing.T, answer func(effect string) (int, string)) *effectReceiver {
	t.Helper()
	b := &effectReceiver{arrivals: map[string][]int{}}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Data struct {
				Effect string `json:"effect"`
			} `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.n++
		b.arrivals[msg.Data.Effect] = append(b.arrivals[msg.Data.Effect], b.n)
		b.mu.Unlock()
		code, body := answer(msg.Data.Effect)
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(b.Close)
	return b
}

// newBankReceiver answers deposits 500 until accept is set, then 2xx with a deposited
// input; withdrawals and refunds at once with a withdrawn or refunded input.
func newBankReceiver(t *testing.T, accept *atomic.Bool) *effectReceiver {
	t.Helper()
	return newEffectReceiver(t, func(effect string) (int, string) {
		switch {
		case effect == "deposit" && !accept.Load():
			return http.StatusInternalServerError, ""
		case effect == "deposit":
			return http.StatusOK, `{"input": {"type": "deposited"}}`
		case effect == "withdraw":
			return http.StatusOK, `{"input": {"type": "withdrawn"}}`
		case effect == "refund":
			return http.StatusOK, `{"input": {"type": "refunded"}}`
		}
		return http.StatusNotFound, ""
	})
}

// count returns how many deliveries of effect arrived, and how many of them after the
// delivery in place after of the arrival order (0: all of them).
func (b *effectReceiver) count(effect string, after int) (all, later int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, at := range b.arrivals[effect] {
		if at > after {
			later++
		}
	}
	return len(b.arrivals[effect]), later
}

// first returns the place in the arrival order of effect's first delivery, 0 if none.
func (b *effectReceiver) first(effect string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if at := b.arrivals[effect]; len(at) > 0 {
		return at[0]
	}
	return 0
}

// TestStateScopedEffectRace: the deposit keeps failing while a 1 s state timeout moves
// the instance on to a refund; once the refund has landed the receiver accepts
// deposits. With scope "state" leaving the state cancels the deposit: no attempt starts
// after the timeout and no answer of it is routed. With scope "instance" (the default,
// and what every effect was before) the same run deposits after the refund: the race
// this scope exists to end.
//
// Every "after" here is the receiver's arrival order, not a clock: the refund is
// emitted by the transaction that leaves the state, so a deposit arriving after it was
// attempted after the timeout, however slow the machine.
func TestStateScopedEffectRace(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		for _, scope := range []string{"state", "instance"} {
			t.Run(backend+"/"+scope, func(t *testing.T) {
				t.Parallel()
				s := startServer(t, backend, map[string]string{"IRONFLOW_WEBHOOK_ALLOW_NETS": "127.0.0.0/8"})
				accept := new(atomic.Bool)
				rcv := newBankReceiver(t, accept)
				r := s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/transfer", Body: raceDefinition(scope)})
				require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
				r = s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/transfer/webhook", Body: map[string]string{"url": rcv.URL}})
				require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
				r = s.input(t, "transfer", "t-1", map[string]any{"type": "start"}, nil)
				require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
				deposit := path(t, r.JSON(t), "effects", 0, "id").(string)

				require.Eventually(t, func() bool {
					return path(t, s.get(t, "/v1/workflows/transfer/t-1").JSON(t), "state", "name") != "depositing"
				}, 20*time.Second, 10*time.Millisecond, "the state timeout never fired")
				require.Eventually(t, func() bool {
					return s.get(t, "/v1/workflows/transfer/t-1").JSON(t)["status"] == "failed"
				}, 20*time.Second, 10*time.Millisecond, "the refund never completed")
				// The deposit has failed so far; from now on it would succeed.
				accept.Store(true)
				refunded := rcv.first("refund")
				require.Positive(t, refunded)

				if scope == "instance" {
					require.Eventually(t, func() bool {
						return s.get(t, "/v1/effects/"+deposit).JSON(t)["status"] == "delivered"
					}, 20*time.Second, 10*time.Millisecond, "without scope the deposit goes on and lands")
					_, later := rcv.count("deposit", refunded)
					require.Positive(t, later, "deposit attempts went on after the timeout")
					require.Equal(t, 1, routedAttempts(t, s.get(t, "/v1/effects/"+deposit).JSON(t)),
						"and its answer is routed to an instance that has refunded")
					return
				}
				// A deposit still being retried (every 200 ms at most) would land in
				// this second; a cancelled one is never attempted again.
				time.Sleep(time.Second)
				all, later := rcv.count("deposit", refunded)
				// At most the attempt already in flight when the state was left can
				// arrive after the refund: the cancellation ends its retries, and its
				// answer is recorded, not routed.
				require.LessOrEqual(t, later, 1, "no deposit attempt starts after the timeout (%d in all, %d after the refund)", all, later)
				var eff map[string]any
				require.Eventually(t, func() bool {
					eff = s.get(t, "/v1/effects/"+deposit).JSON(t)
					return len(eff["attempts"].([]any)) == all
				}, 20*time.Second, 10*time.Millisecond, "every attempt that reached the receiver is in the log")
				require.Equal(t, "cancelled", eff["status"])
				require.Zero(t, routedAttempts(t, eff), "no deposit answer is routed")
				var history []string
				for _, ev := range path(t, s.get(t, "/v1/workflows/transfer/t-1/events").JSON(t), "items").([]any) {
					history = append(history, path(t, ev, "type").(string)+":"+path(t, ev, "from").(string)+"->"+path(t, ev, "to").(string))
				}
				require.Equal(t, []string{"start:new->depositing", "timeout:depositing->refunding", "refunded:refunding->failed"}, history)
				refunds, _ := rcv.count("refund", 0)
				require.Equal(t, 1, refunds)
			})
		}
	}
}

// routedAttempts counts the attempts in an effect's log whose answer was routed to its
// instance.
func routedAttempts(t *testing.T, eff map[string]any) int {
	t.Helper()
	routed := 0
	for _, a := range eff["attempts"].([]any) {
		if o, _ := a.(map[string]any)["routed_outcome"].(string); o != "" && o != "not_routed_cancelled" {
			routed++
		}
	}
	return routed
}

// TestSagaEndToEnd runs examples/saga.json against a bank whose deposits always fail:
// withdraw, deposit twice (its retry.max_attempts), on_dead in the transaction that
// marks it dead, refund, and the instance ends failed. Then an operator retries the
// dead deposit: it is delivered as before and dies again, and on_dead does not run
// twice.
func TestSagaEndToEnd(t *testing.T) {
	t.Parallel()
	saga, err := os.ReadFile(filepath.Join("..", "..", "examples", "saga.json"))
	require.NoError(t, err)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, backend, map[string]string{"IRONFLOW_WEBHOOK_ALLOW_NETS": "127.0.0.0/8"})
			rcv := newBankReceiver(t, new(atomic.Bool))
			r := s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/transfer", Body: json.RawMessage(saga)})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			r = s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/transfer/webhook", Body: map[string]string{"url": rcv.URL}})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			r = s.input(t, "transfer", "t-1", map[string]any{"type": "start",
				"data": map[string]any{"from": "alice", "to": "bob", "amount": 100}}, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

			var wf map[string]any
			require.Eventually(t, func() bool {
				wf = s.get(t, "/v1/workflows/transfer/t-1").JSON(t)
				return wf["status"] != "running"
			}, 30*time.Second, 20*time.Millisecond, "the saga never ended")
			require.Equal(t, "failed", wf["status"])
			require.Equal(t, "failed", path(t, wf, "state", "name"))
			require.EqualValues(t, 4, wf["version"])
			require.Equal(t, "unexpected status 500 Internal Server Error", path(t, wf, "state", "data", "error"))
			require.EqualValues(t, 2, path(t, wf, "state", "data", "attempts"))

			var history []string
			for _, ev := range path(t, s.get(t, "/v1/workflows/transfer/t-1/events").JSON(t), "items").([]any) {
				history = append(history, path(t, ev, "type").(string)+":"+path(t, ev, "from").(string)+"->"+path(t, ev, "to").(string))
			}
			require.Equal(t, []string{"start:new->withdrawing", "withdrawn:withdrawing->depositing",
				"deposit_failed:depositing->refunding", "refunded:refunding->failed"}, history)

			effects := path(t, s.get(t, "/v1/workflows/transfer/t-1/effects").JSON(t), "items").([]any)
			require.Len(t, effects, 3)
			ids := map[string]string{}
			for i, want := range []struct{ name, status, scope string }{
				{"withdraw", "delivered", "instance"}, {"deposit", "dead", "state"}, {"refund", "delivered", "instance"},
			} {
				require.Equal(t, want.name, path(t, effects[i], "name"))
				require.Equal(t, want.status, path(t, effects[i], "status"), want.name)
				require.Equal(t, want.scope, path(t, effects[i], "scope"), want.name)
				ids[want.name] = path(t, effects[i], "id").(string)
			}
			deposit := s.get(t, "/v1/effects/"+ids["deposit"]).JSON(t)
			require.EqualValues(t, 2, deposit["attempt_count"])
			require.Equal(t, "accepted", deposit["on_dead_outcome"])
			attempts := deposit["attempts"].([]any)
			require.Len(t, attempts, 2)
			for i, a := range attempts {
				require.EqualValues(t, 500, path(t, a, "status_code"))
				if i == 0 {
					require.Nil(t, path(t, a, "routed_outcome"), "a retried attempt routes nothing")
				}
			}
			require.Equal(t, "accepted", path(t, attempts[1], "routed_outcome"), "the on_dead decision is in the attempt log")
			for _, name := range []string{"withdraw", "refund"} {
				ef := s.get(t, "/v1/effects/"+ids[name]).JSON(t)
				require.Len(t, ef["attempts"], 1, name)
				require.Equal(t, "accepted", path(t, ef, "attempts", 0, "routed_outcome"), name)
			}

			var inputs []string
			for _, in := range path(t, s.get(t, "/v1/workflows/transfer/t-1/inputs").JSON(t), "items").([]any) {
				key, _ := path(t, in, "idempotency_key").(string)
				inputs = append(inputs, path(t, in, "type").(string)+"/"+path(t, in, "source").(string)+"/"+key)
			}
			require.Equal(t, []string{"start/api/", "withdrawn/effect/" + ids["withdraw"],
				"deposit_failed/effect/" + ids["deposit"] + "/on_dead", "refunded/effect/" + ids["refund"]}, inputs)

			for name, n := range map[string]int{"withdraw": 1, "deposit": 2, "refund": 1} {
				got, _ := rcv.count(name, 0)
				require.Equal(t, n, got, "deliveries of %s", name)
			}
			require.Len(t, path(t, s.get(t, "/v1/workflows?type=transfer&status=failed").JSON(t), "items"), 1)

			// An operator retry works as before, and says on_dead already ran.
			r = s.do(t, req{Method: http.MethodPost, Path: "/v1/effects/" + ids["deposit"] + "/retry"})
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Equal(t, "pending", r.JSON(t)["status"])
			require.Equal(t, "accepted", r.JSON(t)["on_dead_outcome"])
			require.Eventually(t, func() bool {
				return s.get(t, "/v1/effects/"+ids["deposit"]).JSON(t)["status"] == "dead"
			}, 30*time.Second, 20*time.Millisecond, "the retried deposit never died again")
			deposit = s.get(t, "/v1/effects/"+ids["deposit"]).JSON(t)
			attempts = deposit["attempts"].([]any)
			require.Len(t, attempts, 4)
			require.Equal(t, "accepted", path(t, attempts[3], "routed_outcome"),
				"the first on_dead outcome, replayed: it did not run on the ended instance")
			got, _ := rcv.count("deposit", 0)
			require.Equal(t, 4, got)
			require.EqualValues(t, 4, s.get(t, "/v1/workflows/transfer/t-1").JSON(t)["version"])
		})
	}
}

// shipmentDefinition ships each item of the start input with its own effect; a ship
// that dies reports its item through on_dead. The state never holds the items: only
// the element each effect kept can tell on_dead which one it was.
const shipmentDefinition = `{
  "initial_state": "new",
  "inputs": {
    "start": {"schema": {"type": "object", "required": ["items"]}},
    "ship_failed": {"schema": {"type": "object", "required": ["sku", "qty", "index", "key"]}}
  },
  "states": {
    "new": {"on": {"start": {"to": "shipping", "data": "{'count': size(input.data.items)}", "effects": [
      {"name": "ship", "for_each": "input.data.items", "key": "'ship-' + item.sku",
       "payload": "{'sku': item.sku, 'qty': item.qty}",
       "retry": {"max_attempts": 2, "initial_interval": "10ms", "max_interval": "20ms"},
       "on_dead": {"type": "ship_failed",
                   "data": "{'sku': item.sku, 'qty': item.qty, 'index': index, 'key': effect.key}"}}]}}},
    "shipping": {"on": {"ship_failed": {}}}
  }
}`

// TestOnDeadSeesForEachItem: each effect of a for_each whose receiver always fails
// dies, and its on_dead input carries fields of the element it was emitted for (item)
// and its position (index), though the list is in no state. An on_dead that names item
// on an effect without for_each is refused at PUT, as its payload would be.
func TestOnDeadSeesForEachItem(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, backend, map[string]string{"IRONFLOW_WEBHOOK_ALLOW_NETS": "127.0.0.0/8"})
			var deliveries atomic.Int64
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				deliveries.Add(1)
				w.WriteHeader(http.StatusInternalServerError)
			}))
			t.Cleanup(rcv.Close)

			noForEach := strings.Replace(shipmentDefinition, `"for_each": "input.data.items", "key": "'ship-' + item.sku",
       "payload": "{'sku': item.sku, 'qty': item.qty}",`, "", 1)
			require.NotEqual(t, shipmentDefinition, noForEach)
			p := requireProblem(t, s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/shipment", Body: json.RawMessage(noForEach)}),
				http.StatusUnprocessableEntity, "invalid_definition")
			require.Equal(t, "/states/new/on/start/effects/0/on_dead/data", path(t, p, "errors", 0, "path"), "%v", p)
			require.Contains(t, path(t, p, "errors", 0, "message"), "undeclared reference to 'item'")

			r := s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/shipment", Body: json.RawMessage(shipmentDefinition)})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			r = s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/shipment/webhook", Body: map[string]string{"url": rcv.URL}})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			r = s.input(t, "shipment", "s-1", map[string]any{"type": "start", "data": map[string]any{"items": []any{
				map[string]any{"sku": "a-1", "qty": 3},
				map[string]any{"sku": "b-2", "qty": 1.5, "note": "fragile"},
			}}}, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

			var inputs []any
			require.Eventually(t, func() bool {
				inputs = path(t, s.get(t, "/v1/workflows/shipment/s-1/inputs").JSON(t), "items").([]any)
				return len(inputs) == 3
			}, 30*time.Second, 20*time.Millisecond, "both ships never died")
			effects := map[string]string{} // key → id
			for _, ef := range path(t, s.get(t, "/v1/workflows/shipment/s-1/effects").JSON(t), "items").([]any) {
				id := path(t, ef, "id").(string)
				effects[path(t, ef, "key").(string)] = id
				got := s.get(t, "/v1/effects/"+id).JSON(t)
				require.Equal(t, "dead", got["status"])
				require.Equal(t, "accepted", got["on_dead_outcome"])
			}
			require.Len(t, effects, 2)
			want := map[string]string{
				effects["ship-a-1"] + "/on_dead": `{"sku": "a-1", "qty": 3, "index": 0, "key": "ship-a-1"}`,
				effects["ship-b-2"] + "/on_dead": `{"sku": "b-2", "qty": 1.5, "index": 1, "key": "ship-b-2"}`,
			}
			for _, in := range inputs[1:] {
				require.Equal(t, "ship_failed", path(t, in, "type"))
				require.Equal(t, "accepted", path(t, in, "outcome"))
				key := path(t, in, "idempotency_key").(string)
				require.Contains(t, want, key)
				data, err := json.Marshal(path(t, in, "data"))
				require.NoError(t, err)
				require.JSONEq(t, want[key], string(data), key)
				delete(want, key)
			}
			require.Empty(t, want, "one on_dead input per effect")
			wf := s.get(t, "/v1/workflows/shipment/s-1").JSON(t)
			require.EqualValues(t, 2, path(t, wf, "state", "data", "count"))
			require.NotContains(t, path(t, wf, "state", "data"), "items", "the items are in no state")
			require.EqualValues(t, 4, deliveries.Load(), "two attempts of each ship")
		})
	}
}
