package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// create decides the creation of an instance with one event. With badEffect it also
// emits an effect whose id another effect has, which fails in the writer after the
// instance row and the event were written, so only a savepoint can undo them.
func create(calls *atomic.Int32, badEffect bool) store.DecideFunc {
	return func(_ context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
		calls.Add(1)
		if cur != nil {
			return nil, errors.New("instance exists already")
		}
		w := &store.Write{
			Instance: &store.Instance{DefinitionVersion: 1, StateName: "created", StateData: json.RawMessage(`{}`)},
			Events:   []store.Event{{Type: "Created", To: "created"}},
			Input:    store.InputRecord{Type: "create", Outcome: store.OutcomeAccepted},
		}
		if badEffect {
			w.Effects = []store.Effect{{ID: "taken", Name: "e"}}
		}
		return w, nil
	}
}

// TestWriteGroup queues inputs behind a write that holds the writer, so their rows are
// written as one group, and checks that each caller gets its own outcome: failures (a
// decision error, a failed write after partial writes, a panic) cost only their own
// request, a caller that gives up while its rows are queued has nothing written, one
// that gives up while its request runs gets its error and nothing written.
func TestWriteGroup(t *testing.T) {
	t.Parallel()
	s, d := openDriver(t)
	bg := context.Background()
	var calls atomic.Int32
	_, err := s.Execute(bg, store.ExecuteParams{WorkflowType: "order", WorkflowID: "seed",
		Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
			return &store.Write{Instance: &store.Instance{DefinitionVersion: 1, StateName: "s"}, Events: []store.Event{{Type: "E"}},
				Effects: []store.Effect{{ID: "taken", Name: "e"}}, Input: store.InputRecord{Type: "go", Outcome: store.OutcomeAccepted}}, nil
		}})
	require.NoError(t, err)

	// The gate holds the writer until released; its caller gives up meanwhile.
	entered, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	gateCtx, cancelGate := context.WithCancel(bg)
	defer cancelGate()
	gateDone := make(chan error, 1)
	go func() {
		gateDone <- d.inTx(gateCtx, func(ctx context.Context, tx *wtx) error {
			close(entered)
			<-release
			_, err := tx.ExecContext(ctx, `INSERT INTO webhooks (workflow_type, url, secrets, status, created_at, updated_at)
				VALUES ('gate', 'https://example.com', '[]', 'active', 0, 0)`)
			return err
		})
	}()
	<-entered

	errBoom := errors.New("boom")
	type outcome struct {
		err      error
		panicked any
	}
	cases := map[string]store.DecideFunc{
		"ok-1":      create(&calls, false),
		"ok-2":      create(&calls, false),
		"ok-3":      create(&calls, false),
		"bad-write": create(&calls, true),
		"bad-decide": func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
			calls.Add(1)
			return nil, fmt.Errorf("deciding: %w", errBoom)
		},
		"panics": func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
			calls.Add(1)
			panic("decide panicked")
		},
	}
	results := make(map[string]outcome)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, decide := range cases {
		wg.Go(func() {
			var o outcome
			defer func() {
				o.panicked = recover()
				mu.Lock()
				results[id] = o
				mu.Unlock()
			}()
			_, o.err = s.Execute(bg, store.ExecuteParams{WorkflowType: "order", WorkflowID: id, Decide: decide})
		})
	}
	// A caller that gives up while its rows wait for the writer.
	queuedCtx, cancelQueued := context.WithCancel(bg)
	queuedDone := make(chan error, 1)
	var queuedCalls atomic.Int32
	go func() {
		_, err := s.Execute(queuedCtx, store.ExecuteParams{WorkflowType: "order", WorkflowID: "queued",
			Decide: create(&queuedCalls, false)})
		queuedDone <- err
	}()

	require.Eventually(t, func() bool { return calls.Load() == int32(len(cases)) && queuedCalls.Load() == 1 },
		10*time.Second, time.Millisecond, "every decision is made while the writer is held")
	time.Sleep(50 * time.Millisecond) // let every write queue behind the gate
	cancelQueued()
	require.ErrorIs(t, <-queuedDone, context.Canceled)
	cancelGate()
	releaseOnce.Do(func() { close(release) })
	require.ErrorIs(t, <-gateDone, context.Canceled, "a caller that gave up while its request ran")
	wg.Wait()

	require.EqualValues(t, len(cases), calls.Load(), "each decided once")
	for _, id := range []string{"ok-1", "ok-2", "ok-3"} {
		require.NoError(t, results[id].err, id)
		require.Nil(t, results[id].panicked, id)
		inst, err := s.GetInstance(bg, "order", id)
		require.NoError(t, err, id)
		require.EqualValues(t, 1, inst.Version)
	}
	require.ErrorIs(t, results["bad-decide"].err, errBoom)
	require.Error(t, results["bad-write"].err)
	require.NotErrorIs(t, results["bad-write"].err, store.ErrUnavailable)
	require.Equal(t, "decide panicked", results["panics"].panicked, "the panic surfaces in its caller")
	for _, id := range []string{"queued", "bad-write", "bad-decide", "panics"} {
		_, err := s.GetInstance(bg, "order", id)
		require.ErrorIs(t, err, store.ErrNotFound, "%s: nothing written", id)
		evs, err := s.ListEvents(bg, "order", id, 0, 10)
		require.NoError(t, err)
		require.Empty(t, evs, id)
	}
	_, err = s.GetWebhook(bg, "gate")
	require.ErrorIs(t, err, store.ErrNotFound, "gate: nothing written")
	page, err := s.ListEffects(bg, store.ListEffectsParams{})
	require.NoError(t, err)
	require.Len(t, page.Items, 1, "the seed's effect only")
}

// TestWriteAfterClose: a write after Close fails as unavailable and starts nothing.
func TestWriteAfterClose(t *testing.T) {
	t.Parallel()
	s, _, err := open(context.Background(), filepath.Join(t.TempDir(), "ironflow.db"))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	var calls atomic.Int32
	_, err = s.Execute(context.Background(), store.ExecuteParams{WorkflowType: "order", WorkflowID: "o-1",
		Decide: create(&calls, false)})
	require.ErrorIs(t, err, store.ErrUnavailable)
	_, err = s.ScheduleTimer(context.Background(), store.Timer{WorkflowType: "order", WorkflowID: "o-1", Key: "k",
		FireAt: time.Now(), InputType: "x"})
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.Zero(t, calls.Load())
}
