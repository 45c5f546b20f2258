package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// testPrune: Prune forgets delivered effects with their attempts, fired and cancelled
// timers, and the inputs of instances completed before the cutoff (and of rejected
// first inputs), in batches; everything else — instances, events, pending and dead
// effects, running instances' inputs, newer rows — stays.
func testPrune(t *testing.T, e *env) {
	old := e.at(-40 * 24 * time.Hour)
	cutoff := e.at(-30 * 24 * time.Hour)
	e.putWebhook("order")

	// done-old: completed 40 days ago, with a delivered effect and a cancelled timer.
	res := e.mustExec("order", "done-old", step{At: old, Effects: []string{"a"},
		Timers: []store.Timer{{Key: "t1", FireAt: old.Add(time.Hour)}}})
	delivered := res.Write.Effects[0].ID
	e.mustExec("order", "done-old", step{At: old.Add(time.Minute), Complete: true, To: "done", Cancel: []string{"t1"}})

	// run-old: still running, with a pending and a dead effect, and a fired timer.
	res = e.mustExec("order", "run-old", step{At: old, Effects: []string{"b", "c"},
		Timers: []store.Timer{{Key: "t2", FireAt: old.Add(time.Hour)}}})
	pending, dead := res.Write.Effects[0].ID, res.Write.Effects[1].ID

	claimed := e.claimEffects("w1", old.Add(2*time.Minute), 10)
	require.Len(t, claimed, 3)
	for _, eff := range claimed {
		p := store.CompleteEffectParams{EffectID: eff.ID, Worker: "w1", Now: old.Add(3 * time.Minute),
			Attempt: store.Attempt{StartedAt: old.Add(2 * time.Minute), StatusCode: 200}}
		switch eff.ID {
		case delivered:
			p.Status = store.EffectDelivered
		case pending:
			p.Status, p.NextAttemptAt, p.Attempt.StatusCode = store.EffectPending, e.at(time.Hour), 503
		case dead:
			p.Status, p.Attempt.StatusCode = store.EffectDead, 500
		}
		require.NoError(t, e.s.CompleteEffect(e.ctx, p))
	}
	timers := e.claimTimers("w1", old.Add(time.Hour), 10)
	require.Len(t, timers, 1)
	require.NoError(t, e.s.CompleteTimer(e.ctx, store.CompleteTimerParams{
		TimerID: timers[0].ID, Worker: "w1", Status: store.TimerFired, Now: old.Add(time.Hour)}))

	// A rejected first input 40 days ago left only its input record.
	e.mustExec("order", "ghost", step{At: old, Reject: "no"})
	// done-new: completed just now; its inputs stay.
	e.mustExec("order", "done-new", step{Complete: true, To: "done", Effects: []string{"d"}})

	eventsBefore := len(e.events("order", "done-old"))

	// Batches of one: every call deletes at most one row of each kind.
	var total int64
	calls := 0
	for {
		n, err := e.s.Prune(e.ctx, cutoff, 1)
		require.NoError(t, err)
		require.LessOrEqual(t, n, int64(4), "a batch of 1 deletes at most one row of each kind")
		calls++
		if n == 0 {
			break
		}
		total += n
		require.Less(t, calls, 20, "Prune does not converge")
	}
	// effect a, timers t1 and t2, done-old's two inputs, ghost's input.
	require.EqualValues(t, 6, total)
	require.Greater(t, calls, 2, "pruning took more than one batch")

	_, _, err := e.s.GetEffect(e.ctx, delivered)
	require.True(t, errors.Is(err, store.ErrNotFound), "delivered effect pruned: %v", err)
	for _, id := range []string{pending, dead} {
		_, _, err := e.s.GetEffect(e.ctx, id)
		require.NoError(t, err, "pending and dead effects stay")
	}
	require.Empty(t, e.timers("order", "done-old", ""), "cancelled timer pruned")
	require.Empty(t, e.timers("order", "run-old", ""), "fired timer pruned")
	require.Empty(t, e.inputs("order", "done-old"), "completed instance's inputs pruned")
	require.Empty(t, e.inputs("order", "ghost"), "rejected first input pruned")
	require.Len(t, e.inputs("order", "run-old"), 1, "running instance's inputs stay")
	require.Len(t, e.inputs("order", "done-new"), 1, "recently completed instance's inputs stay")
	require.Len(t, e.effects("order", "done-new"), 1, "recent effects stay")
	require.Len(t, e.events("order", "done-old"), eventsBefore, "events are never pruned")
	inst := e.instance("order", "done-old")
	require.Equal(t, store.StatusCompleted, inst.Status, "instances are never pruned")

	// A pass ends with the call that prunes nothing; the next one, even with the same
	// cutoff, reads from the oldest rows again. run-old completes (35 days ago): its old
	// input, passed over while it ran, goes now, and the new completing input with it.
	e.mustExec("order", "run-old", step{At: old.Add(5 * 24 * time.Hour), Complete: true, To: "done"})
	for calls = 0; ; calls++ {
		n, err := e.s.Prune(e.ctx, cutoff, 1)
		require.NoError(t, err)
		if n == 0 {
			break
		}
		require.Less(t, calls, 20, "Prune does not converge")
	}
	require.Empty(t, e.inputs("order", "run-old"), "inputs of an instance completed since the last pass pruned")

	// A zero batch deletes nothing, although by an hour on done-new's inputs are due.
	n, err := e.s.Prune(e.ctx, e.at(time.Hour), 0)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, e.inputs("order", "done-new"), 1, "a zero batch prunes nothing")
}

// testPrunePassResumes: a pass of pruning (the calls with one cutoff, until one prunes
// nothing) resumes each batch after the last input the previous one deleted, so it
// does not read again the old inputs of running instances it has passed over
// (docs/decisions/0024-data-growth.md). An instance that completes during the pass has
// its inputs from behind that position pruned by the next pass.
func testPrunePassResumes(t *testing.T, e *env) {
	old := e.at(-40 * 24 * time.Hour)
	cutoff := e.at(-30 * 24 * time.Hour)
	e.mustExec("order", "running", step{At: old})
	e.mustExec("order", "done-1", step{At: old.Add(time.Minute)})
	e.mustExec("order", "done-1", step{At: old.Add(2 * time.Minute), Complete: true, To: "done"})
	e.mustExec("order", "done-2", step{At: old.Add(3 * time.Minute), Complete: true, To: "done"})

	n, err := e.s.Prune(e.ctx, cutoff, 1)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "done-1's first input, after running's, which stays")
	require.Len(t, e.inputs("order", "running"), 1)
	require.Len(t, e.inputs("order", "done-1"), 1)

	// running completes, still before the cutoff: its completing input lies ahead of
	// the pass, its first input behind it.
	e.mustExec("order", "running", step{At: old.Add(4 * time.Minute), Complete: true, To: "done"})
	prunePass := func() (total int64) {
		for calls := 0; ; calls++ {
			n, err := e.s.Prune(e.ctx, cutoff, 1)
			require.NoError(t, err)
			if n == 0 {
				return total
			}
			total += n
			require.Less(t, calls, 20, "Prune does not converge")
		}
	}
	require.EqualValues(t, 3, prunePass(), "done-1's second input, done-2's, running's completing one")
	require.Empty(t, e.inputs("order", "done-1"))
	require.Empty(t, e.inputs("order", "done-2"))
	require.Len(t, e.inputs("order", "running"), 1, "the input the pass had passed over waits for the next pass")

	require.EqualValues(t, 1, prunePass(), "the next pass starts from the oldest input")
	require.Empty(t, e.inputs("order", "running"))
}

// PruneTakesAttempts: Prune deletes a delivered effect's attempts with it, which the
// conformance suite cannot see (a pruned effect's attempts are unreachable through the
// Store); attempts counts the backend's attempt rows.
func PruneTakesAttempts(t *testing.T, s store.Store, attempts func() int) {
	ctx := context.Background()
	old := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Microsecond)
	res, err := s.Execute(ctx, store.ExecuteParams{WorkflowType: "t", WorkflowID: "i",
		Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
			return &store.Write{
				Instance: &store.Instance{DefinitionVersion: 1, StateName: "s", StateData: json.RawMessage(`{}`)},
				Events:   []store.Event{{Type: "E", To: "s"}},
				Effects:  []store.Effect{{Name: "e", CreatedAt: old}},
				Input:    store.InputRecord{Type: "go", Outcome: store.OutcomeAccepted, CreatedAt: old},
			}, nil
		}})
	require.NoError(t, err)
	PutWebhook(t, s, "t", old)
	c, err := s.ClaimEffects(ctx, store.ClaimParams{Worker: "w", Limit: 1, Now: old, LeaseExpiry: old.Add(time.Minute)})
	require.NoError(t, err)
	require.Len(t, c.Effects, 1)
	require.NoError(t, s.CompleteEffect(ctx, store.CompleteEffectParams{EffectID: res.Write.Effects[0].ID, Worker: "w",
		Status: store.EffectDelivered, Now: old, Attempt: store.Attempt{StartedAt: old, StatusCode: 200}}))
	require.Equal(t, 1, attempts())

	n, err := s.Prune(ctx, time.Now(), 100)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the delivered effect")
	require.Zero(t, attempts(), "its attempt went with it")
}
