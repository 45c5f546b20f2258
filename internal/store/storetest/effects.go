package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

func testEffectsAtomic(t *testing.T, e *env) {
	res := e.mustExec("order", "o-1", step{Input: "place", Effects: []string{"reserve", "notify"}})
	require.Len(t, res.Write.Effects, 2)
	effs := e.effects("order", "o-1")
	require.Len(t, effs, 2)
	byID := map[string]store.Effect{effs[0].ID: effs[0], effs[1].ID: effs[1]}
	for i, name := range []string{"reserve", "notify"} {
		eff, ok := byID[res.Write.Effects[i].ID]
		require.True(t, ok, "effect %s stored under its id", name)
		require.Equal(t, name, eff.Name)
		require.Equal(t, store.EffectPending, eff.Status)
		require.EqualValues(t, 1, eff.Seq)
		require.Equal(t, "order", eff.WorkflowType)
		require.Equal(t, "o-1", eff.WorkflowID)
		require.JSONEq(t, fmt.Sprintf(`{"effect":%q}`, name), string(eff.Payload))
		require.Zero(t, eff.Attempts)
		require.Empty(t, eff.LockedBy)
		require.Nil(t, eff.DeliveredAt)
		requireTime(t, e.now, eff.NextAttemptAt)
		requireTime(t, e.now, eff.CreatedAt)
	}
	got, attempts, err := e.s.GetEffect(e.ctx, effs[0].ID)
	require.NoError(t, err)
	require.Equal(t, effs[0].ID, got.ID)
	require.Empty(t, attempts)
	_, _, err = e.s.GetEffect(e.ctx, "no-such-effect")
	require.ErrorIs(t, err, store.ErrNotFound)

	// A failed decision writes no effects; a version mismatch neither.
	_, err = e.s.Execute(e.ctx, store.ExecuteParams{
		WorkflowType: "order", WorkflowID: "o-2",
		Decide: func(ctx context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
			return nil, errDecide
		},
	})
	require.ErrorIs(t, err, errDecide)
	_, err = e.exec("order", "o-1", step{Effects: []string{"x"}, Expected: ptr[int64](7)})
	require.ErrorIs(t, err, store.ErrVersionMismatch)
	require.Len(t, e.effects("order", "o-1"), 2)
	require.Empty(t, e.effects("order", "o-2"))
}

func testClaimNeedsActiveWebhook(t *testing.T, e *env) {
	e.mustExec("order", "o-1", step{Effects: []string{"reserve"}})
	e.mustExec("invoice", "i-1", step{Effects: []string{"send"}})
	require.Empty(t, e.claimEffects("w1", e.now, 10), "no endpoint: effects wait")

	e.putWebhook("order")
	got := e.claimEffects("w1", e.now, 10)
	require.Len(t, got, 1)
	require.Equal(t, "reserve", got[0].Name)
	require.Equal(t, "w1", got[0].LockedBy)
	require.NotNil(t, got[0].LockedUntil)
	requireTime(t, e.at(30*time.Second), *got[0].LockedUntil)

	e.mustExec("order", "o-2", step{Effects: []string{"reserve"}})
	require.NoError(t, e.s.SetWebhookStatus(e.ctx, "order", store.WebhookDisabled, e.now))
	require.Empty(t, e.claimEffects("w1", e.now, 10), "a disabled endpoint: effects wait")
	require.NoError(t, e.s.SetWebhookStatus(e.ctx, "order", store.WebhookActive, e.now))
	got = e.claimEffects("w1", e.now, 10)
	require.Len(t, got, 1)
	require.Equal(t, "o-2", got[0].WorkflowID)

	e.mustExec("order", "o-3", step{Effects: []string{"reserve"}})
	require.NoError(t, e.s.DeleteWebhook(e.ctx, "order"))
	require.Empty(t, e.claimEffects("w1", e.now, 10), "a deleted endpoint: effects wait")
}

func testClaimLimit(t *testing.T, e *env) {
	e.putWebhook("order")
	var ids []string
	for i := range 5 {
		res := e.mustExec("order", fmt.Sprintf("o-%d", i), step{Effects: []string{"reserve"}, At: e.at(time.Duration(i) * time.Second)})
		ids = append(ids, res.Write.Effects[0].ID)
	}
	now := e.at(time.Minute)
	var claimed []string
	for _, want := range []int{2, 2, 1, 0} {
		got := e.claimEffects("w1", now, 2)
		require.Len(t, got, want)
		for _, eff := range got {
			claimed = append(claimed, eff.ID)
		}
	}
	require.Equal(t, ids, claimed, "claimed once each, oldest due first")
}

func testClaimLease(t *testing.T, e *env) {
	e.putWebhook("order")
	e.mustExec("order", "o-1", step{Effects: []string{"reserve"}})
	got := e.claimEffects("w1", e.now, 10)
	require.Len(t, got, 1)
	id := got[0].ID

	require.Empty(t, e.claimEffects("w2", e.at(29*time.Second), 10), "the lease excludes others")

	got = e.claimEffects("w2", e.at(31*time.Second), 10)
	require.Len(t, got, 1, "an expired lease can be claimed again")
	require.Equal(t, id, got[0].ID)
	require.Equal(t, "w2", got[0].LockedBy)

	err := e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: id, Worker: "w1", Status: store.EffectDelivered, Now: e.at(32 * time.Second),
		Attempt: store.Attempt{StartedAt: e.now, StatusCode: 200},
	})
	require.ErrorIs(t, err, store.ErrLeaseLost)
	eff, attempts, err := e.s.GetEffect(e.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.EffectPending, eff.Status, "a stale worker changes nothing")
	require.Equal(t, "w2", eff.LockedBy)
	require.Zero(t, eff.Attempts)
	require.Empty(t, attempts)

	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: id, Worker: "w2", Status: store.EffectDelivered, Now: e.at(33 * time.Second),
		Attempt: store.Attempt{StartedAt: e.at(32 * time.Second), StatusCode: 204},
	}))
	err = e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: id, Worker: "w2", Status: store.EffectDelivered, Now: e.at(34 * time.Second),
	})
	require.ErrorIs(t, err, store.ErrLeaseLost, "a delivered effect is no longer held")
	err = e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: "no-such-effect", Worker: "w2", Status: store.EffectDelivered, Now: e.now,
	})
	require.Error(t, err)
	require.Empty(t, e.claimEffects("w3", e.at(time.Hour), 10), "delivered effects are not claimed")
}

func testEffectAttemptsAndRetry(t *testing.T, e *env) {
	e.putWebhook("order")
	res := e.mustExec("order", "o-1", step{Effects: []string{"reserve"}})
	id := res.Write.Effects[0].ID

	// Attempt 1 fails and is retried later.
	require.Len(t, e.claimEffects("w1", e.now, 10), 1)
	retryAt := e.at(10 * time.Second)
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: id, Worker: "w1", Status: store.EffectPending, NextAttemptAt: retryAt, Now: e.at(time.Second),
		Attempt: store.Attempt{StartedAt: e.now, Duration: 1500 * time.Millisecond, StatusCode: 503,
			Error: "503 Service Unavailable", Response: "try later"},
	}))
	eff, attempts, err := e.s.GetEffect(e.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.EffectPending, eff.Status)
	require.Equal(t, 1, eff.Attempts)
	require.Equal(t, "503 Service Unavailable", eff.LastError)
	requireTime(t, retryAt, eff.NextAttemptAt)
	require.Empty(t, eff.LockedBy)
	require.Len(t, attempts, 1)
	require.Equal(t, store.Attempt{
		EffectID: id, Number: 1, StartedAt: attempts[0].StartedAt, Duration: 1500 * time.Millisecond,
		StatusCode: 503, Error: "503 Service Unavailable", Response: "try later",
	}, attempts[0])
	requireTime(t, e.now, attempts[0].StartedAt)

	require.Empty(t, e.claimEffects("w1", e.at(5*time.Second), 10), "not due before NextAttemptAt")

	// Attempt 2 exhausts the budget.
	require.Len(t, e.claimEffects("w1", retryAt, 10), 1)
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: id, Worker: "w1", Status: store.EffectDead, Now: e.at(11 * time.Second),
		Attempt: store.Attempt{StartedAt: retryAt, Error: "connection refused"},
	}))
	eff, _, err = e.s.GetEffect(e.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.EffectDead, eff.Status)
	require.Equal(t, 2, eff.Attempts)
	require.Empty(t, e.claimEffects("w1", e.at(time.Hour), 10), "dead effects are not claimed")

	_, err = e.s.RetryEffect(e.ctx, "no-such-effect", e.now)
	require.ErrorIs(t, err, store.ErrNotFound)

	// An operator retry gives a fresh budget; attempt numbers keep counting.
	retried, err := e.s.RetryEffect(e.ctx, id, e.at(time.Minute))
	require.NoError(t, err)
	require.Equal(t, store.EffectPending, retried.Status)
	require.Zero(t, retried.Attempts)
	requireTime(t, e.at(time.Minute), retried.NextAttemptAt)
	_, err = e.s.RetryEffect(e.ctx, id, e.at(time.Minute))
	require.ErrorIs(t, err, store.ErrWrongStatus)

	require.Len(t, e.claimEffects("w1", e.at(time.Minute), 10), 1)
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: id, Worker: "w1", Status: store.EffectDelivered, Now: e.at(61 * time.Second),
		Attempt: store.Attempt{StartedAt: e.at(time.Minute), StatusCode: 200},
	}))
	eff, attempts, err = e.s.GetEffect(e.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.EffectDelivered, eff.Status)
	require.Equal(t, 1, eff.Attempts)
	require.NotNil(t, eff.DeliveredAt)
	requireTime(t, e.at(61*time.Second), *eff.DeliveredAt)
	require.Len(t, attempts, 3)
	for i, a := range attempts {
		require.Equal(t, i+1, a.Number)
	}
	_, err = e.s.RetryEffect(e.ctx, id, e.now)
	require.ErrorIs(t, err, store.ErrWrongStatus, "only dead effects can be retried")
}

// routeParams is the routed input of an effect's response, as the outbox builds it.
func (e *env) routeParams(typ, id, key string, s step) *store.ExecuteParams {
	s.Key = key
	s.Source = store.SourceEffect
	p := e.params(typ, id, s)
	return &p
}

func testEffectRoute(t *testing.T, e *env) {
	e.putWebhook("order")
	res := e.mustExec("order", "o-1", step{Input: "place", Effects: []string{"reserve"}})
	effID := res.Write.Effects[0].ID
	require.Len(t, e.claimEffects("w1", e.now, 10), 1)

	route := e.routeParams("order", "o-1", effID, step{Input: "reserved", Data: `{"reserved":true}`,
		To: "reserved", Effects: []string{"ship"}, At: e.at(time.Second)})
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: effID, Worker: "w1", Status: store.EffectDelivered, Now: e.at(time.Second), Route: route,
		Attempt: store.Attempt{StartedAt: e.now, StatusCode: 200, Response: `{"input":{"type":"reserved"}}`},
	}))

	inst := e.instance("order", "o-1")
	require.EqualValues(t, 2, inst.Version)
	require.Equal(t, "reserved", inst.StateName)
	ins := e.inputs("order", "o-1")
	require.Len(t, ins, 2)
	require.Equal(t, store.SourceEffect, ins[1].Source)
	require.Equal(t, effID, ins[1].IdempotencyKey)
	require.Equal(t, store.OutcomeAccepted, ins[1].Outcome)
	eff, attempts, err := e.s.GetEffect(e.ctx, effID)
	require.NoError(t, err)
	require.Equal(t, store.EffectDelivered, eff.Status)
	require.Len(t, attempts, 1)
	require.Equal(t, store.OutcomeAccepted, attempts[0].RoutedOutcome)
	effs := e.effects("order", "o-1")
	require.Len(t, effs, 2, "the routed input's effects are written too")
	require.Equal(t, "ship", effs[1].Name)
	require.EqualValues(t, 2, effs[1].Seq)

	// A second completion cannot apply the response twice.
	err = e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: effID, Worker: "w1", Status: store.EffectDelivered, Now: e.at(2 * time.Second), Route: route,
	})
	require.ErrorIs(t, err, store.ErrLeaseLost)
	require.EqualValues(t, 2, e.instance("order", "o-1").Version)

	// A rejected routed input is recorded as such on the attempt.
	res = e.mustExec("order", "o-2", step{Effects: []string{"reserve"}})
	effID2 := res.Write.Effects[0].ID
	require.Len(t, e.claimEffects("w1", e.now, 10), 1)
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: effID2, Worker: "w1", Status: store.EffectDelivered, Now: e.at(time.Second),
		Route:   e.routeParams("order", "o-2", effID2, step{Input: "reserved", Reject: "not now"}),
		Attempt: store.Attempt{StartedAt: e.now, StatusCode: 200},
	}))
	_, attempts, err = e.s.GetEffect(e.ctx, effID2)
	require.NoError(t, err)
	require.Equal(t, store.OutcomeRejected, attempts[0].RoutedOutcome)
	require.EqualValues(t, 1, e.instance("order", "o-2").Version)

	// A Route is only executed when the effect is delivered.
	var calls atomic.Int64
	res = e.mustExec("order", "o-3", step{Effects: []string{"reserve"}})
	effID3 := res.Write.Effects[0].ID
	require.Len(t, e.claimEffects("w1", e.now, 10), 1)
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: effID3, Worker: "w1", Status: store.EffectPending, NextAttemptAt: e.at(time.Minute),
		Now: e.at(time.Second), Route: e.routeParams("order", "o-3", effID3, step{Calls: &calls}),
		Attempt: store.Attempt{StartedAt: e.now, StatusCode: 500, Error: "500"},
	}))
	require.Zero(t, calls.Load())
	_, attempts, err = e.s.GetEffect(e.ctx, effID3)
	require.NoError(t, err)
	require.Empty(t, attempts[0].RoutedOutcome)
}

func testEffectRouteReplay(t *testing.T, e *env) {
	e.putWebhook("order")
	res := e.mustExec("order", "o-1", step{Effects: []string{"reserve"}})
	effID := res.Write.Effects[0].ID
	// The response's input was already applied (say by an earlier delivery whose
	// completion reached the database, then the effect was delivered again).
	e.mustExec("order", "o-1", step{Input: "reserved", Key: effID, Source: store.SourceEffect})
	require.Len(t, e.claimEffects("w1", e.now, 10), 1)

	var calls atomic.Int64
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: effID, Worker: "w1", Status: store.EffectDelivered, Now: e.at(time.Second),
		Route:   e.routeParams("order", "o-1", effID, step{Input: "reserved", Calls: &calls}),
		Attempt: store.Attempt{StartedAt: e.now, StatusCode: 200},
	}))
	require.Zero(t, calls.Load(), "an applied response is not decided again")
	require.EqualValues(t, 2, e.instance("order", "o-1").Version)
	_, attempts, err := e.s.GetEffect(e.ctx, effID)
	require.NoError(t, err)
	require.Equal(t, store.OutcomeAccepted, attempts[0].RoutedOutcome, "the replayed outcome")
}

func testEffectRouteError(t *testing.T, e *env) {
	e.putWebhook("order")
	res := e.mustExec("order", "o-1", step{Effects: []string{"reserve"}})
	effID := res.Write.Effects[0].ID
	require.Len(t, e.claimEffects("w1", e.now, 10), 1)

	err := e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: effID, Worker: "w1", Status: store.EffectDelivered, Now: e.at(time.Second),
		Route: &store.ExecuteParams{
			WorkflowType: "order", WorkflowID: "o-1", IdempotencyKey: effID,
			Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) { return nil, errDecide },
		},
		Attempt: store.Attempt{StartedAt: e.now, StatusCode: 200},
	})
	require.ErrorIs(t, err, errDecide)
	eff, attempts, err := e.s.GetEffect(e.ctx, effID)
	require.NoError(t, err)
	require.Equal(t, store.EffectPending, eff.Status, "the whole completion is aborted")
	require.Equal(t, "w1", eff.LockedBy)
	require.Zero(t, eff.Attempts)
	require.Empty(t, attempts)
	require.Len(t, e.inputs("order", "o-1"), 1)
}
