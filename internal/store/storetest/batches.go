package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// batcher is a store whose batches of routed completions can be run directly: the batch
// paths of CompleteEffects and CompleteTimers (store.CompleteRouted).
type batcher interface {
	DeliverBatch(ctx context.Context, ps []store.CompleteEffectParams) ([]error, error)
	FireBatch(ctx context.Context, ps []store.CompleteTimerParams) ([]error, error)
}

// testRoutedBatches checks a store's batches of routed completions directly, which the
// other cases cannot: CompleteEffects and CompleteTimers fall back to one transaction
// per completion when a batch fails, so their cases pass even with a broken batch. It
// runs more completions than the largest chunk of a multi-row write.
func testRoutedBatches(t *testing.T, e *env) {
	b, ok := e.s.(batcher)
	require.True(t, ok, "the store runs its batches of routed completions directly")
	routedBatches(t, e.s, 70,
		func(ps []store.CompleteEffectParams) ([]error, error) { return b.DeliverBatch(e.ctx, ps) },
		func(ps []store.CompleteTimerParams) ([]error, error) { return b.FireBatch(e.ctx, ps) })
}

// routedBatches stores n instances that each emitted an effect and n due timers of
// other instances, claims them all, and passes deliveries and firings with a routed
// input to deliver and fire, which must record them as one batch each and return the
// batch's per-completion errors; every completion must then be recorded as
// CompleteEffect and CompleteTimer would have.
func routedBatches(t *testing.T, s store.Store, n int,
	deliver func([]store.CompleteEffectParams) ([]error, error),
	fire func([]store.CompleteTimerParams) ([]error, error)) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	step := func(id, key string) store.ExecuteParams {
		return store.ExecuteParams{WorkflowType: "t", WorkflowID: id, IdempotencyKey: key,
			Decide: func(_ context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
				var v int64
				if cur != nil {
					v = cur.Version
				}
				return &store.Write{
					Instance: &store.Instance{DefinitionVersion: 1, StateName: "s", Version: v + 1, StateData: json.RawMessage(`{}`)},
					Events:   []store.Event{{Type: "E", To: "s"}},
					Effects:  []store.Effect{{Name: "e", Payload: json.RawMessage(`{"n":1}`)}},
					Input:    store.InputRecord{Type: "go", Outcome: store.OutcomeAccepted, CreatedAt: now},
				}, nil
			}}
	}
	for i := range n {
		_, err := s.Execute(ctx, step(fmt.Sprintf("e-%d", i), ""))
		require.NoError(t, err)
		_, err = s.ScheduleTimer(ctx, store.Timer{WorkflowType: "t", WorkflowID: fmt.Sprintf("t-%d", i), Key: "k",
			FireAt: now, InputType: "go"})
		require.NoError(t, err)
	}
	PutWebhook(t, s, "t", now)
	claim := store.ClaimParams{Worker: "w", Limit: 2 * n, Now: now, LeaseExpiry: now.Add(time.Minute)}
	c, err := s.ClaimEffects(ctx, claim)
	require.NoError(t, err)
	effects := c.Effects
	require.Len(t, effects, n)
	timers, err := s.ClaimTimers(ctx, claim)
	require.NoError(t, err)
	require.Len(t, timers, n)

	var eps []store.CompleteEffectParams
	var tps []store.CompleteTimerParams
	for i, e := range effects {
		r := step(e.WorkflowID, e.ID)
		eps = append(eps, store.CompleteEffectParams{EffectID: e.ID, Worker: "w", Status: store.EffectDelivered,
			Now: now, Route: &r, Attempt: store.Attempt{StartedAt: now, StatusCode: 200, Response: "{}"}})
		tr := step(timers[i].WorkflowID, timers[i].ID)
		tps = append(tps, store.CompleteTimerParams{TimerID: timers[i].ID, Worker: "w", Status: store.TimerFired,
			Now: now, Route: &tr})
	}
	errs, err := deliver(eps)
	require.NoError(t, err)
	require.Equal(t, make([]error, n), errs)
	errs, err = fire(tps)
	require.NoError(t, err)
	require.Equal(t, make([]error, n), errs)

	for i, e := range effects {
		got, attempts, err := s.GetEffect(ctx, e.ID)
		require.NoError(t, err)
		require.Equal(t, store.EffectDelivered, got.Status)
		require.Len(t, attempts, 1)
		require.Equal(t, store.OutcomeAccepted, attempts[0].RoutedOutcome)
		inst, err := s.GetInstance(ctx, "t", e.WorkflowID)
		require.NoError(t, err)
		require.EqualValues(t, 2, inst.Version)
		tm, err := s.GetTimer(ctx, timers[i].ID)
		require.NoError(t, err)
		require.Equal(t, store.TimerFired, tm.Status)
		require.Equal(t, store.OutcomeAccepted, tm.Outcome)
	}
}
