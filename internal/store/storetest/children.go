package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// sendTo is the policy of a send effect to typ/id; child links what it creates.
func sendTo(typ, id string, child store.ChildLink) store.Effect {
	return store.Effect{SendType: typ, SendID: id, SendChild: child}
}

var chunkLink = store.ChildLink{OnCompleted: "chunk_done", OnFailed: "chunk_failed", OnParentEnd: store.ParentEndTerminate}

// testSendKeptAndClaimed: a send effect keeps its target and child link, and is claimed
// with no webhook endpoint for its type, while a webhook effect beside it waits for one.
func testSendKeptAndClaimed(t *testing.T, e *env) {
	res := e.mustExec("batch", "b-1", step{Effects: []string{"start", "notify"},
		Policies: map[string]store.Effect{"start": sendTo("chunk", "b-1/0", chunkLink)}})
	sendID := res.Write.Effects[0].ID

	eff, _, err := e.s.GetEffect(e.ctx, sendID)
	require.NoError(t, err)
	require.Equal(t, "chunk", eff.SendType)
	require.Equal(t, "b-1/0", eff.SendID)
	require.Equal(t, chunkLink, eff.SendChild)
	plain := e.effects("batch", "b-1")[1]
	require.Equal(t, "notify", plain.Name)
	require.Empty(t, plain.SendType+plain.SendID)
	require.Zero(t, plain.SendChild)

	claimed := e.claimEffects("w1", e.now, 10)
	require.Len(t, claimed, 1, "a send needs no endpoint; the webhook effect does")
	require.Equal(t, sendID, claimed[0].ID)
	require.Equal(t, chunkLink, claimed[0].SendChild)
	require.Empty(t, e.claimEffects("w2", e.now, 10), "the send is leased")

	e.putWebhook("batch")
	claimed = e.claimEffects("w2", e.now, 10)
	require.Len(t, claimed, 1)
	require.Equal(t, "notify", claimed[0].Name)
}

// testSendRouteCreatesChild: the route of a send's completion executes on another
// instance than the effect's, creating it with its parent and link, alone and in a batch
// of completions; the link survives later writes of the child.
func testSendRouteCreatesChild(t *testing.T, e *env) {
	policies := map[string]store.Effect{}
	names := []string{"s0", "s1", "s2"}
	for i, n := range names {
		policies[n] = sendTo("chunk", "b-1/"+string(rune('0'+i)), chunkLink)
	}
	res := e.mustExec("batch", "b-1", step{Effects: names, Policies: policies})
	require.Len(t, e.claimEffects("w1", e.now, 10), 3)
	parent := store.Instance{ParentType: "batch", ParentID: "b-1", Link: chunkLink}
	complete := func(ef store.Effect) store.CompleteEffectParams {
		return store.CompleteEffectParams{EffectID: ef.ID, Worker: "w1", Status: store.EffectDelivered, Now: e.at(time.Second),
			Route: e.routeParams("chunk", ef.SendID, ef.ID, step{Input: "start", To: "working", Parent: parent, At: e.at(time.Second)})}
	}
	// One alone, two together.
	require.NoError(t, e.s.CompleteEffect(e.ctx, complete(res.Write.Effects[0])))
	for i, err := range e.s.CompleteEffects(e.ctx, []store.CompleteEffectParams{complete(res.Write.Effects[1]), complete(res.Write.Effects[2])}) {
		require.NoError(t, err, i)
	}
	for i, ef := range res.Write.Effects {
		child := e.instance("chunk", ef.SendID)
		require.Equal(t, "working", child.StateName, i)
		require.Equal(t, "batch", child.ParentType)
		require.Equal(t, "b-1", child.ParentID)
		require.Equal(t, chunkLink, child.Link)
		ins := e.inputs("chunk", ef.SendID)
		require.Len(t, ins, 1)
		require.Equal(t, ef.ID, ins[0].IdempotencyKey)
		got, attempts, err := e.s.GetEffect(e.ctx, ef.ID)
		require.NoError(t, err)
		require.Equal(t, store.EffectDelivered, got.Status)
		require.Equal(t, store.OutcomeAccepted, attempts[0].RoutedOutcome)
		require.EqualValues(t, 1, e.instance("batch", "b-1").Version, "the sender is not written")
	}
	e.mustExec("chunk", "b-1/0", step{Input: "finish", Complete: true})
	child := e.instance("chunk", "b-1/0")
	require.Equal(t, store.StatusCompleted, child.Status)
	require.Equal(t, "b-1", child.ParentID, "kept by later writes")
	require.Equal(t, chunkLink, child.Link)
	require.Empty(t, e.instance("batch", "b-1").ParentType)
}

// testListChildren: the children of a parent are listed by parent, with the status and
// on_parent_end filters, and paged.
func testListChildren(t *testing.T, e *env) {
	abandon := chunkLink
	abandon.OnParentEnd = store.ParentEndAbandon
	for i, c := range []struct {
		parent string
		link   store.ChildLink
		done   bool
	}{{"b-1", chunkLink, false}, {"b-2", chunkLink, false}, {"b-1", abandon, false}, {"b-1", chunkLink, true}, {"b-1", chunkLink, false}} {
		id := "c-" + string(rune('0'+i))
		e.mustExec("chunk", id, step{Parent: store.Instance{ParentType: "batch", ParentID: c.parent, Link: c.link}})
		if c.done {
			e.mustExec("chunk", id, step{Complete: true})
		}
	}
	e.mustExec("chunk", "orphan", step{})
	ids := func(p store.ListInstancesParams) []string {
		var out []string
		for {
			page, err := e.s.ListInstances(e.ctx, p)
			require.NoError(t, err)
			for _, in := range page.Items {
				out = append(out, in.ID)
			}
			if page.Next == "" {
				return out
			}
			p.Cursor = page.Next
		}
	}
	b1 := store.ListInstancesParams{ParentType: "batch", ParentID: "b-1", Limit: 2}
	require.Equal(t, []string{"c-0", "c-2", "c-3", "c-4"}, ids(b1))
	b1.Status = store.StatusRunning
	require.Equal(t, []string{"c-0", "c-2", "c-4"}, ids(b1))
	b1.OnParentEnd = store.ParentEndTerminate
	require.Equal(t, []string{"c-0", "c-4"}, ids(b1))
	require.Equal(t, []string{"c-1"}, ids(store.ListInstancesParams{ParentType: "batch", ParentID: "b-2"}))
	require.Empty(t, ids(store.ListInstancesParams{ParentType: "batch", ParentID: "b-3"}))
	require.Empty(t, ids(store.ListInstancesParams{ParentType: "chunk", ParentID: "b-1"}))
	require.Len(t, ids(store.ListInstancesParams{Type: "chunk"}), 6)
}

// testCancelEnding: an ending write with CancelEnding cancels the instance's pending
// state-scoped effects and its sends of children that end with it, and nothing else;
// its own effects stay pending.
func testCancelEnding(t *testing.T, e *env) {
	abandon := chunkLink
	abandon.OnParentEnd = store.ParentEndAbandon
	res := e.mustExec("batch", "b-1", step{Effects: []string{"child", "free", "plain", "scoped", "other"},
		Policies: map[string]store.Effect{"child": sendTo("chunk", "c-1", chunkLink), "free": sendTo("chunk", "c-2", abandon),
			"scoped": {StateScoped: true}, "other": sendTo("batch", "b-2", store.ChildLink{})}})
	end := e.mustExec("batch", "b-1", step{Complete: true, CancelEffects: store.CancelEnding, Effects: []string{"own"},
		Policies: map[string]store.Effect{"own": sendTo("batch", "b-1", store.ChildLink{})}, At: e.at(time.Second)})
	want := map[string]string{"child": store.EffectCancelled, "free": store.EffectPending, "plain": store.EffectPending,
		"scoped": store.EffectCancelled, "other": store.EffectPending, "own": store.EffectPending}
	effs := e.effects("batch", "b-1")
	require.Len(t, effs, len(res.Write.Effects)+len(end.Write.Effects))
	for _, ef := range effs {
		require.Equal(t, want[ef.Name], ef.Status, ef.Name)
	}
}
