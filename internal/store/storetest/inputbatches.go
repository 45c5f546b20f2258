package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// inputBatcher is a store whose batches of inputs can be run directly: the batch path of
// Execute, and one window of the batcher that feeds it.
type inputBatcher interface {
	ExecuteBatch(ctx context.Context, ps []store.ExecuteParams) ([]store.ExecuteResult, []error, error)
	ExecuteWindow(ctx context.Context, ps []store.ExecuteParams) ([]store.ExecuteResult, []error)
}

// testInputBatches checks that inputs sharing a transaction are each decided, answered
// and refused as they would be alone: a member that fails (version mismatch,
// idempotency mismatch, a Decide error) writes nothing and leaves the others written,
// a replay answers inside a batch, CommittedFunc runs for what committed only.
func testInputBatches(t *testing.T, e *env) {
	b, ok := e.s.(inputBatcher)
	require.True(t, ok, "the store runs its batches of inputs directly")
	e.mustExec("order", "o-old", step{})
	first := e.mustExec("order", "o-replay", step{Key: "k1", Hash: "h1"})
	e.mustExec("order", "o-mismatch", step{Key: "k2", Hash: "h1"})

	var committed sync.Map
	withCommit := func(p store.ExecuteParams) store.ExecuteParams {
		p.CommittedFunc = func(w *store.Write) { committed.Store(p.WorkflowID, w.Input.ID) }
		return p
	}
	var replayCalls atomic.Int64
	failing := e.params("order", "o-fail", step{})
	failing.Decide = func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
		return nil, fmt.Errorf("wrapped: %w", errDecide)
	}
	ps := []store.ExecuteParams{
		withCommit(e.params("order", "o-new", step{Effects: []string{"x"}})),
		withCommit(e.params("order", "o-old", step{Expected: ptr[int64](1), Data: `{"n":2}`})),
		withCommit(e.params("order", "o-version", step{Expected: ptr[int64](3)})),
		withCommit(e.params("order", "o-replay", step{Key: "k1", Hash: "h1", Calls: &replayCalls})),
		withCommit(e.params("order", "o-mismatch", step{Key: "k2", Hash: "h2"})),
		withCommit(failing),
		withCommit(e.params("order", "o-rejected", step{Reject: "no"})),
	}
	res, errs, err := b.ExecuteBatch(e.ctx, ps)
	require.NoError(t, err)
	require.Len(t, errs, len(ps))

	require.NoError(t, errs[0])
	require.Equal(t, store.OutcomeAccepted, res[0].Input.Outcome)
	require.EqualValues(t, 1, e.instance("order", "o-new").Version)
	require.Len(t, e.effects("order", "o-new"), 1)

	require.NoError(t, errs[1])
	require.EqualValues(t, 2, res[1].Input.Version)
	require.EqualValues(t, 2, e.instance("order", "o-old").Version)
	require.JSONEq(t, `{"n":2}`, string(e.instance("order", "o-old").StateData))

	require.ErrorIs(t, errs[2], store.ErrVersionMismatch)
	_, err = e.s.GetInstance(e.ctx, "order", "o-version")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Empty(t, e.inputs("order", "o-version"))

	require.NoError(t, errs[3])
	require.True(t, res[3].Replayed)
	require.Nil(t, res[3].Write)
	require.Equal(t, first.Input.ID, res[3].Input.ID)
	require.Zero(t, replayCalls.Load(), "a replay decides nothing")
	require.Len(t, e.inputs("order", "o-replay"), 1)

	require.ErrorIs(t, errs[4], store.ErrIdempotencyMismatch)
	require.Len(t, e.inputs("order", "o-mismatch"), 1)

	require.ErrorIs(t, errs[5], errDecide)
	require.Empty(t, e.inputs("order", "o-fail"))

	require.NoError(t, errs[6])
	require.Equal(t, store.OutcomeRejected, res[6].Input.Outcome)
	require.Len(t, e.inputs("order", "o-rejected"), 1)
	_, err = e.s.GetInstance(e.ctx, "order", "o-rejected")
	require.ErrorIs(t, err, store.ErrNotFound)

	for _, id := range []string{"o-new", "o-old", "o-rejected"} {
		_, ok := committed.Load(id)
		require.True(t, ok, "CommittedFunc of %s", id)
	}
	for _, id := range []string{"o-version", "o-replay", "o-mismatch", "o-fail"} {
		_, ok := committed.Load(id)
		require.False(t, ok, "no CommittedFunc for %s", id)
	}

	// Two inputs of one instance never share a batch: the batch refuses them, and a
	// window records them one after the other.
	_, _, err = b.ExecuteBatch(e.ctx, []store.ExecuteParams{e.params("order", "o-twice", step{}), e.params("order", "o-twice", step{})})
	require.Error(t, err)
	_, err = e.s.GetInstance(e.ctx, "order", "o-twice")
	require.ErrorIs(t, err, store.ErrNotFound)
	res, errs = b.ExecuteWindow(e.ctx, []store.ExecuteParams{
		e.params("order", "o-twice", step{}), e.params("order", "o-twice", step{}), e.params("order", "o-other", step{}),
	})
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.NoError(t, errs[2])
	require.ElementsMatch(t, []int64{1, 2}, []int64{res[0].Input.Version, res[1].Input.Version})
	require.EqualValues(t, 2, e.instance("order", "o-twice").Version)
	require.Len(t, e.events("order", "o-twice"), 2)
	require.EqualValues(t, 1, e.instance("order", "o-other").Version)

	// A member that fails the whole transaction (a unique key taken by another member)
	// sends every member to its own transaction: the others are written, it alone is
	// refused.
	e.mustExec("order", "o-holder", step{UniqueKey: "ref-1"})
	res, errs = b.ExecuteWindow(e.ctx, []store.ExecuteParams{
		e.params("order", "o-a", step{}),
		e.params("order", "o-taken", step{UniqueKey: "ref-1"}),
		e.params("order", "o-b", step{UniqueKey: "ref-2"}),
	})
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], store.ErrUniqueKeyConflict)
	require.NoError(t, errs[2])
	require.EqualValues(t, 1, res[0].Input.Version)
	require.EqualValues(t, 1, e.instance("order", "o-a").Version)
	require.EqualValues(t, 1, e.instance("order", "o-b").Version)
	_, err = e.s.GetInstance(e.ctx, "order", "o-taken")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Empty(t, e.inputs("order", "o-taken"))
}

// testConcurrentInputsBatched sends many concurrent inputs through Execute, some to the
// same instances, some failing: every caller gets its own answer, and each instance's
// history is gapless.
func testConcurrentInputsBatched(t *testing.T, e *env) {
	const instances, perInstance = 24, 3
	var wg sync.WaitGroup
	errs := make([][]error, instances)
	for i := range instances {
		errs[i] = make([]error, perInstance+1)
		id := fmt.Sprintf("o-%d", i)
		for j := range perInstance {
			wg.Go(func() {
				_, errs[i][j] = e.exec("order", id, step{Data: fmt.Sprintf(`{"n%d":%d}`, j, j)})
			})
		}
		wg.Go(func() {
			_, errs[i][perInstance] = e.exec("order", id, step{Expected: ptr[int64](99)})
		})
	}
	wg.Wait()
	for i := range instances {
		id := fmt.Sprintf("o-%d", i)
		for j := range perInstance {
			require.NoError(t, errs[i][j], "%s input %d", id, j)
		}
		require.ErrorIs(t, errs[i][perInstance], store.ErrVersionMismatch)
		require.EqualValues(t, perInstance, e.instance("order", id).Version)
		evs := e.events("order", id)
		require.Len(t, evs, perInstance)
		for k, ev := range evs {
			require.EqualValues(t, k+1, ev.Seq)
		}
		require.Len(t, e.inputs("order", id), perInstance)
	}
}
