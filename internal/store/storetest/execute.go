package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

func testDefinitions(t *testing.T, e *env) {
	put := func(typ, body string) (store.Definition, bool) {
		t.Helper()
		sum := sha256.Sum256([]byte(body))
		d, created, err := e.s.PutDefinition(e.ctx, typ, json.RawMessage(body), hex.EncodeToString(sum[:]), e.now)
		require.NoError(t, err)
		return d, created
	}
	_, err := e.s.GetDefinition(e.ctx, "order", 0)
	require.ErrorIs(t, err, store.ErrNotFound)

	d1, created := put("order", `{"initial_state":"new"}`)
	require.True(t, created)
	require.Equal(t, 1, d1.Version)
	require.Equal(t, "order", d1.Type)
	requireTime(t, e.now, d1.CreatedAt)

	again, created := put("order", `{"initial_state":"new"}`)
	require.False(t, created, "an identical body makes no new version")
	require.Equal(t, 1, again.Version)

	d2, created := put("order", `{"initial_state":"start"}`)
	require.True(t, created)
	require.Equal(t, 2, d2.Version)
	put("invoice", `{"initial_state":"draft"}`)

	latest, err := e.s.GetDefinition(e.ctx, "order", 0)
	require.NoError(t, err)
	require.Equal(t, 2, latest.Version)
	require.JSONEq(t, `{"initial_state":"start"}`, string(latest.Body))
	require.Equal(t, d2.Hash, latest.Hash)

	v1, err := e.s.GetDefinition(e.ctx, "order", 1)
	require.NoError(t, err)
	require.JSONEq(t, `{"initial_state":"new"}`, string(v1.Body))

	_, err = e.s.GetDefinition(e.ctx, "order", 3)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.s.GetDefinition(e.ctx, "nope", 1)
	require.ErrorIs(t, err, store.ErrNotFound)

	versions, err := e.s.ListDefinitionVersions(e.ctx, "order", 0, 10)
	require.NoError(t, err)
	require.Len(t, versions, 2)
	require.Equal(t, 1, versions[0].Version)
	require.Equal(t, 2, versions[1].Version)
	versions, err = e.s.ListDefinitionVersions(e.ctx, "order", 0, 1)
	require.NoError(t, err)
	require.Len(t, versions, 1, "limit")
	require.Equal(t, 1, versions[0].Version)
	versions, err = e.s.ListDefinitionVersions(e.ctx, "order", 1, 10)
	require.NoError(t, err)
	require.Len(t, versions, 1, "after")
	require.Equal(t, 2, versions[0].Version)

	all, err := e.s.ListDefinitions(e.ctx, "", 10)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "invoice", all[0].Type)
	require.Equal(t, 1, all[0].Version)
	require.Equal(t, "order", all[1].Type)
	require.Equal(t, 2, all[1].Version)
	all, err = e.s.ListDefinitions(e.ctx, "", 1)
	require.NoError(t, err)
	require.Len(t, all, 1, "limit")
	require.Equal(t, "invoice", all[0].Type)
	all, err = e.s.ListDefinitions(e.ctx, "invoice", 10)
	require.NoError(t, err)
	require.Len(t, all, 1, "after")
	require.Equal(t, "order", all[0].Type)
	require.Equal(t, 2, all[0].Version)
}

func testExecuteAppendAndLoad(t *testing.T, e *env) {
	_, err := e.s.GetInstance(e.ctx, "order", "o-1")
	require.ErrorIs(t, err, store.ErrNotFound)

	res := e.mustExec("order", "o-1", step{Input: "place", Data: `{"total":40}`, To: "awaiting_payment"})
	require.False(t, res.Replayed)
	require.NotNil(t, res.Write)
	require.Equal(t, store.OutcomeAccepted, res.Input.Outcome)
	require.EqualValues(t, 1, res.Input.Version)

	inst := e.instance("order", "o-1")
	require.Equal(t, "order", inst.Type)
	require.Equal(t, "o-1", inst.ID)
	require.Equal(t, 1, inst.DefinitionVersion)
	require.Equal(t, "awaiting_payment", inst.StateName)
	require.JSONEq(t, `{"total":40}`, string(inst.StateData))
	require.Equal(t, store.StatusRunning, inst.Status)
	require.EqualValues(t, 1, inst.Version)
	requireTime(t, e.now, inst.CreatedAt)
	requireTime(t, e.now, inst.UpdatedAt)
	require.Nil(t, inst.CompletedAt)

	later := e.at(time.Minute)
	e.mustExec("order", "o-1", step{Input: "pay", Data: `{"paid":true}`, To: "paid", At: later})
	inst = e.instance("order", "o-1")
	require.EqualValues(t, 2, inst.Version)
	require.Equal(t, "paid", inst.StateName)
	require.JSONEq(t, `{"total":40,"paid":true}`, string(inst.StateData))
	requireTime(t, e.now, inst.CreatedAt)
	requireTime(t, later, inst.UpdatedAt)

	evs := e.events("order", "o-1")
	require.Len(t, evs, 2)
	require.Equal(t, store.Event{
		WorkflowType: "order", WorkflowID: "o-1", Seq: 1, Type: "E_place", From: initialState,
		To: "awaiting_payment", InputType: "place", InputID: res.Input.ID,
	}, withoutDataAndTime(evs[0]))
	require.JSONEq(t, `{"total":40}`, string(evs[0].Data))
	requireTime(t, e.now, evs[0].RecordedAt)
	require.Equal(t, "paid", evs[1].To)
	require.Equal(t, "awaiting_payment", evs[1].From)

	ins := e.inputs("order", "o-1")
	require.Len(t, ins, 2)
	require.Equal(t, res.Input.ID, ins[0].ID)
	require.Equal(t, "place", ins[0].Type)
	require.Equal(t, store.SourceAPI, ins[0].Source)
	require.Equal(t, store.OutcomeAccepted, ins[0].Outcome)
	require.EqualValues(t, 1, ins[0].Version)
	require.JSONEq(t, `{"total":40}`, string(ins[0].Data))
	require.JSONEq(t, `{"outcome":"accepted"}`, string(ins[0].Response))
	requireTime(t, e.now, ins[0].CreatedAt)
	require.EqualValues(t, 2, ins[1].Version)

	// Another type with the same id is another instance.
	e.mustExec("invoice", "o-1", step{})
	require.EqualValues(t, 2, e.instance("order", "o-1").Version)
	require.EqualValues(t, 1, e.instance("invoice", "o-1").Version)
}

func withoutDataAndTime(ev store.Event) store.Event {
	ev.Data = nil
	ev.RecordedAt = time.Time{}
	return ev
}

func testGaplessSeq(t *testing.T, e *env) {
	for i := range 10 {
		e.mustExec("order", "o-1", step{Data: fmt.Sprintf(`{"n":%d}`, i)})
	}
	evs := e.events("order", "o-1")
	require.Len(t, evs, 10)
	for i, ev := range evs {
		require.EqualValues(t, i+1, ev.Seq)
	}
	after, err := e.s.ListEvents(e.ctx, "order", "o-1", 7, 2)
	require.NoError(t, err)
	require.Len(t, after, 2)
	require.EqualValues(t, 8, after[0].Seq)
	require.EqualValues(t, 9, after[1].Seq)
	none, err := e.s.ListEvents(e.ctx, "order", "o-1", 10, 10)
	require.NoError(t, err)
	require.Empty(t, none)
	require.EqualValues(t, 10, e.instance("order", "o-1").Version)
}

func testRejectedFirstInput(t *testing.T, e *env) {
	res := e.mustExec("order", "o-1", step{Input: "pay", Reject: "input 'pay' is not accepted in state 'new'"})
	require.Equal(t, store.OutcomeRejected, res.Input.Outcome)
	require.Nil(t, res.Write.Instance)

	_, err := e.s.GetInstance(e.ctx, "order", "o-1")
	require.ErrorIs(t, err, store.ErrNotFound, "a rejected first input leaves no instance")
	require.Empty(t, e.events("order", "o-1"))
	ins := e.inputs("order", "o-1")
	require.Len(t, ins, 1)
	require.Equal(t, store.OutcomeRejected, ins[0].Outcome)
	require.Equal(t, "input 'pay' is not accepted in state 'new'", ins[0].Reason)
	require.EqualValues(t, 0, ins[0].Version)

	// A rejection on an existing instance changes nothing but is recorded.
	e.mustExec("order", "o-1", step{Input: "place", At: e.at(time.Second)})
	e.mustExec("order", "o-1", step{Input: "place", Reject: "no", At: e.at(2 * time.Second)})
	require.EqualValues(t, 1, e.instance("order", "o-1").Version)
	ins = e.inputs("order", "o-1")
	require.Len(t, ins, 3)
	require.EqualValues(t, 1, ins[2].Version)
}

func testAlreadyCompleted(t *testing.T, e *env) {
	e.mustExec("order", "o-1", step{Input: "place"})
	done := e.at(time.Minute)
	e.mustExec("order", "o-1", step{Input: "ship", To: "done", Complete: true, At: done})
	inst := e.instance("order", "o-1")
	require.Equal(t, store.StatusCompleted, inst.Status)
	require.NotNil(t, inst.CompletedAt)
	requireTime(t, done, *inst.CompletedAt)

	res := e.mustExec("order", "o-1", step{Input: "pay", At: e.at(time.Hour)})
	require.Equal(t, store.OutcomeAlreadyCompleted, res.Input.Outcome)
	after := e.instance("order", "o-1")
	require.EqualValues(t, 2, after.Version)
	requireTime(t, done, after.UpdatedAt)
	require.Len(t, e.events("order", "o-1"), 2)
	ins := e.inputs("order", "o-1")
	require.Len(t, ins, 3)
	require.Equal(t, store.OutcomeAlreadyCompleted, ins[2].Outcome)
}

func testIdempotency(t *testing.T, e *env) {
	var calls atomic.Int64
	first := e.mustExec("order", "o-1", step{Input: "place", Key: "k1", Hash: "h1", Calls: &calls})
	require.False(t, first.Replayed)

	again := e.mustExec("order", "o-1", step{Input: "place", Key: "k1", Hash: "h1", Calls: &calls})
	require.True(t, again.Replayed)
	require.Nil(t, again.Write)
	require.EqualValues(t, 1, calls.Load(), "a replay decides nothing")
	require.Equal(t, first.Input.ID, again.Input.ID)
	require.Equal(t, first.Input.Outcome, again.Input.Outcome)
	require.Equal(t, first.Input.Version, again.Input.Version)
	require.Equal(t, "k1", again.Input.IdempotencyKey)
	require.Equal(t, "h1", again.Input.RequestHash)
	require.JSONEq(t, string(first.Input.Response), string(again.Input.Response))
	requireTime(t, first.Input.CreatedAt, again.Input.CreatedAt)
	require.EqualValues(t, 1, e.instance("order", "o-1").Version)
	require.Len(t, e.inputs("order", "o-1"), 1)

	_, err := e.exec("order", "o-1", step{Input: "place", Key: "k1", Hash: "h2", Calls: &calls})
	require.ErrorIs(t, err, store.ErrIdempotencyMismatch)
	require.EqualValues(t, 1, calls.Load())

	// The same key on another instance is independent.
	other := e.mustExec("order", "o-2", step{Input: "place", Key: "k1", Hash: "h2"})
	require.False(t, other.Replayed)
	require.EqualValues(t, 1, e.instance("order", "o-2").Version)

	// A rejected input replays as rejected, and still leaves no instance.
	rej := e.mustExec("order", "o-3", step{Input: "pay", Key: "k", Reject: "not yet"})
	rep := e.mustExec("order", "o-3", step{Input: "pay", Key: "k", Calls: &calls})
	require.True(t, rep.Replayed)
	require.Equal(t, store.OutcomeRejected, rep.Input.Outcome)
	require.Equal(t, "not yet", rep.Input.Reason)
	require.Equal(t, rej.Input.ID, rep.Input.ID)
	_, err = e.s.GetInstance(e.ctx, "order", "o-3")
	require.ErrorIs(t, err, store.ErrNotFound)

	// A replay wins over the expected version: the retried request gets its answer.
	rep = e.mustExec("order", "o-1", step{Input: "place", Key: "k1", Hash: "h1", Expected: ptr[int64](0)})
	require.True(t, rep.Replayed)
}

func testExpectedVersion(t *testing.T, e *env) {
	_, err := e.exec("order", "o-1", step{Expected: ptr[int64](3)})
	require.ErrorIs(t, err, store.ErrVersionMismatch, "a version other than 0 on a missing instance")

	e.mustExec("order", "o-1", step{Expected: ptr[int64](0)})
	_, err = e.exec("order", "o-1", step{Expected: ptr[int64](0)})
	require.ErrorIs(t, err, store.ErrVersionMismatch, "0 means it must not exist")

	e.mustExec("order", "o-1", step{Expected: ptr[int64](1)})
	_, err = e.exec("order", "o-1", step{Expected: ptr[int64](1)})
	require.ErrorIs(t, err, store.ErrVersionMismatch)
	_, err = e.exec("order", "o-1", step{Expected: ptr[int64](5)})
	require.ErrorIs(t, err, store.ErrVersionMismatch)

	require.EqualValues(t, 2, e.instance("order", "o-1").Version)
	require.Len(t, e.inputs("order", "o-1"), 2, "a mismatch records nothing")
	require.Empty(t, e.inputs("order", "o-x"))
}

func testDryRun(t *testing.T, e *env) {
	res := e.mustExec("order", "o-1", step{
		Input: "place", DryRun: true, Effects: []string{"reserve"},
		Timers: []store.Timer{{Key: "t", FireAt: e.at(time.Hour)}}, Key: "k",
	})
	require.Equal(t, store.OutcomeAccepted, res.Input.Outcome)
	require.NotNil(t, res.Write)
	require.NotNil(t, res.Write.Instance)
	require.Len(t, res.Write.Events, 1)

	_, err := e.s.GetInstance(e.ctx, "order", "o-1")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Empty(t, e.inputs("order", "o-1"))
	require.Empty(t, e.effects("order", "o-1"))
	require.Empty(t, e.timers("order", "o-1", ""))

	// The key was not consumed.
	committed := e.mustExec("order", "o-1", step{Input: "place", Key: "k"})
	require.False(t, committed.Replayed)

	// A dry run on an existing instance sees it and changes nothing.
	var seen int64
	_, err = e.s.Execute(e.ctx, store.ExecuteParams{
		WorkflowType: "order", WorkflowID: "o-1", DryRun: true,
		Decide: func(ctx context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
			seen = cur.Version
			return decideStep("order", "o-1", step{At: e.now})(ctx, cur, nil)
		},
	})
	require.NoError(t, err)
	require.EqualValues(t, 1, seen)
	require.EqualValues(t, 1, e.instance("order", "o-1").Version)
	require.Len(t, e.inputs("order", "o-1"), 1)
}

var errDecide = errors.New("storetest: decide failed")

func testDecideError(t *testing.T, e *env) {
	failing := func(typ, id string) store.ExecuteParams {
		return store.ExecuteParams{
			WorkflowType: typ, WorkflowID: id, IdempotencyKey: "k", RequestHash: "h",
			Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
				return nil, fmt.Errorf("wrapped: %w", errDecide)
			},
		}
	}
	_, err := e.s.Execute(e.ctx, failing("order", "o-1"))
	require.ErrorIs(t, err, errDecide)
	_, err = e.s.GetInstance(e.ctx, "order", "o-1")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Empty(t, e.inputs("order", "o-1"))

	e.mustExec("order", "o-1", step{})
	_, err = e.s.Execute(e.ctx, failing("order", "o-1"))
	require.ErrorIs(t, err, errDecide)
	require.EqualValues(t, 1, e.instance("order", "o-1").Version)
	require.Len(t, e.inputs("order", "o-1"), 1)

	// Nothing was kept: the key is still free.
	res := e.mustExec("order", "o-1", step{Key: "k", Hash: "h"})
	require.False(t, res.Replayed)
}

func testUniqueKey(t *testing.T, e *env) {
	e.mustExec("order", "o-1", step{UniqueKey: "ref-1"})
	_, err := e.exec("order", "o-2", step{UniqueKey: "ref-1", Effects: []string{"x"}})
	require.ErrorIs(t, err, store.ErrUniqueKeyConflict)
	_, err = e.s.GetInstance(e.ctx, "order", "o-2")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Empty(t, e.inputs("order", "o-2"))
	require.Empty(t, e.effects("order", "o-2"))

	// Other keys, other types and instances without a key are independent.
	e.mustExec("order", "o-3", step{UniqueKey: "ref-2"})
	e.mustExec("invoice", "i-1", step{UniqueKey: "ref-1"})
	e.mustExec("order", "o-4", step{})
	e.mustExec("order", "o-5", step{})

	// The holder's own later inputs keep the key.
	e.mustExec("order", "o-1", step{})

	// Completing frees the key.
	e.mustExec("order", "o-1", step{Complete: true})
	e.mustExec("order", "o-2", step{UniqueKey: "ref-1"})
	inst := e.instance("order", "o-2")
	require.Equal(t, "ref-1", inst.UniqueKey)
	_, err = e.exec("order", "o-6", step{UniqueKey: "ref-1"})
	require.ErrorIs(t, err, store.ErrUniqueKeyConflict)
}

func testSnapshotEqualsReplay(t *testing.T, e *env) {
	patches := []step{
		{Data: `{"total":40,"items":{"a":1,"b":2},"note":"x"}`, To: "open"},
		{Data: `{"items":{"b":null,"c":3}}`},
		{Data: `{"note":null,"paid":true}`, To: "paid"},
		{Data: `{"items":{"a":{"deep":[1,2]}}}`},
		{Data: `{}`, To: "shipped"},
		{Data: `{"total":41.5,"tags":["x","y"]}`},
	}
	for _, p := range patches {
		e.mustExec("order", "o-1", p)
	}
	inst := e.instance("order", "o-1")
	name, data := fold(e.events("order", "o-1"))
	require.Equal(t, name, inst.StateName)
	require.JSONEq(t, string(data), string(inst.StateData))
	require.JSONEq(t, `{"total":41.5,"items":{"a":{"deep":[1,2]},"c":3},"paid":true,"tags":["x","y"]}`,
		string(inst.StateData))
	require.EqualValues(t, len(patches), inst.Version)
}

func testConcurrentInputsOneInstance(t *testing.T, e *env) {
	const workers, perWorker = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				_, err := e.exec("order", "hot", step{Data: fmt.Sprintf(`{"w%d":%d}`, w, i)})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	evs := e.events("order", "hot")
	require.Len(t, evs, workers*perWorker)
	for i, ev := range evs {
		require.EqualValues(t, i+1, ev.Seq, "seq must have no gap")
	}
	inst := e.instance("order", "hot")
	require.EqualValues(t, workers*perWorker, inst.Version)
	_, data := fold(evs)
	require.JSONEq(t, string(data), string(inst.StateData))
	require.Len(t, e.inputs("order", "hot"), workers*perWorker)
}

// testDifferentInstances: a decision that takes its time on one instance holds up no
// input to another, not even in a store with a single writer (SQLite decides outside it).
func testDifferentInstances(t *testing.T, e *env) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // never leave A blocked, even when the test fails
	aDone := make(chan error, 1)
	go func() {
		_, err := e.s.Execute(e.ctx, store.ExecuteParams{
			WorkflowType: "order", WorkflowID: "a",
			Decide: func(ctx context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
				close(entered)
				<-release
				return decideStep("order", "a", step{At: e.now})(ctx, cur, nil)
			},
		})
		aDone <- err
	}()
	<-entered
	bDone := make(chan error, 1)
	go func() {
		_, err := e.exec("order", "b", step{})
		bDone <- err
	}()
	require.NoError(t, waitErr(t, bDone), "an input to another instance must not wait")
	unblock()
	require.NoError(t, waitErr(t, aDone))
	require.EqualValues(t, 1, e.instance("order", "a").Version)
	require.EqualValues(t, 1, e.instance("order", "b").Version)
}

// waitErr waits up to 10 s for a result on ch.
func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("timed out: deadlock?")
		return nil
	}
}
