package timer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/enginetest"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/timer"
	"github.com/ironflow/ironflow/internal/workflow"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const shopType = "shop"

// shopDefinition exercises every timer rule: a transition timer (reminder), a state
// timer (payment_timeout), cancel_timers, an `at` timer, key replacement (reschedule)
// and a heartbeat that re-arms its own key.
const shopDefinition = `{
  "initial_state": "new",
  "inputs": {
    "place": {}, "pay": {}, "remind": {}, "expire": {}, "reschedule": {},
    "set_deadline": {"schema": {"type": "object", "required": ["at"]}},
    "deadline": {}, "beat": {}, "finish": {}
  },
  "states": {
    "new": {"on": {"place": {"to": "waiting", "event": "Placed",
      "timers": [{"key": "reminder", "after": "10m", "input": {"type": "remind"}}]}}},
    "waiting": {
      "timers": [{"key": "payment_timeout", "after": "30m", "input": {"type": "expire"}}],
      "on": {
        "pay": {"to": "paid", "event": "Paid", "cancel_timers": ["reminder"]},
        "remind": {"event": "Reminded"},
        "reschedule": {"event": "Rescheduled",
          "timers": [{"key": "reminder", "after": "1h", "input": {"type": "remind"}}]},
        "set_deadline": {"event": "DeadlineSet",
          "timers": [{"key": "deadline", "at": "timestamp(input.data.at)", "input": {"type": "deadline"}}]},
        "deadline": {"to": "expired", "event": "DeadlineReached"},
        "expire": {"to": "expired", "event": "Expired"}
      }
    },
    "paid": {"on": {
      "beat": {"event": "Beat", "timers": [{"key": "heartbeat", "after": "1m", "input": {"type": "beat"}}]},
      "finish": {"to": "done", "event": "Finished", "cancel_timers": ["heartbeat"]}
    }},
    "done": {"terminal": true},
    "expired": {"terminal": true}
  }
}`

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// flakyStore fails the given number of timer executions with a system error, as a
// database outage would.
type flakyStore struct {
	store.Store
	mu    sync.Mutex
	fails int
}

func (f *flakyStore) failNext(n int) {
	f.mu.Lock()
	f.fails = n
	f.mu.Unlock()
}

func (f *flakyStore) CompleteTimer(ctx context.Context, p store.CompleteTimerParams) error {
	f.mu.Lock()
	fail := p.Route != nil && f.fails > 0
	if fail {
		f.fails--
	}
	f.mu.Unlock()
	if fail {
		return fmt.Errorf("flaky: %w", store.ErrUnavailable)
	}
	return f.Store.CompleteTimer(ctx, p)
}

// CompleteTimers fails like CompleteTimer, one completion at a time.
func (f *flakyStore) CompleteTimers(ctx context.Context, ps []store.CompleteTimerParams) []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = f.CompleteTimer(ctx, p)
	}
	return errs
}

// clocked is a deterministic setup: one store, an engine and a timer worker sharing a
// settable clock; the test drives the worker with RunOnce.
type clocked struct {
	t     *testing.T
	clock *enginetest.Clock
	store *flakyStore
	eng   *engine.Engine
	w     *timer.Worker
}

func newClocked(t *testing.T, b enginetest.Backend, maxAttempts int) *clocked {
	t.Helper()
	st := &flakyStore{Store: b.NewDatabase(t).Open(t)}
	c := &clocked{t: t, clock: enginetest.NewClock(t0), store: st}
	c.eng = engine.New(engine.Config{Store: st, NowFunc: c.clock.Now})
	_, _, err := c.eng.PutDefinition(context.Background(), shopType, []byte(shopDefinition))
	require.NoError(t, err)
	c.w, err = timer.New(timer.Config{
		Store: st, Engine: c.eng, NowFunc: c.clock.Now, MaxAttempts: maxAttempts,
		RetryInitialInterval: time.Minute, RetryMaxInterval: 10 * time.Minute,
		RandFunc:   func(n int64) int64 { return n - 1 }, // always the full ceiling
		Lookahead:  -1,                                   // RunOnce fires exactly what is due at the clock's now
		Registerer: prometheus.NewRegistry(),
	})
	require.NoError(t, err)
	return c
}

func (c *clocked) input(id, typ, data string) engine.Outcome {
	c.t.Helper()
	in := workflow.Input{Type: typ}
	if data != "" {
		in.Data = json.RawMessage(data)
	}
	out, err := c.eng.Execute(context.Background(), shopType, id, in, engine.ExecuteOptions{})
	require.NoError(c.t, err)
	return out
}

// fireAt moves the clock to at and runs the worker once, returning how many fired.
func (c *clocked) fireAt(at time.Time) int {
	c.t.Helper()
	c.clock.Set(at)
	n, err := c.w.RunOnce(context.Background())
	require.NoError(c.t, err)
	return n
}

// timers returns the instance's timers by key; for a key used more than once, the
// newest.
func (c *clocked) timers(id string) map[string]engine.TimerView {
	c.t.Helper()
	page, err := c.eng.ListTimers(context.Background(), store.ListTimersParams{WorkflowType: shopType, WorkflowID: id})
	require.NoError(c.t, err)
	out := map[string]engine.TimerView{}
	for _, tv := range page.Items {
		out[tv.Key] = tv
	}
	return out
}

func (c *clocked) allTimers(id string) []engine.TimerView {
	c.t.Helper()
	page, err := c.eng.ListTimers(context.Background(), store.ListTimersParams{WorkflowType: shopType, WorkflowID: id})
	require.NoError(c.t, err)
	return page.Items
}

func (c *clocked) state(id string) string {
	c.t.Helper()
	v, err := c.eng.GetWorkflow(context.Background(), shopType, id, 0)
	require.NoError(c.t, err)
	return v.State.Name
}

func TestStateAndTransitionTimersFire(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		c := newClocked(t, b, 3)
		out := c.input("s-1", "place", "")
		require.Equal(t, store.OutcomeAccepted, out.Outcome)
		ts := c.timers("s-1")
		require.Equal(t, t0.Add(10*time.Minute), ts["reminder"].FireAt)
		require.Equal(t, t0.Add(30*time.Minute), ts["payment_timeout"].FireAt)
		require.Equal(t, store.TimerPending, ts["payment_timeout"].Status)

		require.Zero(t, c.fireAt(t0.Add(10*time.Minute-time.Microsecond)), "nothing is due yet")
		require.Equal(t, 1, c.fireAt(t0.Add(10*time.Minute)))
		ts = c.timers("s-1")
		require.Equal(t, store.TimerFired, ts["reminder"].Status)
		require.Equal(t, store.OutcomeAccepted, ts["reminder"].Outcome)
		require.Equal(t, "waiting", c.state("s-1"))

		require.Zero(t, c.fireAt(t0.Add(30*time.Minute-time.Microsecond)))
		require.Equal(t, 1, c.fireAt(t0.Add(30*time.Minute)))
		require.Equal(t, "expired", c.state("s-1"))
		ts = c.timers("s-1")
		require.Equal(t, store.TimerFired, ts["payment_timeout"].Status)
		require.NotNil(t, ts["payment_timeout"].FiredAt)
		require.Equal(t, t0.Add(30*time.Minute), *ts["payment_timeout"].FiredAt)

		// Each firing is an input from the timer, keyed by the timer id.
		page, err := c.eng.ListInputs(context.Background(), shopType, "s-1", "", 10)
		require.NoError(t, err)
		require.Len(t, page.Items, 3)
		require.Equal(t, store.SourceTimer, page.Items[1].Source)
		require.Equal(t, ts["reminder"].ID, page.Items[1].IdempotencyKey)
		require.Equal(t, "expire", page.Items[2].Type)
		require.Equal(t, ts["payment_timeout"].ID, page.Items[2].IdempotencyKey)
	})
}

func TestLeavingStateAndCancelTimers(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		c := newClocked(t, b, 3)
		c.input("s-1", "place", "")
		c.clock.Advance(time.Minute)
		out := c.input("s-1", "pay", "")
		require.Equal(t, store.OutcomeAccepted, out.Outcome)
		require.ElementsMatch(t, []string{"payment_timeout", "reminder"}, out.Write.CancelTimerKeys)
		ts := c.timers("s-1")
		require.Equal(t, store.TimerCancelled, ts["payment_timeout"].Status, "leaving the state cancels its timer")
		require.Equal(t, store.TimerCancelled, ts["reminder"].Status, "cancel_timers cancels by key")
		require.Zero(t, c.fireAt(t0.Add(2*time.Hour)))
		require.Equal(t, "paid", c.state("s-1"))
	})
}

func TestAtTimer(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		c := newClocked(t, b, 3)
		c.input("s-1", "place", "")
		at := t0.Add(5*time.Minute + 30*time.Second)
		c.input("s-1", "set_deadline", fmt.Sprintf(`{"at": %q}`, at.Format(time.RFC3339)))
		require.Equal(t, at, c.timers("s-1")["deadline"].FireAt)
		require.Zero(t, c.fireAt(at.Add(-time.Second)))
		require.Equal(t, 1, c.fireAt(at))
		require.Equal(t, "expired", c.state("s-1"))
		ts := c.timers("s-1")
		require.Equal(t, store.TimerFired, ts["deadline"].Status)
		require.Equal(t, store.TimerCancelled, ts["payment_timeout"].Status)
		require.Equal(t, store.TimerPending, ts["reminder"].Status,
			"a transition timer outlives the state; it fires into the completed instance")
		require.Equal(t, 1, c.fireAt(t0.Add(10*time.Minute)))
		require.Equal(t, store.OutcomeAlreadyCompleted, c.timers("s-1")["reminder"].Outcome)
	})
}

// TestRetryThenKeyReplacement: a failing timer retries with backoff; scheduling its key
// again replaces it with a fresh timer whose retry state is reset.
func TestRetryThenKeyReplacement(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		c := newClocked(t, b, 5)
		c.input("s-1", "place", "")
		c.store.failNext(2)
		due := t0.Add(10 * time.Minute)
		require.Equal(t, 1, c.fireAt(due))
		r := c.timers("s-1")["reminder"]
		require.Equal(t, store.TimerPending, r.Status)
		require.Equal(t, 1, r.Attempts)
		require.Contains(t, r.LastError, "flaky")
		require.Equal(t, due.Add(time.Minute), r.NextAttemptAt, "first retry after the initial interval")
		require.Equal(t, due, r.FireAt)

		require.Zero(t, c.fireAt(due.Add(time.Minute-time.Microsecond)))
		require.Equal(t, 1, c.fireAt(due.Add(time.Minute)))
		r = c.timers("s-1")["reminder"]
		require.Equal(t, 2, r.Attempts)
		require.Equal(t, due.Add(3*time.Minute), r.NextAttemptAt, "then twice as long")
		first := r.ID

		out := c.input("s-1", "reschedule", "")
		require.Equal(t, store.OutcomeAccepted, out.Outcome)
		all := c.allTimers("s-1")
		var replaced, fresh engine.TimerView
		for _, tv := range all {
			switch {
			case tv.ID == first:
				replaced = tv
			case tv.Key == "reminder":
				fresh = tv
			}
		}
		require.Equal(t, store.TimerCancelled, replaced.Status)
		require.Equal(t, store.TimerPending, fresh.Status)
		require.Zero(t, fresh.Attempts, "retry state is reset")
		require.Empty(t, fresh.LastError)
		require.Equal(t, c.clock.Now().Add(time.Hour), fresh.FireAt)
		require.Equal(t, fresh.FireAt, fresh.NextAttemptAt)

		require.Zero(t, c.fireAt(due.Add(3*time.Minute)), "the replaced timer never fires")
		require.Equal(t, 2, c.fireAt(fresh.FireAt), "the fresh reminder and the 30m payment timeout")
		require.Equal(t, store.TimerFired, c.timers("s-1")["reminder"].Status)
	})
}

func TestDeadAndOperatorRetry(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		c := newClocked(t, b, 2)
		c.input("s-1", "place", "")
		c.store.failNext(100)
		due := t0.Add(10 * time.Minute)
		require.Equal(t, 1, c.fireAt(due))
		require.Equal(t, 1, c.fireAt(due.Add(time.Minute)))
		r := c.timers("s-1")["reminder"]
		require.Equal(t, store.TimerDead, r.Status)
		require.Equal(t, 2, r.Attempts)
		require.Zero(t, c.fireAt(due.Add(5*time.Minute)), "a dead timer does not fire")

		c.store.failNext(0)
		retried, err := c.eng.RetryTimer(context.Background(), r.ID)
		require.NoError(t, err)
		require.Equal(t, store.TimerPending, retried.Status)
		require.Zero(t, retried.Attempts)
		_, err = c.eng.RetryTimer(context.Background(), r.ID)
		require.ErrorIs(t, err, store.ErrWrongStatus)
		require.Equal(t, 1, c.fireAt(due.Add(6*time.Minute)))
		require.Equal(t, store.TimerFired, c.timers("s-1")["reminder"].Status)
	})
}

// TestInvalidInputIsDead: an input the definition does not declare dead-letters the
// timer at once instead of retrying.
func TestInvalidInputIsDead(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		c := newClocked(t, b, 5)
		_, err := c.store.ScheduleTimer(context.Background(), store.Timer{
			ID: "t-bad", WorkflowType: shopType, WorkflowID: "s-1", Key: "bad", FireAt: t0,
			InputType: "teleport", InputData: json.RawMessage(`{}`), Status: store.TimerPending,
			NextAttemptAt: t0, CreatedAt: t0, UpdatedAt: t0,
		})
		require.NoError(t, err)
		require.Equal(t, 1, c.fireAt(t0))
		tv, err := c.eng.GetTimer(context.Background(), "t-bad")
		require.NoError(t, err)
		require.Equal(t, store.TimerDead, tv.Status)
		require.Equal(t, 1, tv.Attempts)
		require.Contains(t, tv.LastError, "teleport")
	})
}

// TestHeartbeatRearmsItself: a timer whose input schedules its own key again leaves
// the new timer pending when its own firing is recorded.
func TestHeartbeatRearmsItself(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		c := newClocked(t, b, 3)
		c.input("s-1", "place", "")
		c.input("s-1", "pay", "")
		c.input("s-1", "beat", "")
		at := t0.Add(time.Minute)
		for i := range 3 {
			require.Equal(t, 1, c.fireAt(at), "beat %d", i)
			hb := c.timers("s-1")["heartbeat"]
			require.Equal(t, store.TimerPending, hb.Status, "beat %d re-armed", i)
			at = at.Add(time.Minute)
			require.Equal(t, at, hb.FireAt)
		}
		fired := 0
		for _, tv := range c.allTimers("s-1") {
			if tv.Key == "heartbeat" && tv.Status == store.TimerFired {
				fired++
				require.Equal(t, store.OutcomeAccepted, tv.Outcome)
			}
		}
		require.Equal(t, 3, fired)
		c.input("s-1", "finish", "")
		require.Equal(t, store.TimerCancelled, c.timers("s-1")["heartbeat"].Status)
		require.Zero(t, c.fireAt(at))
	})
}

func TestDelayedInputAndOperatorCancel(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		c := newClocked(t, b, 3)
		ctx := context.Background()
		tv, err := c.eng.ScheduleInput(ctx, shopType, "s-new", workflow.Input{Type: "place"}, t0.Add(5*time.Second))
		require.NoError(t, err)
		require.Equal(t, store.TimerPending, tv.Status)
		require.Equal(t, t0.Add(5*time.Second), tv.FireAt)
		_, err = c.eng.GetWorkflow(ctx, shopType, "s-new", 0)
		require.ErrorIs(t, err, engine.ErrInstanceNotFound, "the instance need not exist yet")

		_, err = c.eng.ScheduleInput(ctx, shopType, "s-new", workflow.Input{Type: "teleport"}, t0)
		require.ErrorIs(t, err, workflow.ErrUnknownInput)
		_, err = c.eng.ScheduleInput(ctx, shopType, "s-new", workflow.Input{Type: "set_deadline"}, t0)
		require.ErrorIs(t, err, workflow.ErrInvalidInput)
		_, err = c.eng.ScheduleInput(ctx, "nope", "s-new", workflow.Input{Type: "place"}, t0)
		require.ErrorIs(t, err, engine.ErrTypeNotFound)

		cancelMe, err := c.eng.ScheduleInput(ctx, shopType, "s-new", workflow.Input{Type: "pay"}, t0.Add(time.Minute))
		require.NoError(t, err)
		cancelled, err := c.eng.CancelTimer(ctx, cancelMe.ID)
		require.NoError(t, err)
		require.Equal(t, store.TimerCancelled, cancelled.Status)
		_, err = c.eng.CancelTimer(ctx, cancelMe.ID)
		require.ErrorIs(t, err, store.ErrWrongStatus)
		_, err = c.eng.GetTimer(ctx, "missing")
		require.ErrorIs(t, err, engine.ErrTimerNotFound)

		require.Equal(t, 1, c.fireAt(t0.Add(2*time.Minute)), "only the delayed place fires")
		require.Equal(t, "waiting", c.state("s-new"))
		got, err := c.eng.GetTimer(ctx, tv.ID)
		require.NoError(t, err)
		require.Equal(t, store.TimerFired, got.Status)
	})
}
