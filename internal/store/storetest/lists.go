package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// collect follows Next through every page, checking that only the last has no cursor.
func collect[T any](t *testing.T, fetch func(cursor string) (store.Page[T], error)) (items []T, pages int) {
	t.Helper()
	cursor := ""
	for {
		p, err := fetch(cursor)
		require.NoError(t, err)
		pages++
		items = append(items, p.Items...)
		if p.Next == "" {
			return items, pages
		}
		require.NotEmpty(t, p.Items, "a page with a cursor has items")
		cursor = p.Next
		require.Less(t, pages, 1000, "paging does not end")
	}
}

const badCursor = "%%not-a-cursor%%"

func testListInstances(t *testing.T, e *env) {
	var want []string
	for i := range 5 {
		id := fmt.Sprintf("a-%d", i)
		s := step{To: "open", At: e.at(time.Duration(i) * time.Second)}
		if i%2 == 1 {
			s.To = "closed"
		}
		e.mustExec("order", id, s)
		want = append(want, id)
	}
	e.mustExec("invoice", "b-1", step{})
	e.mustExec("invoice", "b-2", step{Complete: true})
	e.mustExec("order", "a-4", step{To: "done", Complete: true}) // an update does not move it

	ids := func(items []store.Instance) []string {
		var out []string
		for _, i := range items {
			out = append(out, i.ID)
		}
		return out
	}
	items, pages := collect(t, func(c string) (store.Page[store.Instance], error) {
		return e.s.ListInstances(e.ctx, store.ListInstancesParams{Type: "order", Cursor: c, Limit: 2})
	})
	require.Equal(t, want, ids(items), "oldest first, each once")
	require.Equal(t, 3, pages)

	all, err := e.s.ListInstances(e.ctx, store.ListInstancesParams{})
	require.NoError(t, err)
	require.Len(t, all.Items, 7, "no limit: the default page holds them all")
	require.Empty(t, all.Next)

	open, err := e.s.ListInstances(e.ctx, store.ListInstancesParams{Type: "order", State: "open"})
	require.NoError(t, err)
	require.Equal(t, []string{"a-0", "a-2"}, ids(open.Items))

	completed, err := e.s.ListInstances(e.ctx, store.ListInstancesParams{Status: store.StatusCompleted})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"a-4", "b-2"}, ids(completed.Items))

	running, err := e.s.ListInstances(e.ctx, store.ListInstancesParams{Type: "invoice", Status: store.StatusRunning})
	require.NoError(t, err)
	require.Equal(t, []string{"b-1"}, ids(running.Items))

	none, err := e.s.ListInstances(e.ctx, store.ListInstancesParams{Type: "nope"})
	require.NoError(t, err)
	require.Empty(t, none.Items)
	require.Empty(t, none.Next)

	_, err = e.s.ListInstances(e.ctx, store.ListInstancesParams{Cursor: badCursor})
	require.ErrorIs(t, err, store.ErrInvalidCursor)
}

func testListInputs(t *testing.T, e *env) {
	var want []string
	for i := range 7 {
		s := step{Data: fmt.Sprintf(`{"i":%d}`, i), At: e.at(time.Duration(i) * time.Second)}
		if i == 3 {
			s.Reject = "no"
		}
		want = append(want, e.mustExec("order", "o-1", s).Input.ID)
	}
	e.mustExec("order", "o-2", step{})
	items, pages := collect(t, func(c string) (store.Page[store.InputRecord], error) {
		return e.s.ListInputs(e.ctx, "order", "o-1", c, 3)
	})
	require.Equal(t, 3, pages)
	var got []string
	for _, in := range items {
		got = append(got, in.ID)
	}
	require.Equal(t, want, got)
	require.Equal(t, store.OutcomeRejected, items[3].Outcome)

	_, err := e.s.ListInputs(e.ctx, "order", "o-1", badCursor, 3)
	require.ErrorIs(t, err, store.ErrInvalidCursor)
}

func testListEffectsAndTimers(t *testing.T, e *env) {
	e.putWebhook("order")
	var effIDs []string
	for i := range 5 {
		res := e.mustExec("order", fmt.Sprintf("o-%d", i%2), step{
			At:      e.at(time.Duration(i) * time.Second),
			Effects: []string{"e"},
			Timers:  []store.Timer{{Key: fmt.Sprintf("k%d", i), FireAt: e.at(time.Hour)}},
		})
		effIDs = append(effIDs, res.Write.Effects[0].ID)
	}
	e.mustExec("invoice", "i-1", step{At: e.at(time.Minute), Effects: []string{"e"}, Timers: []store.Timer{{Key: "k", FireAt: e.at(time.Hour)}}})

	// Deliver the first effect, cancel the first timer.
	claimed := e.claimEffects("w1", e.at(time.Hour), 1)
	require.Len(t, claimed, 1)
	require.Equal(t, effIDs[0], claimed[0].ID, "the oldest due effect")
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: effIDs[0], Worker: "w1", Status: store.EffectDelivered, Now: e.at(time.Hour),
		Attempt: store.Attempt{StartedAt: e.now, StatusCode: 200},
	}))
	orderTimers := e.timers("order", "", "")
	require.Len(t, orderTimers, 5)
	_, err := e.s.CancelTimer(e.ctx, orderTimers[0].ID, e.now)
	require.NoError(t, err)

	effs, pages := collect(t, func(c string) (store.Page[store.Effect], error) {
		return e.s.ListEffects(e.ctx, store.ListEffectsParams{WorkflowType: "order", Cursor: c, Limit: 2})
	})
	require.Equal(t, 3, pages)
	var got []string
	for _, eff := range effs {
		got = append(got, eff.ID)
	}
	require.Equal(t, effIDs, got)

	pending, err := e.s.ListEffects(e.ctx, store.ListEffectsParams{Status: store.EffectPending, WorkflowType: "order"})
	require.NoError(t, err)
	require.Len(t, pending.Items, 4)
	delivered, err := e.s.ListEffects(e.ctx, store.ListEffectsParams{Status: store.EffectDelivered})
	require.NoError(t, err)
	require.Len(t, delivered.Items, 1)
	byInstance, err := e.s.ListEffects(e.ctx, store.ListEffectsParams{WorkflowType: "order", WorkflowID: "o-1"})
	require.NoError(t, err)
	require.Len(t, byInstance.Items, 2)
	allEffects, err := e.s.ListEffects(e.ctx, store.ListEffectsParams{})
	require.NoError(t, err)
	require.Len(t, allEffects.Items, 6)

	tms, pages := collect(t, func(c string) (store.Page[store.Timer], error) {
		return e.s.ListTimers(e.ctx, store.ListTimersParams{WorkflowType: "order", Cursor: c, Limit: 2})
	})
	require.Equal(t, 3, pages)
	for i, tm := range tms {
		require.Equal(t, fmt.Sprintf("k%d", i), tm.Key, "oldest first")
	}
	pendingTimers, err := e.s.ListTimers(e.ctx, store.ListTimersParams{Status: store.TimerPending})
	require.NoError(t, err)
	require.Len(t, pendingTimers.Items, 5)
	cancelled, err := e.s.ListTimers(e.ctx, store.ListTimersParams{Status: store.TimerCancelled, WorkflowType: "order"})
	require.NoError(t, err)
	require.Len(t, cancelled.Items, 1)
	require.Len(t, e.timers("order", "o-0", ""), 3)

	_, err = e.s.ListEffects(e.ctx, store.ListEffectsParams{Cursor: badCursor})
	require.ErrorIs(t, err, store.ErrInvalidCursor)
	_, err = e.s.ListTimers(e.ctx, store.ListTimersParams{Cursor: badCursor})
	require.ErrorIs(t, err, store.ErrInvalidCursor)
}

// signalled waits up to 5 s for a signal on ch.
func signalled(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		require.True(t, ok, "%s: channel closed", what)
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no signal", what)
	}
}

// drain empties a coalesced signal, if any.
func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func testListen(t *testing.T, e *env) {
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	effects1, err := e.s.Listen(ctx, store.TopicEffects)
	require.NoError(t, err)
	effects2, err := e.s.Listen(ctx, store.TopicEffects)
	require.NoError(t, err)
	timers, err := e.s.Listen(ctx, store.TopicTimers)
	require.NoError(t, err)

	e.mustExec("order", "o-1", step{Effects: []string{"reserve"}})
	signalled(t, effects1, "effect insert")
	signalled(t, effects2, "effect insert, second listener")

	e.mustExec("order", "o-1", step{Timers: []store.Timer{{Key: "k", FireAt: e.at(time.Minute)}}})
	signalled(t, timers, "timer insert")

	drain(timers)
	e.schedule("order", "o-2", "k", e.at(time.Minute))
	signalled(t, timers, "ScheduleTimer")

	drain(effects1)
	e.putWebhook("order")
	signalled(t, effects1, "webhook registered")

	// Many commits while nobody reads coalesce into at least one signal.
	drain(effects1)
	for range 3 {
		e.mustExec("order", "o-3", step{Effects: []string{"x"}})
	}
	signalled(t, effects1, "coalesced")

	cancel()
	for _, ch := range []<-chan struct{}{effects1, effects2, timers} {
		closed := false
		deadline := time.After(5 * time.Second)
		for !closed {
			select {
			case _, ok := <-ch:
				closed = !ok
			case <-deadline:
				t.Fatal("channel not closed after its context ended")
			}
		}
	}
}

func testStats(t *testing.T, e *env) {
	st, err := e.s.Stats(e.ctx, e.now)
	require.NoError(t, err)
	require.Equal(t, store.Stats{}, st)

	e.putWebhook("order")
	e.mustExec("order", "o-1", step{Effects: []string{"a", "b"}})
	e.mustExec("order", "o-2", step{Effects: []string{"c"}, At: e.at(time.Minute)})
	claimed := e.claimEffects("w1", e.now, 1)
	require.Len(t, claimed, 1)
	require.Equal(t, "o-1", claimed[0].WorkflowID)
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{
		EffectID: claimed[0].ID, Worker: "w1", Status: store.EffectDead, Now: e.now,
		Attempt: store.Attempt{StartedAt: e.now, Error: "gone"},
	}))
	t1 := e.schedule("order", "o-1", "a", e.at(time.Minute))
	e.schedule("order", "o-1", "b", e.at(2*time.Minute))
	require.Len(t, e.claimTimers("w1", t1.FireAt, 10), 1)
	require.NoError(t, e.s.CompleteTimer(e.ctx, store.CompleteTimerParams{
		TimerID: t1.ID, Worker: "w1", Status: store.TimerDead, Now: t1.FireAt, Error: "x",
	}))

	st, err = e.s.Stats(e.ctx, e.at(time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 2, st.PendingEffects)
	require.EqualValues(t, 1, st.DeadEffects)
	require.EqualValues(t, 1, st.PendingTimers)
	require.EqualValues(t, 1, st.DeadTimers)
	require.NotNil(t, st.OldestPendingEffect)
	requireTime(t, e.now, *st.OldestPendingEffect)
}

func testPing(t *testing.T, e *env) {
	require.NoError(t, e.s.Ping(e.ctx))
}
