package storetest

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// testListInstancesByPrefixAndTime: an id prefix is matched byte for byte (% and _ are
// themselves), the creation range is [after, before), and both combine with the other
// filters and with paging.
func testListInstancesByPrefixAndTime(t *testing.T, e *env) {
	for i, id := range []string{"ord-1", "ord-2", "ord_3", "ord%4", "ordx", "or", "ord-\U0010FFFF", "ore-1", "o\u00e9-1", "o\u00ea-1"} {
		e.mustExec("order", id, step{At: e.at(time.Duration(i) * time.Minute)})
	}
	e.mustExec("invoice", "ord-9", step{At: e.at(time.Minute)})
	e.mustExec("order", "ord-2", step{To: "done", Complete: true, At: e.at(time.Hour)})

	ids := func(p store.ListInstancesParams) []string {
		t.Helper()
		items, _ := collect(t, func(c string) (store.Page[store.Instance], error) {
			q := p
			q.Cursor, q.Limit = c, 2
			return e.s.ListInstances(e.ctx, q)
		})
		out := []string{}
		for _, in := range items {
			out = append(out, in.ID)
		}
		return out
	}
	require.Equal(t, []string{"ord-1", "ord-2", "ord-\U0010FFFF"}, ids(store.ListInstancesParams{Type: "order", IDPrefix: "ord-"}))
	require.Equal(t, []string{"ord-1", "ord-2", "ord-\U0010FFFF", "ord-9"}, ids(store.ListInstancesParams{IDPrefix: "ord-"}))
	require.Equal(t, []string{"ord_3"}, ids(store.ListInstancesParams{Type: "order", IDPrefix: "ord_"}), "_ is no wildcard")
	require.Equal(t, []string{"ord%4"}, ids(store.ListInstancesParams{Type: "order", IDPrefix: "ord%"}), "% is no wildcard")
	require.Equal(t, []string{"ord-1", "ord-2", "ord_3", "ord%4", "ordx", "ord-\U0010FFFF"},
		ids(store.ListInstancesParams{Type: "order", IDPrefix: "ord"}))
	require.Equal(t, []string{"o\u00e9-1"}, ids(store.ListInstancesParams{Type: "order", IDPrefix: "o\u00e9"}))
	require.Equal(t, []string{"ord-\U0010FFFF"}, ids(store.ListInstancesParams{Type: "order", IDPrefix: "ord-\U0010FFFF"}))
	require.Equal(t, []string{"ord-2"}, ids(store.ListInstancesParams{Type: "order", IDPrefix: "ord-", Status: store.StatusCompleted}))
	require.Equal(t, []string{}, ids(store.ListInstancesParams{Type: "order", IDPrefix: "ord-1x"}))

	// Created at minutes 0…9; the range is [after, before).
	require.Equal(t, []string{"ord-2", "ord_3", "ord%4"},
		ids(store.ListInstancesParams{Type: "order", CreatedAfter: e.at(time.Minute), CreatedBefore: e.at(4 * time.Minute)}))
	require.Equal(t, []string{"o\u00e9-1", "o\u00ea-1"}, ids(store.ListInstancesParams{CreatedAfter: e.at(8 * time.Minute)}))
	require.Equal(t, []string{"ord-1"}, ids(store.ListInstancesParams{IDPrefix: "ord-", CreatedBefore: e.at(time.Minute)}),
		"before is exclusive: ord-2 and invoice ord-9 were created at minute 1")

	// With a creation range the list is in creation order, insertion order among equal
	// times, across pages: late-1 was inserted last but created at minute 2.
	e.mustExec("order", "late-1", step{At: e.at(2 * time.Minute)})
	require.Equal(t, []string{"ord-2", "ord-9", "ord_3", "late-1", "ord%4"},
		ids(store.ListInstancesParams{CreatedAfter: e.at(time.Minute), CreatedBefore: e.at(4 * time.Minute)}))
}

func testCountInstances(t *testing.T, e *env) {
	for i := range 5 {
		e.mustExec("order", "r-"+string(rune('a'+i)), step{At: e.at(time.Duration(i) * time.Minute)})
	}
	e.mustExec("order", "c-1", step{Complete: true, At: e.at(time.Minute)})
	e.mustExec("order", "f-1", step{End: store.StatusFailed, At: e.at(2 * time.Minute)})
	e.mustExec("order", "t-1", step{At: e.at(3 * time.Minute)})
	e.mustExec("order", "t-1", step{End: store.StatusTerminated, At: e.at(time.Hour)})
	e.mustExec("invoice", "i-1", step{At: e.at(time.Minute)})

	count := func(p store.CountInstancesParams) store.InstanceCounts {
		t.Helper()
		if p.Limit == 0 {
			p.Limit = 100
		}
		c, err := e.s.CountInstances(e.ctx, p)
		require.NoError(t, err)
		return c
	}
	require.Equal(t, store.InstanceCounts{Running: 6, Completed: 1, Failed: 1, Terminated: 1}, count(store.CountInstancesParams{}))
	require.Equal(t, store.InstanceCounts{Running: 5, Completed: 1, Failed: 1, Terminated: 1}, count(store.CountInstancesParams{Type: "order"}))
	require.Equal(t, store.InstanceCounts{Running: 2, Completed: 1, Failed: 1},
		count(store.CountInstancesParams{Type: "order", CreatedAfter: e.at(time.Minute), CreatedBefore: e.at(3 * time.Minute)}),
		"created in [after, before), whatever the time they ended")
	require.Equal(t, store.InstanceCounts{Running: 2, Completed: 1, Failed: 1, Terminated: 1},
		count(store.CountInstancesParams{Type: "order", Limit: 2}), "each count stops at the limit")
	require.Equal(t, store.InstanceCounts{}, count(store.CountInstancesParams{Type: "nope"}))
	_, err := e.s.CountInstances(e.ctx, store.CountInstancesParams{})
	require.Error(t, err, "a count needs its limit")
}

// testCancelEffect: an operator discards a pending or dead effect; it is never claimed,
// and a worker holding it records its answer and routes nothing.
func testCancelEffect(t *testing.T, e *env) {
	e.putWebhook("order")
	res := e.mustExec("order", "o-1", step{Effects: []string{"a", "b", "c", "d"}})
	byName := map[string]string{}
	for _, ef := range res.Write.Effects {
		byName[ef.Name] = ef.ID
	}

	// a: pending, never claimed.
	got, err := e.s.CancelEffect(e.ctx, byName["a"], e.at(time.Second))
	require.NoError(t, err)
	require.Equal(t, store.EffectCancelled, got.Status)
	requireTime(t, e.at(time.Second), got.UpdatedAt)
	_, err = e.s.CancelEffect(e.ctx, byName["a"], e.at(time.Second))
	require.ErrorIs(t, err, store.ErrWrongStatus, "cancelled already")
	_, err = e.s.RetryEffect(e.ctx, byName["a"], e.at(time.Second))
	require.ErrorIs(t, err, store.ErrWrongStatus, "a cancelled effect is not retried")

	// The others are claimed: b dies, c is delivered, d is held when it is cancelled.
	require.Len(t, e.claimEffects("w1", e.at(time.Second), 10), 3)
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{EffectID: byName["b"], Worker: "w1",
		Status: store.EffectDead, Now: e.at(2 * time.Second), Attempt: store.Attempt{StartedAt: e.at(time.Second), Error: "refused"}}))
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{EffectID: byName["c"], Worker: "w1",
		Status: store.EffectDelivered, Now: e.at(2 * time.Second), Attempt: store.Attempt{StartedAt: e.at(time.Second), StatusCode: 200}}))
	got, err = e.s.CancelEffect(e.ctx, byName["b"], e.at(3*time.Second))
	require.NoError(t, err)
	require.Equal(t, store.EffectCancelled, got.Status, "a dead effect is discarded")
	_, err = e.s.CancelEffect(e.ctx, byName["c"], e.at(3*time.Second))
	require.ErrorIs(t, err, store.ErrWrongStatus, "delivered")
	_, err = e.s.CancelEffect(e.ctx, "no-such-effect", e.now)
	require.ErrorIs(t, err, store.ErrNotFound)

	_, err = e.s.CancelEffect(e.ctx, byName["d"], e.at(3*time.Second))
	require.NoError(t, err)
	var calls atomic.Int64
	err = e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{EffectID: byName["d"], Worker: "w1",
		Status: store.EffectDelivered, Now: e.at(4 * time.Second),
		Route:   e.routeParams("order", "o-1", byName["d"], step{Input: "done", Calls: &calls, At: e.at(4 * time.Second)}),
		Attempt: store.Attempt{StartedAt: e.at(time.Second), StatusCode: 200, Response: `{"input":{"type":"done"}}`}})
	require.ErrorIs(t, err, store.ErrCancelled)
	require.Zero(t, calls.Load(), "the answer of a discarded effect is never decided")
	eff, attempts, err := e.s.GetEffect(e.ctx, byName["d"])
	require.NoError(t, err)
	require.Equal(t, store.EffectCancelled, eff.Status)
	require.Nil(t, eff.DeliveredAt)
	require.Len(t, attempts, 1, "the late answer is recorded")

	require.Empty(t, e.claimEffects("w2", e.at(time.Hour), 10), "a discarded effect is never claimed")
	st, err := e.s.Stats(e.ctx, e.now)
	require.NoError(t, err)
	require.EqualValues(t, 3, st.CancelledEffects)
	require.Zero(t, st.DeadEffects)
	require.Zero(t, st.PendingEffects)
}

// testCancelDeadTimer: an operator discards a dead timer as it cancels a pending one.
func testCancelDeadTimer(t *testing.T, e *env) {
	tm := e.schedule("order", "o-1", "a", e.at(time.Minute))
	require.Len(t, e.claimTimers("w1", tm.FireAt, 10), 1)
	require.NoError(t, e.s.CompleteTimer(e.ctx, store.CompleteTimerParams{
		TimerID: tm.ID, Worker: "w1", Status: store.TimerDead, Error: "gave up", Now: tm.FireAt,
	}))
	got, err := e.s.CancelTimer(e.ctx, tm.ID, e.at(time.Hour))
	require.NoError(t, err)
	require.Equal(t, store.TimerCancelled, got.Status)
	require.Empty(t, got.LockedBy)
	requireTime(t, e.at(time.Hour), got.UpdatedAt)
	_, err = e.s.CancelTimer(e.ctx, tm.ID, e.at(time.Hour))
	require.ErrorIs(t, err, store.ErrWrongStatus)
	_, err = e.s.RetryTimer(e.ctx, tm.ID, e.at(time.Hour))
	require.ErrorIs(t, err, store.ErrWrongStatus, "a discarded timer is not retried")
	require.Empty(t, e.claimTimers("w1", e.at(2*time.Hour), 10))
	st, err := e.s.Stats(e.ctx, e.now)
	require.NoError(t, err)
	require.Zero(t, st.DeadTimers)
}

// testListInstancesByPrefixPages: a list with an id prefix pages in rid order from any
// cursor, one taken inside the prefix's rows or past the last of them (ids given in
// order lie in one stretch of rids, as o-0000000042 does), with and without a type and
// with a status: each page holds the matching instances after the cursor, oldest first.
func testListInstancesByPrefixPages(t *testing.T, e *env) {
	type row struct{ typ, id string }
	var rows []row
	add := func(typ, id string, s step) {
		e.mustExec(typ, id, s)
		rows = append(rows, row{typ, id})
	}
	for i := range 6 {
		add("order", fmt.Sprintf("p-%02d", i), step{})
		if i%2 == 0 {
			add("invoice", fmt.Sprintf("p-%02d", i), step{})
		}
	}
	for i := range 6 {
		add("order", fmt.Sprintf("q-%02d", i), step{})
	}
	add("invoice", "p-99", step{}) // one more of the prefix, long after the rest
	for i := range 4 {
		add("order", fmt.Sprintf("r-%02d", i), step{})
	}
	e.mustExec("order", "p-03", step{To: "done", Complete: true}) // an update does not move it

	// after[k] is the cursor after the k-th instance of the list of all instances.
	after := []string{""}
	for c := ""; ; {
		page, err := e.s.ListInstances(e.ctx, store.ListInstancesParams{Cursor: c, Limit: 1})
		require.NoError(t, err)
		if page.Next == "" {
			break
		}
		require.Equal(t, rows[len(after)-1].id, page.Items[0].ID)
		after, c = append(after, page.Next), page.Next
	}
	require.Len(t, after, len(rows))

	for _, p := range []store.ListInstancesParams{
		{IDPrefix: "p-"}, {Type: "order", IDPrefix: "p-"}, {Type: "invoice", IDPrefix: "p-"},
		{IDPrefix: "p-0"}, {IDPrefix: "q-0"}, {IDPrefix: "p-", Status: store.StatusRunning},
		{Type: "order", IDPrefix: "p-", Status: store.StatusCompleted}, {IDPrefix: "z"},
	} {
		for k, cursor := range after {
			want := []string{}
			for _, r := range rows[k:] {
				if strings.HasPrefix(r.id, p.IDPrefix) && (p.Type == "" || p.Type == r.typ) &&
					(p.Status == "" || (p.Status == store.StatusCompleted) == (r == row{"order", "p-03"})) {
					want = append(want, r.typ+"/"+r.id)
				}
			}
			got := []string{}
			items, _ := collect(t, func(c string) (store.Page[store.Instance], error) {
				q := p
				q.Cursor, q.Limit = c, 2
				if c == "" {
					q.Cursor = cursor
				}
				return e.s.ListInstances(e.ctx, q)
			})
			for _, in := range items {
				got = append(got, in.Type+"/"+in.ID)
			}
			require.Equal(t, want, got, "%+v after the %d-th instance", p, k)
		}
	}
}
