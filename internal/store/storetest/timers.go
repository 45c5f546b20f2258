package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// schedule stores a delayed input on (typ, id) under key.
func (e *env) schedule(typ, id, key string, fireAt time.Time) store.Timer {
	e.t.Helper()
	tm, err := e.s.ScheduleTimer(e.ctx, store.Timer{
		ID: uuid.NewString(), WorkflowType: typ, WorkflowID: id, Key: key, FireAt: fireAt,
		InputType: "tick", InputData: json.RawMessage(`{"n":1}`), Status: store.TimerPending,
		NextAttemptAt: fireAt, CreatedAt: e.now, UpdatedAt: e.now,
	})
	require.NoError(e.t, err)
	return tm
}

func (e *env) timer(id string) store.Timer {
	e.t.Helper()
	tm, err := e.s.GetTimer(e.ctx, id)
	require.NoError(e.t, err)
	return tm
}

// fireParams completes a claimed timer as fired, routing its input.
func (e *env) fireParams(tm store.Timer, worker string, s step) store.CompleteTimerParams {
	s.Input = tm.InputType
	s.Key = tm.ID
	s.Source = store.SourceTimer
	route := e.params(tm.WorkflowType, tm.WorkflowID, s)
	return store.CompleteTimerParams{
		TimerID: tm.ID, Worker: worker, Status: store.TimerFired, Now: tm.FireAt, Route: &route,
	}
}

func testTimerScheduleReplace(t *testing.T, e *env) {
	// A delayed input may target an instance that does not exist yet.
	first := e.schedule("order", "o-1", "remind", e.at(time.Minute))
	require.Equal(t, store.TimerPending, first.Status)
	got := e.timer(first.ID)
	require.Equal(t, "remind", got.Key)
	require.Equal(t, "tick", got.InputType)
	require.JSONEq(t, `{"n":1}`, string(got.InputData))
	requireTime(t, e.at(time.Minute), got.FireAt)
	requireTime(t, e.at(time.Minute), got.NextAttemptAt)
	require.Zero(t, got.Attempts)

	second := e.schedule("order", "o-1", "remind", e.at(2*time.Minute))
	require.Equal(t, store.TimerCancelled, e.timer(first.ID).Status, "the same key replaces")
	pending := e.timers("order", "o-1", store.TimerPending)
	require.Len(t, pending, 1)
	require.Equal(t, second.ID, pending[0].ID)

	// Other keys and other instances are independent.
	e.schedule("order", "o-1", "other", e.at(time.Minute))
	e.schedule("order", "o-2", "remind", e.at(time.Minute))
	require.Len(t, e.timers("order", "o-1", store.TimerPending), 2)
	require.Equal(t, store.TimerPending, e.timer(second.ID).Status)

	_, err := e.s.GetTimer(e.ctx, "no-such-timer")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testTimersInWrite(t *testing.T, e *env) {
	res := e.mustExec("order", "o-1", step{Timers: []store.Timer{
		{Key: "a", FireAt: e.at(time.Minute)},
		{Key: "b", FireAt: e.at(time.Minute)},
		{Key: "c", FireAt: e.at(time.Minute)},
	}})
	require.Len(t, res.Write.Timers, 3)
	idA, idB := res.Write.Timers[0].ID, res.Write.Timers[1].ID
	require.Len(t, e.timers("order", "o-1", store.TimerPending), 3)

	// Cancel a; cancel and schedule b in one write (b ends scheduled); leave c.
	res = e.mustExec("order", "o-1", step{
		Cancel: []string{"a", "b"},
		Timers: []store.Timer{{Key: "b", FireAt: e.at(time.Hour)}},
	})
	require.Equal(t, store.TimerCancelled, e.timer(idA).Status)
	require.Equal(t, store.TimerCancelled, e.timer(idB).Status)
	pending := e.timers("order", "o-1", store.TimerPending)
	require.Len(t, pending, 2)
	byKey := map[string]store.Timer{}
	for _, tm := range pending {
		byKey[tm.Key] = tm
	}
	require.Equal(t, res.Write.Timers[0].ID, byKey["b"].ID)
	requireTime(t, e.at(time.Hour), byKey["b"].FireAt)
	require.Contains(t, byKey, "c")

	// Cancelling a key that has no pending timer is a no-op.
	e.mustExec("order", "o-1", step{Cancel: []string{"zzz"}})

	// A rejected input schedules nothing.
	e.mustExec("order", "o-1", step{Reject: "no", Timers: []store.Timer{{Key: "d", FireAt: e.now}}})
	require.Len(t, e.timers("order", "o-1", store.TimerPending), 2)
}

func testTimerClaimDue(t *testing.T, e *env) {
	_, ok, err := e.s.NextTimerAt(e.ctx)
	require.NoError(t, err)
	require.False(t, ok)

	late := e.schedule("order", "o-1", "late", e.at(time.Hour))
	soon := e.schedule("order", "o-2", "soon", e.at(time.Minute))
	at, ok, err := e.s.NextTimerAt(e.ctx)
	require.NoError(t, err)
	require.True(t, ok)
	requireTime(t, e.at(time.Minute), at)

	require.Empty(t, e.claimTimers("w1", e.now, 10), "nothing is due yet")
	got := e.claimTimers("w1", e.at(time.Minute), 10)
	require.Len(t, got, 1)
	require.Equal(t, soon.ID, got[0].ID)
	require.Equal(t, "w1", got[0].LockedBy)
	require.NotNil(t, got[0].LockedUntil)
	require.Empty(t, e.claimTimers("w2", e.at(time.Minute), 10), "the lease excludes others")

	got = e.claimTimers("w2", e.at(2*time.Hour), 1)
	require.Len(t, got, 1, "the limit holds")
	got = append(got, e.claimTimers("w2", e.at(2*time.Hour), 1)...)
	require.Len(t, got, 2)
	require.ElementsMatch(t, []string{soon.ID, late.ID}, []string{got[0].ID, got[1].ID},
		"the first claim's lease expired at 2h")

	// Cancelled timers are neither due nor claimable.
	other := e.schedule("order", "o-3", "x", e.at(3*time.Hour))
	_, err = e.s.CancelTimer(e.ctx, other.ID, e.now)
	require.NoError(t, err)
	for _, tm := range e.claimTimers("w3", e.at(4*time.Hour), 10) {
		require.NotEqual(t, other.ID, tm.ID)
	}
}

func testTimerFireRoute(t *testing.T, e *env) {
	e.mustExec("order", "o-1", step{Input: "place", Timers: []store.Timer{{Key: "expire", FireAt: e.at(time.Minute), InputType: "expire"}}})
	tm := e.timers("order", "o-1", store.TimerPending)[0]
	require.Len(t, e.claimTimers("w1", tm.FireAt, 10), 1)

	require.NoError(t, e.s.CompleteTimer(e.ctx, e.fireParams(tm, "w1", step{To: "expired", Complete: true, At: tm.FireAt})))

	fired := e.timer(tm.ID)
	require.Equal(t, store.TimerFired, fired.Status)
	require.Equal(t, store.OutcomeAccepted, fired.Outcome)
	require.NotNil(t, fired.FiredAt)
	requireTime(t, tm.FireAt, *fired.FiredAt)
	require.Empty(t, fired.LockedBy)
	inst := e.instance("order", "o-1")
	require.Equal(t, store.StatusCompleted, inst.Status)
	require.Equal(t, "expired", inst.StateName)
	ins := e.inputs("order", "o-1")
	require.Len(t, ins, 2)
	require.Equal(t, store.SourceTimer, ins[1].Source)
	require.Equal(t, "expire", ins[1].Type)
	require.Equal(t, tm.ID, ins[1].IdempotencyKey)

	err := e.s.CompleteTimer(e.ctx, e.fireParams(tm, "w1", step{}))
	require.ErrorIs(t, err, store.ErrLeaseLost, "a fired timer cannot fire again")
	require.Len(t, e.inputs("order", "o-1"), 2)

	// A timer firing on a completed instance records already_completed.
	late := e.schedule("order", "o-1", "late", e.at(2*time.Minute))
	require.Len(t, e.claimTimers("w1", late.FireAt, 10), 1)
	require.NoError(t, e.s.CompleteTimer(e.ctx, e.fireParams(late, "w1", step{At: late.FireAt})))
	require.Equal(t, store.OutcomeAlreadyCompleted, e.timer(late.ID).Outcome)
}

func testTimerCancelledWhileClaimed(t *testing.T, e *env) {
	e.mustExec("order", "o-1", step{})
	cancelled := e.schedule("order", "o-1", "a", e.at(time.Minute))
	replaced := e.schedule("order", "o-1", "b", e.at(time.Minute))
	require.Len(t, e.claimTimers("w1", e.at(time.Minute), 10), 2)

	_, err := e.s.CancelTimer(e.ctx, cancelled.ID, e.at(time.Minute))
	require.NoError(t, err)
	newer := e.schedule("order", "o-1", "b", e.at(time.Hour))

	var calls atomic.Int64
	for _, tm := range []store.Timer{cancelled, replaced} {
		err := e.s.CompleteTimer(e.ctx, e.fireParams(tm, "w1", step{Calls: &calls}))
		require.ErrorIs(t, err, store.ErrLeaseLost)
		require.Equal(t, store.TimerCancelled, e.timer(tm.ID).Status)
	}
	require.Zero(t, calls.Load(), "nothing executes")
	require.EqualValues(t, 1, e.instance("order", "o-1").Version)
	require.Equal(t, store.TimerPending, e.timer(newer.ID).Status)
}

func testTimerRearmsOwnKey(t *testing.T, e *env) {
	e.mustExec("order", "o-1", step{})
	tm := e.schedule("order", "o-1", "heartbeat", e.at(time.Minute))
	require.Len(t, e.claimTimers("w1", tm.FireAt, 10), 1)

	require.NoError(t, e.s.CompleteTimer(e.ctx, e.fireParams(tm, "w1", step{
		At:     tm.FireAt,
		Timers: []store.Timer{{Key: "heartbeat", FireAt: e.at(2 * time.Minute)}},
	})))
	require.Equal(t, store.TimerFired, e.timer(tm.ID).Status, "the firing timer ends fired")
	pending := e.timers("order", "o-1", store.TimerPending)
	require.Len(t, pending, 1, "the re-armed timer stays pending")
	require.NotEqual(t, tm.ID, pending[0].ID)
	require.Equal(t, "heartbeat", pending[0].Key)
	requireTime(t, e.at(2*time.Minute), pending[0].FireAt)
	at, ok, err := e.s.NextTimerAt(e.ctx)
	require.NoError(t, err)
	require.True(t, ok)
	requireTime(t, e.at(2*time.Minute), at)

	// A timer whose input cancels its own key also ends fired.
	next := pending[0]
	require.Len(t, e.claimTimers("w1", next.FireAt, 10), 1)
	require.NoError(t, e.s.CompleteTimer(e.ctx, e.fireParams(next, "w1", step{At: next.FireAt, Cancel: []string{"heartbeat"}})))
	require.Equal(t, store.TimerFired, e.timer(next.ID).Status)
	require.Empty(t, e.timers("order", "o-1", store.TimerPending))
}

func testTimerRetryAndDead(t *testing.T, e *env) {
	tm := e.schedule("order", "o-1", "a", e.at(time.Minute))
	require.Len(t, e.claimTimers("w1", tm.FireAt, 10), 1)
	retryAt := e.at(5 * time.Minute)
	require.NoError(t, e.s.CompleteTimer(e.ctx, store.CompleteTimerParams{
		TimerID: tm.ID, Worker: "w1", Status: store.TimerPending, NextAttemptAt: retryAt,
		Error: "store unavailable", Now: tm.FireAt,
	}))
	got := e.timer(tm.ID)
	require.Equal(t, store.TimerPending, got.Status)
	require.Equal(t, 1, got.Attempts)
	require.Equal(t, "store unavailable", got.LastError)
	requireTime(t, retryAt, got.NextAttemptAt)
	requireTime(t, e.at(time.Minute), got.FireAt, "FireAt keeps the original time")
	require.Empty(t, got.LockedBy)
	require.Empty(t, e.claimTimers("w1", e.at(2*time.Minute), 10))

	require.Len(t, e.claimTimers("w1", retryAt, 10), 1)
	require.NoError(t, e.s.CompleteTimer(e.ctx, store.CompleteTimerParams{
		TimerID: tm.ID, Worker: "w1", Status: store.TimerDead, Error: "gave up", Now: retryAt,
	}))
	got = e.timer(tm.ID)
	require.Equal(t, store.TimerDead, got.Status)
	require.Equal(t, 2, got.Attempts)
	require.Empty(t, e.claimTimers("w1", e.at(time.Hour), 10))
	_, ok, err := e.s.NextTimerAt(e.ctx)
	require.NoError(t, err)
	require.False(t, ok, "a dead timer is not pending")

	retried, err := e.s.RetryTimer(e.ctx, tm.ID, e.at(time.Hour))
	require.NoError(t, err)
	require.Equal(t, store.TimerPending, retried.Status)
	require.Zero(t, retried.Attempts)
	requireTime(t, e.at(time.Hour), retried.NextAttemptAt)
	_, err = e.s.RetryTimer(e.ctx, tm.ID, e.at(time.Hour))
	require.ErrorIs(t, err, store.ErrWrongStatus, "only dead timers can be retried")
	require.Len(t, e.claimTimers("w1", e.at(time.Hour), 10), 1)

	cancelled, err := e.s.CancelTimer(e.ctx, tm.ID, e.at(time.Hour))
	require.NoError(t, err)
	require.Equal(t, store.TimerCancelled, cancelled.Status)
	_, err = e.s.CancelTimer(e.ctx, tm.ID, e.at(time.Hour))
	require.ErrorIs(t, err, store.ErrWrongStatus)
	_, err = e.s.RetryTimer(e.ctx, tm.ID, e.at(time.Hour))
	require.ErrorIs(t, err, store.ErrWrongStatus)
	_, err = e.s.CancelTimer(e.ctx, "no-such-timer", e.now)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.s.RetryTimer(e.ctx, "no-such-timer", e.now)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testTimerStaleWorker(t *testing.T, e *env) {
	e.mustExec("order", "o-1", step{})
	tm := e.schedule("order", "o-1", "a", e.at(time.Minute))
	require.Len(t, e.claimTimers("w1", tm.FireAt, 10), 1)
	require.Len(t, e.claimTimers("w2", tm.FireAt.Add(31*time.Second), 10), 1, "an expired lease is taken over")

	var calls atomic.Int64
	err := e.s.CompleteTimer(e.ctx, e.fireParams(tm, "w1", step{Calls: &calls}))
	require.ErrorIs(t, err, store.ErrLeaseLost)
	require.Zero(t, calls.Load())
	got := e.timer(tm.ID)
	require.Equal(t, store.TimerPending, got.Status)
	require.Equal(t, "w2", got.LockedBy)
	require.Zero(t, got.Attempts)

	require.NoError(t, e.s.CompleteTimer(e.ctx, e.fireParams(tm, "w2", step{Calls: &calls})))
	require.EqualValues(t, 1, calls.Load())
	require.EqualValues(t, 2, e.instance("order", "o-1").Version)
}

// testTimerBatch records a mixed batch with CompleteTimers: each completion must end as
// CompleteTimer would have left it, whether the store batches it or not.
func testTimerBatch(t *testing.T, e *env) {
	e.mustExec("order", "o-1", step{})
	e.mustExec("order", "held", step{UniqueKey: "k"})
	newA := e.schedule("order", "new-a", "start", e.at(time.Minute))
	newB := e.schedule("order", "new-b", "start", e.at(time.Minute))
	beat := e.schedule("order", "o-1", "heartbeat", e.at(time.Minute))
	second := e.schedule("order", "o-1", "other", e.at(time.Minute)) // same instance as beat
	stolen := e.schedule("order", "o-2", "x", e.at(time.Minute))
	failing := e.schedule("order", "o-3", "x", e.at(time.Minute))
	retried := e.schedule("order", "o-4", "x", e.at(time.Minute))
	require.Len(t, e.claimTimers("w1", e.at(time.Minute), 20), 7)

	boom := errors.New("decision failed")
	failParams := e.fireParams(failing, "w1", step{})
	failParams.Route.Decide = func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
		return nil, boom
	}
	ps := []store.CompleteTimerParams{
		e.fireParams(newA, "w1", step{To: "started", At: newA.FireAt}),
		e.fireParams(beat, "w1", step{At: beat.FireAt, Timers: []store.Timer{{Key: "heartbeat", FireAt: e.at(2 * time.Minute), InputType: "tick"}}}),
		e.fireParams(second, "w1", step{At: second.FireAt, Data: `{"second":true}`}),
		e.fireParams(stolen, "w2", step{}), // not w2's claim
		failParams,
		{TimerID: retried.ID, Worker: "w1", Status: store.TimerPending, NextAttemptAt: e.at(time.Hour), Error: "later", Now: e.at(time.Minute)},
		e.fireParams(newB, "w1", step{To: "started", At: newB.FireAt}),
	}
	errs := e.s.CompleteTimers(e.ctx, ps)
	require.Len(t, errs, len(ps))
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.NoError(t, errs[2])
	require.ErrorIs(t, errs[3], store.ErrLeaseLost)
	require.ErrorIs(t, errs[4], boom)
	require.NoError(t, errs[5])
	require.NoError(t, errs[6])

	for _, id := range []string{"new-a", "new-b"} {
		inst := e.instance("order", id)
		require.Equal(t, "started", inst.StateName)
		ins := e.inputs("order", id)
		require.Len(t, ins, 1)
		require.Equal(t, store.SourceTimer, ins[0].Source)
		require.Len(t, e.events("order", id), 1)
	}
	for _, tm := range []store.Timer{newA, newB, beat, second} {
		got := e.timer(tm.ID)
		require.Equal(t, store.TimerFired, got.Status, tm.Key)
		require.Equal(t, store.OutcomeAccepted, got.Outcome)
		require.Equal(t, 1, got.Attempts)
		require.Empty(t, got.LockedBy)
	}
	// Both firings on o-1 applied, one after the other; the heartbeat re-armed its key.
	o1 := e.instance("order", "o-1")
	require.EqualValues(t, 3, o1.Version)
	require.JSONEq(t, `{"second":true}`, string(o1.StateData))
	pending := e.timers("order", "o-1", store.TimerPending)
	require.Len(t, pending, 1)
	require.Equal(t, "heartbeat", pending[0].Key)
	requireTime(t, e.at(2*time.Minute), pending[0].FireAt)

	// The refused ones wrote nothing and keep their claim.
	require.Equal(t, store.TimerPending, e.timer(stolen.ID).Status)
	require.Equal(t, "w1", e.timer(stolen.ID).LockedBy)
	require.Equal(t, store.TimerPending, e.timer(failing.ID).Status)
	require.Equal(t, "w1", e.timer(failing.ID).LockedBy)
	for _, id := range []string{"o-2", "o-3"} {
		_, err := e.s.GetInstance(e.ctx, "order", id)
		require.ErrorIs(t, err, store.ErrNotFound)
	}
	got := e.timer(retried.ID)
	require.Equal(t, store.TimerPending, got.Status)
	require.Equal(t, "later", got.LastError)
	requireTime(t, e.at(time.Hour), got.NextAttemptAt)

	// A batch the database refuses as a whole (a unique key taken) falls back to one
	// transaction per firing: the others still fire, the conflicting one gets its error.
	c1 := e.schedule("order", "c-1", "start", e.at(time.Minute))
	c2 := e.schedule("order", "c-2", "start", e.at(time.Minute))
	c3 := e.schedule("order", "c-3", "start", e.at(time.Minute))
	require.Len(t, e.claimTimers("w1", e.at(time.Minute), 20), 3)
	errs = e.s.CompleteTimers(e.ctx, []store.CompleteTimerParams{
		e.fireParams(c1, "w1", step{At: c1.FireAt}),
		e.fireParams(c2, "w1", step{At: c2.FireAt, UniqueKey: "k"}),
		e.fireParams(c3, "w1", step{At: c3.FireAt}),
	})
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], store.ErrUniqueKeyConflict)
	require.NoError(t, errs[2])
	require.Equal(t, store.TimerFired, e.timer(c1.ID).Status)
	require.Equal(t, store.TimerPending, e.timer(c2.ID).Status)
	require.Equal(t, store.TimerFired, e.timer(c3.ID).Status)
}

// testTimerBatchLarge fires a batch larger than one statement's rows (the SQLite store
// splits it into chunks), half of it on new instances and half on existing ones, with
// events, effects and new timers: every row must land as it would one firing at a time.
func testTimerBatchLarge(t *testing.T, e *env) {
	const n = 90
	var ps []store.CompleteTimerParams
	for i := range n {
		id := fmt.Sprintf("o-%02d", i)
		if i%2 == 1 {
			e.mustExec("order", id, step{Data: `{"old":true}`})
		}
		tm := e.schedule("order", id, "tick", e.at(time.Minute))
		s := step{To: "ticked", At: tm.FireAt, Data: fmt.Sprintf(`{"i":%d}`, i)}
		if i%3 == 0 {
			s.Effects = []string{"notify"}
			s.Timers = []store.Timer{{Key: "next", FireAt: e.at(time.Hour), InputType: "tick"}}
		}
		ps = append(ps, e.fireParams(tm, "w1", s))
	}
	require.Len(t, e.claimTimers("w1", e.at(time.Minute), 2*n), n)
	for i, err := range e.s.CompleteTimers(e.ctx, ps) {
		require.NoError(t, err, i)
	}
	for i, p := range ps {
		id := fmt.Sprintf("o-%02d", i)
		inst := e.instance("order", id)
		require.Equal(t, "ticked", inst.StateName, id)
		want := map[string]any{"i": float64(i)}
		if i%2 == 1 {
			want["old"] = true
		}
		var got map[string]any
		require.NoError(t, json.Unmarshal(inst.StateData, &got))
		require.Equal(t, want, got, id)
		evs := e.events("order", id)
		require.Len(t, evs, 1+i%2, id)
		require.Equal(t, inst.Version, evs[len(evs)-1].Seq, id)
		ins := e.inputs("order", id)
		require.Len(t, ins, 1+i%2, id)
		require.Equal(t, p.TimerID, ins[len(ins)-1].IdempotencyKey, id)
		require.Equal(t, store.TimerFired, e.timer(p.TimerID).Status, id)
		if i%3 == 0 {
			require.Len(t, e.effects("order", id), 1, id)
			require.Len(t, e.timers("order", id, store.TimerPending), 1, id)
		} else {
			require.Empty(t, e.effects("order", id), id)
			require.Empty(t, e.timers("order", id, store.TimerPending), id)
		}
	}
}

// testTimerClaimAhead claims timers due within DueBy, judging leases at Now.
func testTimerClaimAhead(t *testing.T, e *env) {
	soon := e.schedule("order", "o-1", "a", e.at(time.Second))
	e.schedule("order", "o-2", "a", e.at(time.Minute))
	got, err := e.s.ClaimTimers(e.ctx, store.ClaimParams{
		Worker: "w1", Limit: 10, Now: e.now, DueBy: e.at(2 * time.Second), LeaseExpiry: e.at(30 * time.Second),
	})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, soon.ID, got[0].ID)
	// At 31s w1's lease has expired although the timer was claimed ahead of its time.
	got, err = e.s.ClaimTimers(e.ctx, store.ClaimParams{
		Worker: "w2", Limit: 10, Now: e.at(31 * time.Second), DueBy: e.at(31 * time.Second), LeaseExpiry: e.at(time.Minute),
	})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, soon.ID, got[0].ID)
}
