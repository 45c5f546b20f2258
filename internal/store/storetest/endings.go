package storetest

import (
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
