package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// testClaimExcludeTypes: a claim skips the types it is asked to (a worker's share for
// them is in use), their sends included, and keeps each effect's chain depth.
func testClaimExcludeTypes(t *testing.T, e *env) {
	e.putWebhook("order")
	e.putWebhook("invoice")
	e.mustExec("order", "o-1", step{Effects: []string{"reserve", "ship"}, Depth: 7,
		Policies: map[string]store.Effect{"ship": sendTo("shipment", "o-1", store.ChildLink{})}})
	e.mustExec("invoice", "i-1", step{Effects: []string{"send"}, At: e.at(time.Second)})
	now := e.at(time.Minute)
	c, err := e.s.ClaimEffects(e.ctx, store.ClaimParams{Worker: "w1", Limit: 10, Now: now,
		LeaseExpiry: now.Add(30 * time.Second), ExcludeTypes: []string{"order"}})
	require.NoError(t, err)
	got := c.Effects
	require.Len(t, got, 1)
	require.Equal(t, "invoice", got[0].WorkflowType)
	require.Zero(t, got[0].ChainDepth)
	got = e.claimEffects("w1", now, 10)
	require.Len(t, got, 2)
	for _, eff := range got {
		require.Equal(t, "order", eff.WorkflowType)
		require.Equal(t, 7, eff.ChainDepth)
	}
}

// testClaimAcrossTypesInDueOrder: a claim takes the earliest due effects it may deliver
// whatever their type, sends among them, up to its limit, earliest first; the rows of a
// type without an active endpoint, due earlier still, neither count nor come.
func testClaimAcrossTypesInDueOrder(t *testing.T, e *env) {
	e.putWebhook("order")
	e.putWebhook("invoice")
	e.mustExec("idle", "x-1", step{Effects: []string{"a", "b", "c"}}) // no endpoint
	due := map[string]time.Duration{"order/o-1": 4, "invoice/i-1": 1, "batch/b-1": 2, "order/o-2": 3, "invoice/i-2": 5}
	ids := map[time.Duration]string{}
	for key, at := range due {
		typ, id, _ := strings.Cut(key, "/")
		st := step{Effects: []string{"e"}, At: e.at(at * time.Second)}
		if typ == "batch" {
			st.Policies = map[string]store.Effect{"e": sendTo("chunk", "b-1/0", store.ChildLink{})}
		}
		ids[at] = e.mustExec(typ, id, st).Write.Effects[0].ID
	}
	now := e.at(time.Minute)
	var got []string
	for _, eff := range e.claimEffects("w1", now, 3) {
		got = append(got, eff.ID)
	}
	require.Equal(t, []string{ids[1], ids[2], ids[3]}, got)
	got = nil
	for _, eff := range e.claimEffects("w1", now, 3) {
		got = append(got, eff.ID)
	}
	require.Equal(t, []string{ids[4], ids[5]}, got)
}

// testClaimReadsEndpoints: a claim returns the endpoint of each webhook effect's type as
// it is when claimed (secrets rotated since registration included), once per type, and
// none for a send, which needs none.
func testClaimReadsEndpoints(t *testing.T, e *env) {
	e.putWebhook("order")
	e.putWebhook("invoice")
	e.putWebhook("idle")
	e.putWebhook("batch") // its effect is a send, delivered without it
	rotated, err := e.s.RotateWebhookSecret(e.ctx, "order", "whsec_new", e.at(time.Hour), e.now)
	require.NoError(t, err)
	e.mustExec("order", "o-1", step{Effects: []string{"reserve", "ship"}})
	e.mustExec("invoice", "i-1", step{Effects: []string{"send"}})
	e.mustExec("batch", "b-1", step{Effects: []string{"start"},
		Policies: map[string]store.Effect{"start": sendTo("chunk", "b-1/0", chunkLink)}})

	c, err := e.s.ClaimEffects(e.ctx, store.ClaimParams{Worker: "w1", Limit: 10, Now: e.now, LeaseExpiry: e.at(time.Minute)})
	require.NoError(t, err)
	require.Len(t, c.Effects, 4)
	require.Len(t, c.Endpoints, 2, "the claimed webhook effects' types only: not the send's, not an idle type's")
	require.Equal(t, rotated, c.Endpoints["order"])
	require.Len(t, c.Endpoints["order"].Secrets, 2)
	invoice, err := e.s.GetWebhook(e.ctx, "invoice")
	require.NoError(t, err)
	require.Equal(t, invoice, c.Endpoints["invoice"])

	c, err = e.s.ClaimEffects(e.ctx, store.ClaimParams{Worker: "w1", Limit: 10, Now: e.now, LeaseExpiry: e.at(time.Minute)})
	require.NoError(t, err)
	require.Empty(t, c.Effects)
	require.NotNil(t, c.Endpoints, "an empty claim has an empty map")
	require.Empty(t, c.Endpoints)
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

// testEffectBatch records a mixed batch with CompleteEffects: each completion must end
// as CompleteEffect would have left it.
func testEffectBatch(t *testing.T, e *env) {
	e.putWebhook("order")
	emit := func(id string) string {
		return e.mustExec("order", id, step{Input: "place", Effects: []string{"reserve"}}).Write.Effects[0].ID
	}
	a, b, twice1, twice2 := emit("o-a"), emit("o-b"), emit("o-2"), ""
	twice2 = e.mustExec("order", "o-2", step{Effects: []string{"notify"}}).Write.Effects[0].ID
	stolen, failing, retried, dead := emit("o-s"), emit("o-f"), emit("o-r"), emit("o-d")
	require.Len(t, e.claimEffects("w1", e.now, 20), 8)

	delivered := func(id, wid, worker string, s step) store.CompleteEffectParams {
		s.At = e.at(time.Second)
		return store.CompleteEffectParams{
			EffectID: id, Worker: worker, Status: store.EffectDelivered, Now: e.at(time.Second),
			Route:   e.routeParams("order", wid, id, s),
			Attempt: store.Attempt{StartedAt: e.now, Duration: time.Millisecond, StatusCode: 200, Response: `{"input":{}}`},
		}
	}
	boom := errors.New("decision failed")
	fail := delivered(failing, "o-f", "w1", step{})
	fail.Route.Decide = func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) { return nil, boom }
	ps := []store.CompleteEffectParams{
		delivered(a, "o-a", "w1", step{Input: "reserved", To: "reserved", Effects: []string{"ship"},
			Timers: []store.Timer{{Key: "remind", FireAt: e.at(time.Hour), InputType: "remind"}}}),
		delivered(b, "o-b", "w1", step{Input: "reserved", Reject: "not now"}),
		delivered(twice1, "o-2", "w1", step{Input: "reserved", Data: `{"first":true}`}),
		delivered(twice2, "o-2", "w1", step{Input: "notified", Data: `{"second":true}`}), // same instance
		delivered(stolen, "o-s", "w2", step{Input: "reserved"}),                          // not w2's claim
		fail,
		{EffectID: retried, Worker: "w1", Status: store.EffectPending, NextAttemptAt: e.at(time.Minute), Now: e.at(time.Second),
			Attempt: store.Attempt{StartedAt: e.now, StatusCode: 503, Error: "503 Service Unavailable"}},
		{EffectID: dead, Worker: "w1", Status: store.EffectDead, Now: e.at(time.Second),
			Attempt: store.Attempt{StartedAt: e.now, StatusCode: 400, Error: "400 Bad Request"}},
	}
	errs := e.s.CompleteEffects(e.ctx, ps)
	require.Len(t, errs, len(ps))
	for _, i := range []int{0, 1, 2, 3, 6, 7} {
		require.NoError(t, errs[i], i)
	}
	require.ErrorIs(t, errs[4], store.ErrLeaseLost)
	require.ErrorIs(t, errs[5], boom)

	attempts := func(id string) (store.Effect, []store.Attempt) {
		eff, as, err := e.s.GetEffect(e.ctx, id)
		require.NoError(t, err)
		return eff, as
	}
	// Delivered, with the routed input applied and its outcome on the attempt.
	eff, as := attempts(a)
	require.Equal(t, store.EffectDelivered, eff.Status)
	require.Equal(t, 1, eff.Attempts)
	require.Empty(t, eff.LockedBy)
	require.NotNil(t, eff.DeliveredAt)
	require.Len(t, as, 1)
	require.Equal(t, 1, as[0].Number)
	require.Equal(t, 200, as[0].StatusCode)
	require.Equal(t, time.Millisecond, as[0].Duration.Truncate(time.Millisecond))
	require.Equal(t, `{"input":{}}`, as[0].Response)
	require.Equal(t, store.OutcomeAccepted, as[0].RoutedOutcome)
	inst := e.instance("order", "o-a")
	require.Equal(t, "reserved", inst.StateName)
	require.EqualValues(t, 2, inst.Version)
	ins := e.inputs("order", "o-a")
	require.Len(t, ins, 2)
	require.Equal(t, a, ins[1].IdempotencyKey)
	require.Equal(t, store.SourceEffect, ins[1].Source)
	require.Len(t, e.effects("order", "o-a"), 2, "the routed decision's effect")
	require.Len(t, e.timers("order", "o-a", store.TimerPending), 1, "the routed decision's timer")

	_, as = attempts(b)
	require.Equal(t, store.OutcomeRejected, as[0].RoutedOutcome)
	require.EqualValues(t, 1, e.instance("order", "o-b").Version)

	// Both deliveries of o-2 applied, one after the other.
	o2 := e.instance("order", "o-2")
	require.EqualValues(t, 4, o2.Version)
	require.JSONEq(t, `{"first":true,"second":true}`, string(o2.StateData))
	for _, id := range []string{twice1, twice2} {
		eff, _ := attempts(id)
		require.Equal(t, store.EffectDelivered, eff.Status)
	}

	// The refused ones wrote nothing and keep their claim.
	for _, id := range []string{stolen, failing} {
		eff, as := attempts(id)
		require.Equal(t, store.EffectPending, eff.Status)
		require.Equal(t, "w1", eff.LockedBy)
		require.Empty(t, as)
	}
	for _, id := range []string{"o-s", "o-f"} {
		require.EqualValues(t, 1, e.instance("order", id).Version)
	}

	// The failed attempts are recorded without a route.
	eff, as = attempts(retried)
	require.Equal(t, store.EffectPending, eff.Status)
	requireTime(t, e.at(time.Minute), eff.NextAttemptAt)
	require.Equal(t, "503 Service Unavailable", eff.LastError)
	require.Len(t, as, 1)
	require.Equal(t, 503, as[0].StatusCode)
	eff, as = attempts(dead)
	require.Equal(t, store.EffectDead, eff.Status)
	require.Len(t, as, 1)

	// A second attempt of the same effect is numbered after the first. (At one minute
	// the leases of the refused ones have expired too, and the routed decision's new
	// effect is due.)
	require.Len(t, e.claimEffects("w1", e.at(time.Minute), 20), 4)
	errs = e.s.CompleteEffects(e.ctx, []store.CompleteEffectParams{
		func() store.CompleteEffectParams {
			p := delivered(retried, "o-r", "w1", step{Input: "reserved"})
			p.Now = e.at(time.Minute)
			return p
		}(),
		delivered(emitClaimed(e, "o-r2"), "o-r2", "w1", step{Input: "reserved"}),
	})
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	eff, as = attempts(retried)
	require.Equal(t, store.EffectDelivered, eff.Status)
	require.Equal(t, 2, eff.Attempts)
	require.Len(t, as, 2)
	require.Equal(t, 2, as[1].Number)
	require.Equal(t, store.OutcomeAccepted, as[1].RoutedOutcome)
}

// emitClaimed has instance id emit one effect and claims it for w1.
func emitClaimed(e *env, id string) string {
	e.t.Helper()
	eff := e.mustExec("order", id, step{Effects: []string{"reserve"}}).Write.Effects[0].ID
	require.Len(e.t, e.claimEffects("w1", e.at(time.Minute), 20), 1)
	return eff
}
