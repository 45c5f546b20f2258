package retention_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/enginetest"
	"github.com/ironflow/ironflow/internal/retention"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// definition completes an instance after two inputs, cancelling a state timer on the
// way.
const definition = `{"initial_state":"new","inputs":{"start":{},"go":{},"stop":{}},"states":{
  "new":{"on":{"start":{"to":"waiting"}}},
  "waiting":{"timers":[{"key":"t","after":"1h","input":{"type":"stop"}}],"on":{"go":{"to":"done"},"stop":{"to":"done"}}},
  "done":{"terminal":true}}}`

// TestPrunesWhatIsOlderThanRetention: a completed instance's inputs and cancelled timer
// are pruned once the clock has passed the retention period, not before; the instance,
// its events and everything of a running instance stay.
func TestPrunesWhatIsOlderThanRetention(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		ctx := context.Background()
		st := b.NewDatabase(t).Open(t)
		clock := enginetest.NewClock(time.Now())
		eng := engine.New(engine.Config{Store: st, NowFunc: clock.Now})
		_, _, err := eng.PutDefinition(ctx, "ret", []byte(definition))
		require.NoError(t, err)
		for _, in := range []struct{ id, typ string }{{"a", "start"}, {"a", "go"}, {"b", "start"}} {
			out, err := eng.Execute(ctx, "ret", in.id, workflow.Input{Type: in.typ}, engine.ExecuteOptions{})
			require.NoError(t, err)
			require.Equal(t, store.OutcomeAccepted, out.Outcome)
		}
		w, err := retention.New(retention.Config{Store: st, Retention: time.Hour, BatchSize: 1, NowFunc: clock.Now})
		require.NoError(t, err)
		require.Equal(t, 15*time.Minute, w.Interval(), "a quarter of the retention period")

		clock.Advance(59 * time.Minute)
		n, err := w.RunOnce(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "nothing is older than the retention period yet")

		clock.Advance(2 * time.Minute)
		n, err = w.RunOnce(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 3, n, "a's two inputs and its cancelled timer, in batches of one")

		inputs := func(id string) int {
			page, err := eng.ListInputs(ctx, "ret", id, "", 100)
			require.NoError(t, err)
			return len(page.Items)
		}
		timers := func(id string) int {
			page, err := eng.ListTimers(ctx, store.ListTimersParams{WorkflowType: "ret", WorkflowID: id})
			require.NoError(t, err)
			return len(page.Items)
		}
		require.Zero(t, inputs("a"))
		require.Zero(t, timers("a"))
		require.Equal(t, 1, inputs("b"), "a running instance keeps its inputs")
		require.Equal(t, 1, timers("b"), "a pending timer stays")
		events, err := eng.ListEvents(ctx, "ret", "a", 0, 100)
		require.NoError(t, err)
		require.Len(t, events.Items, 2, "events are never pruned")
		v, err := eng.GetWorkflow(ctx, "ret", "a", 0)
		require.NoError(t, err)
		require.Equal(t, "completed", v.Status)
	})
}

// fakePruner deletes a scripted number of rows per call and records the cutoffs.
type fakePruner struct {
	mu      sync.Mutex
	counts  []int64
	err     error
	befores []time.Time
	batches []int
	// took is how long each call lasts; starts and ends are when each call began and
	// returned.
	took         time.Duration
	starts, ends []time.Time
}

func (f *fakePruner) Prune(_ context.Context, before time.Time, batch int) (int64, error) {
	start := time.Now()
	time.Sleep(f.took)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts, f.ends = append(f.starts, start), append(f.ends, time.Now())
	f.befores = append(f.befores, before)
	f.batches = append(f.batches, batch)
	if f.err != nil {
		return 0, f.err
	}
	if len(f.counts) == 0 {
		return 0, nil
	}
	n := f.counts[0]
	f.counts = f.counts[1:]
	return n, nil
}

func (f *fakePruner) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.befores)
}

// TestRunOnceRepeatsUntilNothingIsLeft: batches go on while the store deletes rows, all
// with one cutoff, the retention period before the clock's now.
func TestRunOnceRepeatsUntilNothingIsLeft(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	p := &fakePruner{counts: []int64{500, 500, 3}}
	w, err := retention.New(retention.Config{Store: p, Retention: 24 * time.Hour, NowFunc: func() time.Time { return now }})
	require.NoError(t, err)
	n, err := w.RunOnce(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1003, n)
	require.Len(t, p.befores, 4)
	for i := range p.befores {
		require.Equal(t, now.Add(-24*time.Hour), p.befores[i])
		require.Equal(t, retention.DefaultBatchSize, p.batches[i])
	}
}

// TestRestsBetweenBatches: after each batch the worker waits at least as long as the
// batch took before it starts the next, so pruning holds the database at most half the
// time; after the last batch (nothing pruned) it does not wait.
func TestRestsBetweenBatches(t *testing.T) {
	t.Parallel()
	p := &fakePruner{counts: []int64{500, 500, 500}, took: 20 * time.Millisecond}
	w, err := retention.New(retention.Config{Store: p, Retention: time.Hour})
	require.NoError(t, err)
	n, err := w.RunOnce(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1500, n)
	require.Len(t, p.starts, 4)
	for i := 1; i < len(p.starts); i++ {
		took := p.ends[i-1].Sub(p.starts[i-1])
		require.GreaterOrEqual(t, p.starts[i].Sub(p.ends[i-1]), took, "the rest after batch %d", i-1)
	}
}

// TestStopEndsTheRest: a worker resting between two batches stops at once.
func TestStopEndsTheRest(t *testing.T) {
	t.Parallel()
	p := &fakePruner{counts: []int64{500, 500}, took: time.Second}
	w, err := retention.New(retention.Config{Store: p, Retention: time.Hour})
	require.NoError(t, err)
	require.NoError(t, w.Start(context.Background()))
	require.Eventually(t, func() bool { return p.calls() == 1 }, 10*time.Second, 5*time.Millisecond)
	stopped := time.Now()
	require.NoError(t, w.Stop(context.Background()))
	require.Less(t, time.Since(stopped), 900*time.Millisecond, "Stop waited for the rest (a second) to end")
	require.Equal(t, 1, p.calls(), "no batch after Stop")
}

// TestStartPrunesAtOnceAndKeepsGoing: a started worker prunes before its first
// interval; a failing store is retried at the next interval, not fatal.
func TestStartPrunesAtOnceAndKeepsGoing(t *testing.T) {
	t.Parallel()
	p := &fakePruner{err: errors.New("database unavailable")}
	w, err := retention.New(retention.Config{Store: p, Retention: time.Hour, Interval: 10 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, w.Start(context.Background()))
	require.Error(t, w.Start(context.Background()), "starting twice")
	require.Eventually(t, func() bool { return p.calls() >= 3 }, 10*time.Second, 5*time.Millisecond,
		"prunes at start and again after each failure")
	require.NoError(t, w.Stop(context.Background()))
	calls := p.calls()
	require.NoError(t, w.Stop(context.Background()), "stopping twice")
	require.Equal(t, calls, p.calls(), "nothing runs after Stop returned")
}

func TestNewRequiresStoreAndRetention(t *testing.T) {
	t.Parallel()
	_, err := retention.New(retention.Config{Retention: time.Hour})
	require.Error(t, err)
	_, err = retention.New(retention.Config{Store: &fakePruner{}})
	require.Error(t, err)
	w, err := retention.New(retention.Config{Store: &fakePruner{}, Retention: 365 * 24 * time.Hour})
	require.NoError(t, err)
	require.Equal(t, retention.MaxInterval, w.Interval())
	w, err = retention.New(retention.Config{Store: &fakePruner{}, Retention: time.Second})
	require.NoError(t, err)
	require.Equal(t, retention.MinInterval, w.Interval())
	require.NoError(t, w.Stop(context.Background()), "stopping a worker never started")
}
