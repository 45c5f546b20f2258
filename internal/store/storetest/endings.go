package storetest

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// testTerminate: a write that ends an instance and cancels every pending effect and
// timer does so in its transaction; the key is free again; a worker that held a
// cancelled effect records its attempt and routes nothing.
func testTerminate(t *testing.T, e *env) {
	e.putWebhook("order")
	res := e.mustExec("order", "o-1", step{UniqueKey: "ref-1", Effects: []string{"deposit", "notify"},
		Timers: []store.Timer{{Key: "timeout", FireAt: e.at(time.Minute)}}})
	held := res.Write.Effects[0].ID
	claimed := e.claimEffects("w1", e.now, 1)
	require.Len(t, claimed, 1)
	held = claimed[0].ID

	var committed atomic.Int64
	p := e.params("order", "o-1", step{Input: "terminate", End: store.StatusTerminated,
		CancelEffects: store.CancelAll, CancelAllTimers: true, At: e.at(time.Second)})
	p.CommittedFunc = func(w *store.Write) {
		committed.Add(1)
		require.Equal(t, store.StatusTerminated, w.Instance.Status)
	}
	_, err := e.s.Execute(e.ctx, p)
	require.NoError(t, err)
	require.EqualValues(t, 1, committed.Load(), "CommittedFunc runs once, after the commit")

	inst := e.instance("order", "o-1")
	require.Equal(t, store.StatusTerminated, inst.Status)
	require.NotNil(t, inst.CompletedAt, "an ended instance has its completed_at")
	for _, ef := range e.effects("order", "o-1") {
		require.Equal(t, store.EffectCancelled, ef.Status, ef.Name)
	}
	require.Empty(t, e.timers("order", "o-1", store.TimerPending))
	require.Len(t, e.timers("order", "o-1", store.TimerCancelled), 1)
	require.Empty(t, e.claimEffects("w2", e.at(time.Hour), 10), "a cancelled effect is never claimed")
	require.Empty(t, e.claimTimers("w2", e.at(time.Hour), 10), "a cancelled timer never fires")

	page, err := e.s.ListEffects(e.ctx, store.ListEffectsParams{Status: store.EffectCancelled, Limit: 10})
	require.NoError(t, err)
	require.Len(t, page.Items, 2)
	st, err := e.s.Stats(e.ctx, e.now)
	require.NoError(t, err)
	require.EqualValues(t, 2, st.CancelledEffects)
	require.Zero(t, st.PendingEffects)
	ended, err := e.s.ListInstances(e.ctx, store.ListInstancesParams{Status: store.StatusTerminated})
	require.NoError(t, err)
	require.Len(t, ended.Items, 1)

	// The unique key is free again.
	e.mustExec("order", "o-2", step{UniqueKey: "ref-1"})

	// The worker that held the deposit when it was cancelled: its answer is recorded,
	// never routed, and it is told so (it stops retrying).
	var calls atomic.Int64
	route := e.routeParams("order", "o-1", held, step{Input: "deposited", Calls: &calls, At: e.at(2 * time.Second)})
	err = e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: held, Worker: "w1", Status: store.EffectDelivered, Now: e.at(2 * time.Second), Route: route,
		Attempt: store.Attempt{StartedAt: e.now, StatusCode: 200, Response: `{"input":{"type":"deposited"}}`},
	})
	require.ErrorIs(t, err, store.ErrCancelled)
	require.Zero(t, calls.Load(), "the answer of a cancelled effect is never decided")
	eff, attempts, err := e.s.GetEffect(e.ctx, held)
	require.NoError(t, err)
	require.Equal(t, store.EffectCancelled, eff.Status)
	require.Nil(t, eff.DeliveredAt)
	require.Len(t, attempts, 1, "the late answer is recorded")
	require.Equal(t, 200, attempts[0].StatusCode)
	require.Equal(t, `{"input":{"type":"deposited"}}`, attempts[0].Response)
	require.NotEqual(t, store.OutcomeAccepted, attempts[0].RoutedOutcome)
	require.EqualValues(t, 2, e.instance("order", "o-1").Version, "nothing was routed")

	// Recorded once: a second completion is a lost lease, another worker never counts.
	err = e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{EffectID: held, Worker: "w1",
		Status: store.EffectPending, Now: e.at(3 * time.Second), Attempt: store.Attempt{StartedAt: e.now}})
	require.ErrorIs(t, err, store.ErrLeaseLost)
	other := res.Write.Effects[1].ID
	if other == held {
		other = res.Write.Effects[0].ID
	}
	err = e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{EffectID: other, Worker: "w1",
		Status: store.EffectPending, Now: e.at(3 * time.Second), Attempt: store.Attempt{StartedAt: e.now}})
	require.ErrorIs(t, err, store.ErrLeaseLost, "an effect cancelled before anyone claimed it")

	// Later inputs find the instance ended.
	res = e.mustExec("order", "o-1", step{})
	require.Equal(t, store.OutcomeAlreadyCompleted, res.Input.Outcome)
}

// testCancelKeepsOwnEffects: the effects and timers a cancelling write adds itself stay
// pending (effects of a transition into a terminal state are always delivered).
func testCancelKeepsOwnEffects(t *testing.T, e *env) {
	e.mustExec("order", "o-1", step{Effects: []string{"old"}, Timers: []store.Timer{{Key: "a", FireAt: e.at(time.Minute)}}})
	res := e.mustExec("order", "o-1", step{Effects: []string{"new"}, CancelEffects: store.CancelAll, CancelAllTimers: true,
		Timers: []store.Timer{{Key: "a", FireAt: e.at(time.Hour)}}})
	newID := res.Write.Effects[0].ID
	for _, ef := range e.effects("order", "o-1") {
		want := store.EffectCancelled
		if ef.ID == newID {
			want = store.EffectPending
		}
		require.Equal(t, want, ef.Status, ef.Name)
	}
	pending := e.timers("order", "o-1", store.TimerPending)
	require.Len(t, pending, 1)
	requireTime(t, e.at(time.Hour), pending[0].FireAt)
}

// testEndedStatuses: failed and terminated end an instance as completed does.
func testEndedStatuses(t *testing.T, e *env) {
	e.mustExec("transfer", "t-1", step{UniqueKey: "k"})
	e.mustExec("transfer", "t-1", step{To: "failed", End: store.StatusFailed})
	inst := e.instance("transfer", "t-1")
	require.Equal(t, store.StatusFailed, inst.Status)
	require.NotNil(t, inst.CompletedAt)
	e.mustExec("transfer", "t-2", step{UniqueKey: "k"}) // the key is free
	for status, n := range map[string]int{store.StatusFailed: 1, store.StatusRunning: 1, store.StatusTerminated: 0} {
		page, err := e.s.ListInstances(e.ctx, store.ListInstancesParams{Type: "transfer", Status: status})
		require.NoError(t, err)
		require.Len(t, page.Items, n, status)
	}
	require.Equal(t, store.OutcomeAlreadyCompleted, e.mustExec("transfer", "t-1", step{}).Input.Outcome)
}

// testEffectPolicyKept: an effect's own policy is stored (durations in whole
// milliseconds) and read back; its claim lasts at least LeaseTimeouts of its timeout.
func testEffectPolicyKept(t *testing.T, e *env) {
	e.putWebhook("order")
	slow := store.Effect{Key: "sku-1", MaxAttempts: 7, InitialInterval: 20*time.Millisecond + 300*time.Microsecond,
		MaxInterval: time.Hour, Timeout: 20 * time.Second, StateScoped: true, OnDead: "/states/new/on/go/effects/0"}
	res := e.mustExec("order", "o-1", step{Effects: []string{"slow", "plain"}, Policies: map[string]store.Effect{"slow": slow}})
	slowID := res.Write.Effects[0].ID

	eff, _, err := e.s.GetEffect(e.ctx, slowID)
	require.NoError(t, err)
	require.Equal(t, "sku-1", eff.Key)
	require.Equal(t, 7, eff.MaxAttempts)
	require.Equal(t, 20*time.Millisecond, eff.InitialInterval, "whole milliseconds")
	require.Equal(t, time.Hour, eff.MaxInterval)
	require.Equal(t, 20*time.Second, eff.Timeout)
	require.True(t, eff.StateScoped)
	require.Equal(t, slow.OnDead, eff.OnDead)
	require.Empty(t, eff.OnDeadOutcome)
	plain := e.effects("order", "o-1")[1]
	require.Equal(t, "plain", plain.Name)
	require.Zero(t, plain.MaxAttempts+int(plain.InitialInterval+plain.MaxInterval+plain.Timeout))
	require.False(t, plain.StateScoped)
	require.Empty(t, plain.Key+plain.OnDead)

	claimed := e.claimEffects("w1", e.now, 10) // a 30 s lease
	require.Len(t, claimed, 2)
	for _, c := range claimed {
		want := e.at(30 * time.Second)
		if c.ID == slowID {
			want = e.at(store.LeaseTimeouts * 20 * time.Second)
		}
		require.NotNil(t, c.LockedUntil)
		requireTime(t, want, *c.LockedUntil, c.Name)
	}
	again := e.claimEffects("w2", e.at(59*time.Second), 10)
	require.Len(t, again, 1, "the slow effect's lease covers its timeout")
	require.Equal(t, "plain", again[0].Name)
	again = e.claimEffects("w2", e.at(60*time.Second), 10)
	require.Len(t, again, 1)
	require.Equal(t, slowID, again[0].ID)
}

// testEffectItemKept: the for_each element an effect was emitted for is stored
// compacted, with its position, and every read of the effect (get, list, claim, the
// operator's retry) gives it back; an element that is JSON null is kept as null, not
// as nothing; an effect without one reads nil and 0; an element that is not JSON fails
// the write.
func testEffectItemKept(t *testing.T, e *env) {
	e.putWebhook("order")
	const at = "/states/new/on/go/effects/0"
	policies := map[string]store.Effect{
		"ship": {Key: "b-2", OnDead: at, ItemIndex: 1,
			Item: json.RawMessage(`{ "sku": "b-2", "qty": 2.5,
  "tags": ["x", "\u00e9", "é"], "note": null }`)},
		"blank": {Key: "2", OnDead: at, ItemIndex: 2, Item: json.RawMessage(` null `)},
	}
	res := e.mustExec("order", "o-1", step{Effects: []string{"ship", "blank", "plain"}, Policies: policies})
	want := map[string]struct {
		item  string // "" for nil
		index int
	}{
		"ship":  {`{"sku":"b-2","qty":2.5,"tags":["x","\u00e9","é"],"note":null}`, 1},
		"blank": {`null`, 2},
		"plain": {"", 0},
	}
	check := func(how string, got store.Effect) {
		t.Helper()
		w, ok := want[got.Name]
		require.True(t, ok, "%s: %s", how, got.Name)
		if w.item == "" {
			require.Nil(t, got.Item, "%s: %s", how, got.Name)
		} else {
			require.Equal(t, w.item, string(got.Item), "%s: %s, compacted byte for byte", how, got.Name)
		}
		require.Equal(t, w.index, got.ItemIndex, "%s: %s", how, got.Name)
	}
	for _, ef := range res.Write.Effects {
		got, _, err := e.s.GetEffect(e.ctx, ef.ID)
		require.NoError(t, err)
		check("get", got)
	}
	listed := e.effects("order", "o-1")
	require.Len(t, listed, 3)
	for _, ef := range listed {
		check("list", ef)
	}
	claimed := e.claimEffects("w1", e.now, 10)
	require.Len(t, claimed, 3)
	for _, ef := range claimed {
		check("claim", ef)
	}
	ship := res.Write.Effects[0].ID
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{EffectID: ship, Worker: "w1",
		Status: store.EffectDead, Now: e.now, Attempt: store.Attempt{StartedAt: e.now, StatusCode: 503}}))
	retried, err := e.s.RetryEffect(e.ctx, ship, e.at(time.Second))
	require.NoError(t, err)
	check("retry", retried)

	_, err = e.exec("order", "o-1", step{Effects: []string{"ship"},
		Policies: map[string]store.Effect{"ship": {Item: json.RawMessage(`{"sku":`)}}})
	require.Error(t, err, "an element that is not JSON")
	require.Len(t, e.effects("order", "o-1"), 3)
}

// testCancelStateOnExit: a write that leaves a state (CancelState) cancels the pending
// state-scoped effects of its instance, and only those, in its transaction; its own
// effects stay pending; the worker holding a cancelled one records its attempt, routes
// nothing and is told to stop.
func testCancelStateOnExit(t *testing.T, e *env) {
	e.putWebhook("transfer")
	scoped := map[string]store.Effect{"deposit": {StateScoped: true}, "refund": {StateScoped: true}}
	res := e.mustExec("transfer", "t-1", step{To: "depositing", Effects: []string{"deposit", "audit"}, Policies: scoped})
	deposit := res.Write.Effects[0].ID
	e.mustExec("transfer", "t-2", step{To: "depositing", Effects: []string{"deposit"}, Policies: scoped})
	claimed := e.claimEffects("w1", e.now, 10)
	require.Len(t, claimed, 3)

	// Staying changes nothing; leaving cancels.
	e.mustExec("transfer", "t-1", step{Input: "ping"})
	require.Equal(t, store.EffectPending, e.effects("transfer", "t-1")[0].Status)
	res = e.mustExec("transfer", "t-1", step{Input: "timeout", To: "refunding", CancelEffects: store.CancelState,
		Effects: []string{"refund"}, Policies: scoped, At: e.at(time.Second)})
	refund := res.Write.Effects[0].ID
	status := map[string]string{}
	for _, ef := range e.effects("transfer", "t-1") {
		status[ef.Name] = ef.Status
	}
	require.Equal(t, map[string]string{"deposit": store.EffectCancelled, "audit": store.EffectPending,
		"refund": store.EffectPending}, status)
	require.Equal(t, store.EffectPending, e.effects("transfer", "t-2")[0].Status, "another instance's effects stay")
	require.Equal(t, store.StatusRunning, e.instance("transfer", "t-1").Status)

	// The deposit's answer arrives: recorded, not routed; the worker stops.
	var calls atomic.Int64
	route := e.routeParams("transfer", "t-1", deposit, step{Input: "deposited", Calls: &calls, At: e.at(2 * time.Second)})
	err := e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: deposit, Worker: "w1", Status: store.EffectDelivered, Now: e.at(2 * time.Second), Route: route,
		Attempt: store.Attempt{StartedAt: e.at(time.Second), StatusCode: 200, Response: `{"input":{"type":"deposited"}}`},
	})
	require.ErrorIs(t, err, store.ErrCancelled)
	require.Zero(t, calls.Load())
	eff, attempts, err := e.s.GetEffect(e.ctx, deposit)
	require.NoError(t, err)
	require.Equal(t, store.EffectCancelled, eff.Status)
	require.Len(t, attempts, 1)
	require.Equal(t, "not_routed_cancelled", attempts[0].RoutedOutcome)
	require.EqualValues(t, 3, e.instance("transfer", "t-1").Version, "nothing was routed")

	// Only the refund is left to claim for t-1 (the audit is still held by w1).
	var got []string
	for _, c := range e.claimEffects("w2", e.at(20*time.Second), 10) {
		if c.WorkflowID == "t-1" {
			got = append(got, c.ID)
		}
	}
	require.Equal(t, []string{refund}, got)
	st, err := e.s.Stats(e.ctx, e.now)
	require.NoError(t, err)
	require.EqualValues(t, 1, st.CancelledEffects)
}

// testOnDead: the completion that marks an effect dead runs its on_dead input (the
// Route of a dead completion) in the same transaction; the outcome is on the attempt
// and on the effect. After an operator retry a second death replays the first
// outcome: the input runs once per effect.
func testOnDead(t *testing.T, e *env) {
	e.putWebhook("transfer")
	res := e.mustExec("transfer", "t-1", step{To: "depositing", Effects: []string{"deposit"},
		Policies: map[string]store.Effect{"deposit": {OnDead: "/states/withdrawn/on/go/effects/0"}}})
	deposit := res.Write.Effects[0].ID
	onDead := func(at time.Time, calls *atomic.Int64) *store.ExecuteParams {
		return e.routeParams("transfer", "t-1", deposit+"/on_dead", step{Input: "deposit_failed", To: "refunding",
			Effects: []string{"refund"}, Hash: "on_dead " + deposit, Calls: calls, At: at})
	}
	die := func(at time.Time, calls *atomic.Int64) error {
		claimed := false
		for _, c := range e.claimEffects("w1", at, 10) {
			claimed = claimed || c.ID == deposit
		}
		require.True(e.t, claimed)
		return e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
			EffectID: deposit, Worker: "w1", Status: store.EffectDead, Now: at, Route: onDead(at, calls),
			Attempt: store.Attempt{StartedAt: at, StatusCode: 503, Error: "unexpected status 503"},
		})
	}
	// A retry is not a death: the route waits.
	var calls atomic.Int64
	require.Len(t, e.claimEffects("w1", e.now, 10), 1)
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: deposit, Worker: "w1", Status: store.EffectPending, NextAttemptAt: e.at(time.Second), Now: e.now,
		Route: onDead(e.now, &calls), Attempt: store.Attempt{StartedAt: e.now, StatusCode: 503},
	}))
	require.Zero(t, calls.Load())

	require.NoError(t, die(e.at(time.Second), &calls))
	require.EqualValues(t, 1, calls.Load())
	inst := e.instance("transfer", "t-1")
	require.Equal(t, "refunding", inst.StateName)
	require.EqualValues(t, 2, inst.Version)
	eff, attempts, err := e.s.GetEffect(e.ctx, deposit)
	require.NoError(t, err)
	require.Equal(t, store.EffectDead, eff.Status)
	require.Equal(t, store.OutcomeAccepted, eff.OnDeadOutcome)
	require.Len(t, attempts, 2)
	require.Empty(t, attempts[0].RoutedOutcome)
	require.Equal(t, store.OutcomeAccepted, attempts[1].RoutedOutcome, "the on_dead decision is in the attempt log")
	effs := e.effects("transfer", "t-1")
	require.Len(t, effs, 2, "the on_dead decision's effects are written in the same transaction")
	require.Equal(t, "refund", effs[1].Name)
	ins := e.inputs("transfer", "t-1")
	require.Equal(t, deposit+"/on_dead", ins[1].IdempotencyKey)
	require.Equal(t, store.SourceEffect, ins[1].Source)

	// An operator retry works as before and keeps what on_dead did.
	retried, err := e.s.RetryEffect(e.ctx, deposit, e.at(2*time.Second))
	require.NoError(t, err)
	require.Equal(t, store.EffectPending, retried.Status)
	require.Equal(t, store.OutcomeAccepted, retried.OnDeadOutcome)
	var again atomic.Int64
	require.NoError(t, die(e.at(3*time.Second), &again))
	require.Zero(t, again.Load(), "on_dead runs once per effect")
	eff, attempts, err = e.s.GetEffect(e.ctx, deposit)
	require.NoError(t, err)
	require.Equal(t, store.EffectDead, eff.Status)
	require.Equal(t, store.OutcomeAccepted, eff.OnDeadOutcome)
	require.Len(t, attempts, 3)
	require.Equal(t, store.OutcomeAccepted, attempts[2].RoutedOutcome, "the replayed outcome")
	require.EqualValues(t, 2, e.instance("transfer", "t-1").Version)
	require.Len(t, e.effects("transfer", "t-1"), 2)
}
