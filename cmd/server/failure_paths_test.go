package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
