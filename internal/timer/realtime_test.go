package timer_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/apitest"
	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/enginetest"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/timer"
	"github.com/ironflow/ironflow/internal/workflow"
)

// rtDefinition has a sub-second state timeout.
const rtDefinition = `{
  "initial_state": "new",
  "inputs": {"start": {}, "leave": {}, "expire": {}},
  "states": {
    "new": {"on": {"start": {"to": "waiting"}}},
    "waiting": {
      "timers": [{"key": "timeout", "after": "300ms", "input": {"type": "expire"}}],
      "on": {"leave": {"to": "left"}, "expire": {"to": "expired"}}
    },
    "left": {"terminal": true},
    "expired": {"terminal": true}
  }
}`

const rtType = "rt"

func rtEngine(t *testing.T, st store.Store) *engine.Engine {
	t.Helper()
	eng := engine.New(engine.Config{Store: st})
	_, _, err := eng.PutDefinition(context.Background(), rtType, []byte(rtDefinition))
	require.NoError(t, err)
	return eng
}

// noPolling is the poll interval of the real-time workers: longer than any test, so a
// timer that fires was found by a commit notification or the worker's own due-time
// wake, never by the fallback poll. That, not a bound on the elapsed time (which a
// loaded machine stretches), is what shows there is no polling lag.
const noPolling = time.Hour

// fireWithin bounds the wait for a firing: generous, because the machine may be loaded;
// noPolling makes a firing within it prove the wake path all the same.
const fireWithin = 20 * time.Second

// drainWithin bounds the wait for a backlog of timers to be fired and for the workers
// to stop. The tests that use it assert that every timer fires exactly once, not how
// fast (BenchmarkTimerFiringLag and the timer-burst runs measure that), so the bound
// only has to outlast the slowest machine: the race detector on a loaded 2-core one
// took over 30 s for the 3,000-timer burst.
const drainWithin = 5 * time.Minute

// startWorker starts a real-time timer worker over st, stopped at cleanup.
func startWorker(t *testing.T, st store.Store, reg prometheus.Registerer) *timer.Worker {
	t.Helper()
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	logs := &apitest.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("timer worker log:\n%s", logs.String())
		}
	})
	w, err := timer.New(timer.Config{Store: st, Engine: engine.New(engine.Config{Store: st}),
		Concurrency: 4, PollInterval: noPolling, RetryInitialInterval: 10 * time.Millisecond, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	require.NoError(t, w.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, w.Stop(ctx))
	})
	return w
}

func waitState(t *testing.T, eng *engine.Engine, id, state string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v, err := eng.GetWorkflow(context.Background(), rtType, id, 0)
		if err == nil && v.State.Name == state {
			return
		}
		if time.Now().After(deadline) {
			// Say where the timers stand: claimed and stuck, failed, or never due.
			page, lerr := eng.ListTimers(context.Background(), store.ListTimersParams{WorkflowType: rtType, WorkflowID: id})
			var timers []string
			for _, tv := range page.Items {
				timers = append(timers, fmt.Sprintf("%s %s attempts=%d next=%s err=%q",
					tv.Key, tv.Status, tv.Attempts, tv.NextAttemptAt.Format(time.RFC3339Nano), tv.LastError))
			}
			t.Fatalf("%s never reached %s within %s (state %q, %v); timers: %v (%v)",
				id, state, within, v.State.Name, err, timers, lerr)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRealTimeStateTimeout(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		st := b.NewDatabase(t).Open(t)
		eng := rtEngine(t, st)
		startWorker(t, st, nil)
		ctx := context.Background()

		start := time.Now()
		_, err := eng.Execute(ctx, rtType, "fires", workflow.Input{Type: "start"}, engine.ExecuteOptions{})
		require.NoError(t, err)
		_, err = eng.Execute(ctx, rtType, "leaves", workflow.Input{Type: "start"}, engine.ExecuteOptions{})
		require.NoError(t, err)
		_, err = eng.Execute(ctx, rtType, "leaves", workflow.Input{Type: "leave"}, engine.ExecuteOptions{})
		require.NoError(t, err)

		waitState(t, eng, "fires", "expired", fireWithin)
		require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "not before it is due")

		time.Sleep(100 * time.Millisecond)
		v, err := eng.GetWorkflow(ctx, rtType, "leaves", 0)
		require.NoError(t, err)
		require.Equal(t, "left", v.State.Name)
		page, err := eng.ListTimers(ctx, store.ListTimersParams{WorkflowType: rtType, WorkflowID: "leaves"})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		require.Equal(t, store.TimerCancelled, page.Items[0].Status, "leaving the state cancelled it")
	})
}

func TestRealTimeDelayedInput(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		st := b.NewDatabase(t).Open(t)
		eng := rtEngine(t, st)
		startWorker(t, st, nil)
		start := time.Now()
		tv, err := eng.ScheduleInput(context.Background(), rtType, "later", workflow.Input{Type: "start"},
			start.Add(200*time.Millisecond))
		require.NoError(t, err)
		waitState(t, eng, "later", "waiting", fireWithin)
		require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
		got, err := eng.GetTimer(context.Background(), tv.ID)
		require.NoError(t, err)
		require.Equal(t, store.TimerFired, got.Status)
		require.Equal(t, store.OutcomeAccepted, got.Outcome)
		// Claimed up to a lookahead early, it still fires no earlier than it is due.
		require.NotNil(t, got.FiredAt)
		require.False(t, got.FiredAt.Before(got.FireAt), "fired at %s, due at %s", got.FiredAt, got.FireAt)
		// Its state timeout then fires too, by the same worker.
		waitState(t, eng, "later", "expired", fireWithin)
	})
}

// TestRealTimeRestartFiresOverdue: timers fall due while no worker runs (the server is
// down); a worker started on a fresh connection to the database fires them at once.
func TestRealTimeRestartFiresOverdue(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		db := b.NewDatabase(t)
		before := db.Open(t)
		eng := rtEngine(t, before)
		ctx := context.Background()
		for i := range 5 {
			_, err := eng.ScheduleInput(ctx, rtType, fmt.Sprintf("o-%d", i), workflow.Input{Type: "start"},
				time.Now().Add(50*time.Millisecond))
			require.NoError(t, err)
		}
		require.NoError(t, before.Close())
		time.Sleep(150 * time.Millisecond) // down while they fall due

		// The worker never polls (noPolling) and nothing commits: only its first claim
		// at start can find them.
		after := db.Open(t)
		startWorker(t, after, nil)
		eng = engine.New(engine.Config{Store: after})
		for i := range 5 {
			waitState(t, eng, fmt.Sprintf("o-%d", i), "waiting", fireWithin)
		}
	})
}

// TestTwoServersFireEachTimerOnce: two workers with their own connections to one
// Postgres database share the timers; each fires once.
func TestTwoServersFireEachTimerOnce(t *testing.T) {
	t.Parallel()
	db := enginetest.Backends()[1].NewDatabase(t)
	st1, st2 := db.Open(t), db.Open(t)
	eng := rtEngine(t, st1)
	reg1, reg2 := prometheus.NewRegistry(), prometheus.NewRegistry()
	w1, w2 := startWorker(t, st1, reg1), startWorker(t, st2, reg2)

	const n = 200
	due := time.Now().Add(300 * time.Millisecond)
	for i := range n {
		_, err := eng.ScheduleInput(context.Background(), rtType, fmt.Sprintf("o-%d", i), workflow.Input{Type: "start"}, due)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		page, err := eng.ListTimers(context.Background(), store.ListTimersParams{Status: store.TimerFired, Limit: engine.MaxPageSize})
		require.NoError(t, err)
		// The delayed starts, then the 300ms state timeouts they scheduled.
		return len(page.Items) == 2*n
	}, drainWithin, 10*time.Millisecond)
	// A firing is recorded in the store before its metric: stop the workers, which
	// waits for the firings in flight, before counting.
	stopWorkers(t, w1, w2)
	fired1, fired2 := counter(t, reg1, "fired"), counter(t, reg2, "fired")
	require.Equal(t, float64(2*n), fired1+fired2, "each timer fired exactly once")
	require.Zero(t, counter(t, reg1, "lease_lost")+counter(t, reg2, "lease_lost"))
	t.Logf("worker 1 fired %v, worker 2 fired %v", fired1, fired2)
}

// TestTwoServersShareABurst: two workers on one Postgres database start together on a
// backlog of 3,000 due timers, three per instance, so their batches lock the same
// instances in different combinations. Every timer fires once, with no retry, error or
// lost lease, and every instance applies all three.
func TestTwoServersShareABurst(t *testing.T) {
	t.Parallel()
	db := enginetest.Backends()[1].NewDatabase(t)
	st1, st2 := db.Open(t), db.Open(t)
	eng := engine.New(engine.Config{Store: st1})
	_, _, err := eng.PutDefinition(context.Background(), "burst", []byte(benchDefinition))
	require.NoError(t, err)
	const n, per = 1000, 3
	due := time.Now()
	for i := range n {
		for range per {
			_, err := eng.ScheduleInput(context.Background(), "burst", fmt.Sprintf("o-%d", i), workflow.Input{Type: "start"}, due)
			require.NoError(t, err)
		}
	}
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	workers := make([]*timer.Worker, 0, len(regs))
	for j, st := range []store.Store{st1, st2} {
		w, err := timer.New(timer.Config{Store: st, Engine: engine.New(engine.Config{Store: st}), Registerer: regs[j]})
		require.NoError(t, err)
		require.NoError(t, w.Start(context.Background()))
		t.Cleanup(func() { require.NoError(t, w.Stop(context.Background())) })
		workers = append(workers, w)
	}
	require.Eventually(t, func() bool {
		stats, err := st1.Stats(context.Background(), time.Now())
		require.NoError(t, err)
		return stats.PendingTimers == 0
	}, drainWithin, 10*time.Millisecond)
	// No timer is pending once the last batch committed, but that batch's firings
	// record their metrics only afterwards: stop the workers, which waits for them.
	stopWorkers(t, workers...)
	for _, result := range []string{"retry", "error", "dead", "lease_lost"} {
		require.Zero(t, counter(t, regs[0], result)+counter(t, regs[1], result), result)
	}
	require.Equal(t, float64(n*per), counter(t, regs[0], "fired")+counter(t, regs[1], "fired"))
	for i := range n {
		v, err := eng.GetWorkflow(context.Background(), "burst", fmt.Sprintf("o-%d", i), 0)
		require.NoError(t, err)
		require.EqualValues(t, per, v.Version)
	}
}

// stopWorkers stops ws and waits for their firings in flight, so that every firing the
// store recorded has been counted in the metrics too.
func stopWorkers(t *testing.T, ws ...*timer.Worker) {
	t.Helper()
	for _, w := range ws {
		ctx, cancel := context.WithTimeout(context.Background(), drainWithin)
		require.NoError(t, w.Stop(ctx))
		cancel()
	}
}

func counter(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "ironflow_timers_fired_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
