package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
	"github.com/ironflow/ironflow/internal/store/sqlite"
	"github.com/ironflow/ironflow/internal/workflow"
)

// backends opens a fresh store of each implementation.
var backends = []struct {
	name string
	open func(t testing.TB) store.Store
}{
	{"sqlite", func(t testing.TB) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ironflow.db"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
	{"postgres", func(t testing.TB) store.Store {
		s, err := postgres.Open(context.Background(), pgtest.MigratedDatabaseURL(t, postgres.Migrate))
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
}

func orderDefinition(t testing.TB) []byte {
	b, err := os.ReadFile("../../examples/order.json")
	require.NoError(t, err)
	return b
}

type bundle struct {
	eng   *engine.Engine
	store store.Store
	clock *clock
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func setup(t testing.TB, open func(testing.TB) store.Store) bundle {
	s := open(t)
	c := &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	e := engine.New(engine.Config{Store: s, NowFunc: c.Now})
	_, created, err := e.PutDefinition(context.Background(), "order", orderDefinition(t))
	require.NoError(t, err)
	require.True(t, created)
	return bundle{eng: e, store: s, clock: c}
}

// eachBackend runs test on every backend, in parallel, each with a fresh setup.
func eachBackend(t *testing.T, test func(t *testing.T, b bundle)) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			test(t, setup(t, be.open))
		})
	}
}

func in(typ, data string) workflow.Input {
	return workflow.Input{Type: typ, Data: json.RawMessage(data)}
}

// result decodes o's body, and checks that o.Version is its workflow's version (the
// ETag the API sends without decoding the body).
func result(t testing.TB, o engine.Outcome) engine.Result {
	var r engine.Result
	require.NoError(t, json.Unmarshal(o.Body, &r))
	var version int64
	if r.Workflow != nil {
		version = r.Workflow.Version
	}
	require.Equal(t, version, o.Version, "Outcome.Version is the body's workflow.version")
	return r
}

func TestOrderLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, b bundle) {
		ctx := context.Background()

		o, err := b.eng.Execute(ctx, "order", "o-1", in("place", `{"total": 40, "order_ref": "r-1"}`), engine.ExecuteOptions{})
		require.NoError(t, err)
		require.Equal(t, store.OutcomeAccepted, o.Outcome)
		r := result(t, o)
		require.Equal(t, "awaiting_payment", r.Workflow.State.Name)
		require.JSONEq(t, `{"total": 40, "order_ref": "r-1"}`, string(r.Workflow.State.Data))
		require.Len(t, r.Events, 1)
		require.Equal(t, engine.EventView{Seq: 1, Type: "OrderPlaced", From: "new", To: "awaiting_payment",
			Data: r.Events[0].Data, InputType: "place", RecordedAt: b.clock.Now()}, r.Events[0])
		require.Len(t, r.Effects, 1)
		require.Equal(t, "reserve_stock", r.Effects[0].Name)
		require.Equal(t, []engine.TimerRef{{Key: "payment_timeout", FireAt: b.clock.Now().Add(30 * time.Minute)}}, r.Timers.Scheduled)

		o, err = b.eng.Execute(ctx, "order", "o-1", in("pay", `{"amount": 10}`), engine.ExecuteOptions{})
		require.NoError(t, err)
		require.Equal(t, store.OutcomeRejected, o.Outcome)
		r = result(t, o)
		require.Equal(t, &engine.Rejection{Reason: "payment is below the order total", State: "awaiting_payment", Input: "pay"}, r.Rejection)
		require.EqualValues(t, 1, r.Workflow.Version)

		o, err = b.eng.Execute(ctx, "order", "o-1", in("pay", `{"amount": 40}`), engine.ExecuteOptions{})
		require.NoError(t, err)
		require.Equal(t, store.OutcomeAccepted, o.Outcome)
		r = result(t, o)
		require.Equal(t, "paid", r.Workflow.State.Name)
		require.Equal(t, []string{"payment_timeout"}, r.Timers.Cancelled)

		o, err = b.eng.Execute(ctx, "order", "o-1", in("shipped", `{}`), engine.ExecuteOptions{})
		require.NoError(t, err)
		r = result(t, o)
		require.Equal(t, "completed", r.Workflow.Status)
		require.NotNil(t, r.Workflow.CompletedAt)

		o, err = b.eng.Execute(ctx, "order", "o-1", in("pay", `{"amount": 40}`), engine.ExecuteOptions{})
		require.NoError(t, err)
		require.Equal(t, store.OutcomeAlreadyCompleted, o.Outcome)

		// The effect rows were written with the events.
		effects, err := b.store.ListEffects(ctx, store.ListEffectsParams{WorkflowType: "order", WorkflowID: "o-1"})
		require.NoError(t, err)
		require.Len(t, effects.Items, 2)

		// Replay gives the cached snapshot, and at_version replays history.
		replayed, err := b.eng.Replay(ctx, "order", "o-1")
		require.NoError(t, err)
		wf, err := b.eng.GetWorkflow(ctx, "order", "o-1", 0)
		require.NoError(t, err)
		require.Equal(t, wf.State.Name, replayed.Name)
		require.JSONEq(t, string(wf.State.Data), string(replayed.Data))
		at1, err := b.eng.GetWorkflow(ctx, "order", "o-1", 1)
		require.NoError(t, err)
		require.Equal(t, "awaiting_payment", at1.State.Name)
		require.Equal(t, "running", at1.Status)
		_, err = b.eng.GetWorkflow(ctx, "order", "o-1", 9)
		require.ErrorIs(t, err, engine.ErrInvalidArgument)

		inputs, err := b.eng.ListInputs(ctx, "order", "o-1", "", 0)
		require.NoError(t, err)
		var outcomes []string
		for _, i := range inputs.Items {
			outcomes = append(outcomes, i.Outcome)
		}
		require.Equal(t, []string{"accepted", "rejected", "accepted", "accepted", "already_completed"}, outcomes)
	})
}

func TestExecuteErrors(t *testing.T) {
	eachBackend(t, func(t *testing.T, b bundle) {
		ctx := context.Background()

		_, err := b.eng.Execute(ctx, "nope", "x", in("place", `{}`), engine.ExecuteOptions{})
		require.ErrorIs(t, err, engine.ErrTypeNotFound)
		_, err = b.eng.Execute(ctx, "order", "x", in("launch", `{}`), engine.ExecuteOptions{})
		require.ErrorIs(t, err, workflow.ErrUnknownInput)
		_, err = b.eng.Execute(ctx, "order", "x", in("place", `{"total": 1}`), engine.ExecuteOptions{})
		require.ErrorIs(t, err, workflow.ErrInvalidInput)
		var ve *workflow.ValidationError
		require.ErrorAs(t, err, &ve)
		require.NotEmpty(t, ve.Errors)
		_, err = b.eng.Execute(ctx, "order", "", in("place", `{}`), engine.ExecuteOptions{})
		require.ErrorIs(t, err, engine.ErrInvalidID)
		_, err = b.eng.Execute(ctx, "order", "a\x00b", in("place", `{}`), engine.ExecuteOptions{})
		require.ErrorIs(t, err, engine.ErrInvalidID)

		// A rejected first input leaves no instance but is recorded.
		o, err := b.eng.Execute(ctx, "order", "x", in("pay", `{"amount": 1}`), engine.ExecuteOptions{})
		require.NoError(t, err)
		require.Equal(t, store.OutcomeRejected, o.Outcome)
		_, err = b.eng.GetWorkflow(ctx, "order", "x", 0)
		require.ErrorIs(t, err, engine.ErrInstanceNotFound)
		inputs, err := b.eng.ListInputs(ctx, "order", "x", "", 0)
		require.NoError(t, err)
		require.Len(t, inputs.Items, 1)

		// Nothing was written by the failures above.
		page, err := b.eng.ListWorkflows(ctx, store.ListInstancesParams{Type: "order"})
		require.NoError(t, err)
		require.Empty(t, page.Items)
	})
}

func TestIdempotencyVersionsAndDryRun(t *testing.T) {
	eachBackend(t, func(t *testing.T, b bundle) {
		ctx := context.Background()
		zero := int64(0)

		dry, err := b.eng.Execute(ctx, "order", "o-1", in("place", `{"total": 5, "order_ref": "a"}`), engine.ExecuteOptions{DryRun: true})
		require.NoError(t, err)
		require.Equal(t, store.OutcomeAccepted, dry.Outcome)
		_, err = b.eng.GetWorkflow(ctx, "order", "o-1", 0)
		require.ErrorIs(t, err, engine.ErrInstanceNotFound, "a dry run commits nothing")

		first, err := b.eng.Execute(ctx, "order", "o-1", in("place", `{"total": 5, "order_ref": "a"}`),
			engine.ExecuteOptions{IdempotencyKey: "k1", ExpectedVersion: &zero})
		require.NoError(t, err)
		require.False(t, first.Replayed)
		again, err := b.eng.Execute(ctx, "order", "o-1", in("place", `{"total": 5,   "order_ref": "a"}`),
			engine.ExecuteOptions{IdempotencyKey: "k1", ExpectedVersion: &zero})
		require.NoError(t, err)
		require.True(t, again.Replayed)
		require.Equal(t, string(first.Body), string(again.Body))

		_, err = b.eng.Execute(ctx, "order", "o-1", in("place", `{"total": 6, "order_ref": "a"}`), engine.ExecuteOptions{IdempotencyKey: "k1"})
		require.ErrorIs(t, err, store.ErrIdempotencyMismatch)

		_, err = b.eng.Execute(ctx, "order", "o-1", in("reserved", `{}`), engine.ExecuteOptions{ExpectedVersion: &zero})
		require.ErrorIs(t, err, store.ErrVersionMismatch)
		one := int64(1)
		o, err := b.eng.Execute(ctx, "order", "o-1", in("reserved", `{}`), engine.ExecuteOptions{ExpectedVersion: &one})
		require.NoError(t, err)
		require.Equal(t, store.OutcomeAccepted, o.Outcome)

		// unique_key: a second running order with the same ref clashes.
		_, err = b.eng.Execute(ctx, "order", "o-2", in("place", `{"total": 5, "order_ref": "a"}`), engine.ExecuteOptions{})
		require.ErrorIs(t, err, store.ErrUniqueKeyConflict)
	})
}

func TestDefinitionVersionsPinInstances(t *testing.T) {
	eachBackend(t, func(t *testing.T, b bundle) {
		ctx := context.Background()

		_, err := b.eng.Execute(ctx, "order", "old", in("place", `{"total": 5, "order_ref": "old"}`), engine.ExecuteOptions{})
		require.NoError(t, err)

		_, created, err := b.eng.PutDefinition(ctx, "order", orderDefinition(t))
		require.NoError(t, err)
		require.False(t, created, "an identical body makes no new version")
		var doc any
		require.NoError(t, json.Unmarshal(orderDefinition(t), &doc))
		reordered, err := json.MarshalIndent(doc, "", "\t") // keys sorted, another layout
		require.NoError(t, err)
		require.NotEqual(t, orderDefinition(t), reordered)
		_, created, err = b.eng.PutDefinition(ctx, "order", reordered)
		require.NoError(t, err)
		require.False(t, created, "the same document with its keys in another order makes no new version")

		// v2 drops the rejection branch: any payment is accepted.
		var def map[string]any
		require.NoError(t, json.Unmarshal(orderDefinition(t), &def))
		def["description"] = "v2"
		states := def["states"].(map[string]any)
		ap := states["awaiting_payment"].(map[string]any)["on"].(map[string]any)
		ap["pay"] = map[string]any{"to": "paid", "event": "PaymentReceived"}
		body, err := json.Marshal(def)
		require.NoError(t, err)
		v, created, err := b.eng.PutDefinition(ctx, "order", body)
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, 2, v.Version)

		_, err = b.eng.Execute(ctx, "order", "new", in("place", `{"total": 5, "order_ref": "new"}`), engine.ExecuteOptions{})
		require.NoError(t, err)

		o, err := b.eng.Execute(ctx, "order", "old", in("pay", `{"amount": 1}`), engine.ExecuteOptions{})
		require.NoError(t, err)
		require.Equal(t, store.OutcomeRejected, o.Outcome, "the old instance stays on v1")
		o, err = b.eng.Execute(ctx, "order", "new", in("pay", `{"amount": 1}`), engine.ExecuteOptions{})
		require.NoError(t, err)
		require.Equal(t, store.OutcomeAccepted, o.Outcome, "a new instance takes v2")
		wf, err := b.eng.GetWorkflow(ctx, "order", "new", 0)
		require.NoError(t, err)
		require.Equal(t, 2, wf.DefinitionVersion)

		_, _, err = b.eng.PutDefinition(ctx, "order", []byte(`{"initial_state": "nowhere", "states": {}}`))
		require.ErrorIs(t, err, workflow.ErrInvalidDefinition)

		versions, err := b.eng.ListDefinitionVersions(ctx, "order", "", 0)
		require.NoError(t, err)
		require.Len(t, versions.Items, 2)
		require.Empty(t, versions.NextCursor)
		first, err := b.eng.ListDefinitionVersions(ctx, "order", "", 1)
		require.NoError(t, err)
		require.Len(t, first.Items, 1)
		require.Equal(t, "1", first.NextCursor)
		second, err := b.eng.ListDefinitionVersions(ctx, "order", first.NextCursor, 1)
		require.NoError(t, err)
		require.Len(t, second.Items, 1)
		require.Equal(t, 2, second.Items[0].Version)
		require.Empty(t, second.NextCursor, "no next_cursor on the last page")
		_, err = b.eng.ListDefinitionVersions(ctx, "order", "x", 1)
		require.ErrorIs(t, err, store.ErrInvalidCursor)
		_, err = b.eng.ListDefinitionVersions(ctx, "nope", "", 1)
		require.ErrorIs(t, err, engine.ErrTypeNotFound)
		types, err := b.eng.ListDefinitions(ctx, "", 1)
		require.NoError(t, err)
		require.Len(t, types.Items, 1)
		require.Equal(t, "order", types.Items[0].Type)
		mermaid, err := b.eng.Diagram(ctx, "order", 1, "mermaid")
		require.NoError(t, err)
		require.Contains(t, mermaid, "stateDiagram-v2")
	})
}

func TestConcurrentInputsOneInstance(t *testing.T) {
	eachBackend(t, func(t *testing.T, b bundle) {
		ctx := context.Background()
		_, err := b.eng.Execute(ctx, "order", "hot", in("place", `{"total": 5, "order_ref": "hot"}`), engine.ExecuteOptions{})
		require.NoError(t, err)

		const workers, each = 10, 20
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					data := fmt.Sprintf(`{"w%d": %d}`, w, i)
					if _, err := b.eng.Execute(ctx, "order", "hot", in("reserved", data), engine.ExecuteOptions{}); err != nil {
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
		wf, err := b.eng.GetWorkflow(ctx, "order", "hot", 0)
		require.NoError(t, err)
		require.EqualValues(t, 1+workers*each, wf.Version)
		replayed, err := b.eng.Replay(ctx, "order", "hot")
		require.NoError(t, err)
		require.JSONEq(t, string(wf.State.Data), string(replayed.Data))
		page, err := b.eng.ListEvents(ctx, "order", "hot", 0, engine.MaxPageSize)
		require.NoError(t, err)
		for i, ev := range page.Items {
			require.EqualValues(t, i+1, ev.Seq)
		}
	})
}

// TestConcurrentInputsEachAnswered: concurrent inputs of many instances (which the
// PostgreSQL store records in shared transactions) each get their own answer: accepted,
// replayed with the first answer's body, refused for the version, the idempotency key,
// a unique key taken or an invalid input, and only what was accepted is written.
func TestConcurrentInputsEachAnswered(t *testing.T) {
	eachBackend(t, func(t *testing.T, b bundle) {
		ctx := context.Background()
		first, err := b.eng.Execute(ctx, "order", "replay", in("place", `{"total": 5, "order_ref": "r"}`),
			engine.ExecuteOptions{IdempotencyKey: "k"})
		require.NoError(t, err)
		_, err = b.eng.Execute(ctx, "order", "holder", in("place", `{"total": 5, "order_ref": "taken"}`), engine.ExecuteOptions{})
		require.NoError(t, err)

		const n = 16
		kinds := []string{"accepted", "replay", "mismatch", "version", "taken", "invalid"}
		type answer struct {
			o   engine.Outcome
			err error
		}
		answers := make([][]answer, len(kinds))
		three := int64(3)
		var wg sync.WaitGroup
		for k, kind := range kinds {
			answers[k] = make([]answer, n)
			for i := range n {
				wg.Go(func() {
					id, data, opts := fmt.Sprintf("%s-%d", kind, i), fmt.Sprintf(`{"total": 5, "order_ref": "%s-%d"}`, kind, i), engine.ExecuteOptions{}
					switch kind {
					case "replay":
						id, data, opts = "replay", `{"total": 5, "order_ref": "r"}`, engine.ExecuteOptions{IdempotencyKey: "k"}
					case "mismatch":
						id, data, opts = "replay", `{"total": 6, "order_ref": "r"}`, engine.ExecuteOptions{IdempotencyKey: "k"}
					case "version":
						opts.ExpectedVersion = &three
					case "taken":
						data = `{"total": 5, "order_ref": "taken"}`
					case "invalid":
						data = `{"total": "five"}`
					}
					o, err := b.eng.Execute(ctx, "order", id, in("place", data), opts)
					answers[k][i] = answer{o, err}
				})
			}
		}
		wg.Wait()
		for k, kind := range kinds {
			for i, a := range answers[k] {
				id := fmt.Sprintf("%s-%d", kind, i)
				switch kind {
				case "accepted":
					require.NoError(t, a.err, id)
					require.Equal(t, store.OutcomeAccepted, a.o.Outcome, id)
					wf, err := b.eng.GetWorkflow(ctx, "order", id, 0)
					require.NoError(t, err)
					require.EqualValues(t, 1, wf.Version)
				case "replay":
					require.NoError(t, a.err, id)
					require.True(t, a.o.Replayed, id)
					require.Equal(t, string(first.Body), string(a.o.Body), id)
				case "mismatch":
					require.ErrorIs(t, a.err, store.ErrIdempotencyMismatch, id)
				case "version":
					require.ErrorIs(t, a.err, store.ErrVersionMismatch, id)
				case "taken":
					require.ErrorIs(t, a.err, store.ErrUniqueKeyConflict, id)
				case "invalid":
					var ve *workflow.ValidationError
					require.ErrorAs(t, a.err, &ve, id)
				}
				if kind != "accepted" && kind != "replay" && kind != "mismatch" {
					_, err := b.eng.GetWorkflow(ctx, "order", id, 0)
					require.ErrorIs(t, err, engine.ErrInstanceNotFound, id)
				}
			}
		}
		wf, err := b.eng.GetWorkflow(ctx, "order", "replay", 0)
		require.NoError(t, err)
		require.EqualValues(t, 1, wf.Version, "replays and mismatches write nothing")
	})
}

// BenchmarkExecute measures one accepted decision on an instance whose history is 1
// or 10,000 events long: the cached snapshot keeps the cost flat.
func BenchmarkExecute(b *testing.B) {
	for _, be := range backends {
		for _, history := range []int{1, 10_000} {
			b.Run(fmt.Sprintf("%s/history=%d", be.name, history), func(b *testing.B) {
				bb := setup(b, be.open)
				ctx := context.Background()
				id := "bench"
				_, err := bb.eng.Execute(ctx, "order", id, in("place", `{"total": 5, "order_ref": "bench"}`), engine.ExecuteOptions{})
				require.NoError(b, err)
				seedHistory(b, bb.store, id, history-1)
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					o, err := bb.eng.Execute(ctx, "order", id, in("reserved", `{"n": 1}`), engine.ExecuteOptions{})
					if err != nil || o.Outcome != store.OutcomeAccepted {
						b.Fatalf("execute: %v %s", err, o.Outcome)
					}
				}
			})
		}
	}
}

// seedHistory appends n events to an instance straight through the store, in batches,
// so long histories are quick to build.
func seedHistory(b testing.TB, s store.Store, id string, n int) {
	ctx := context.Background()
	for n > 0 {
		batch := min(n, 500)
		n -= batch
		_, err := s.Execute(ctx, store.ExecuteParams{
			WorkflowType: "order", WorkflowID: id,
			Decide: func(_ context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
				if cur == nil {
					return nil, errors.New("instance missing")
				}
				next := *cur
				w := &store.Write{}
				for range batch {
					next.Version++
					w.Events = append(w.Events, store.Event{
						WorkflowType: "order", WorkflowID: id, Seq: next.Version, Type: "StockReserved",
						From: cur.StateName, To: cur.StateName, Data: json.RawMessage(`{}`), InputType: "reserved",
						RecordedAt: cur.UpdatedAt,
					})
				}
				w.Instance = &next
				w.Input = store.InputRecord{ID: fmt.Sprintf("seed-%d-%d", n, next.Version), WorkflowType: "order", WorkflowID: id,
					Type: "reserved", Data: json.RawMessage(`{}`), Source: store.SourceAPI, Outcome: store.OutcomeAccepted,
					Version: next.Version, Response: json.RawMessage(`{}`), CreatedAt: cur.UpdatedAt}
				return w, nil
			},
		})
		require.NoError(b, err)
	}
}

// BenchmarkExecuteNew measures the input path the HTTP API is busiest with: many
// clients in parallel, each input creating a new instance that emits one effect. With
// more clients than pool connections it also guards against a decision waiting for a
// second connection while it holds the first.
func BenchmarkExecuteNew(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			bb := setup(b, be.open)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var next atomic.Int64
			b.SetParallelism(16) // 32 clients on 2 cores, more than the Postgres pool holds
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("n-%d", next.Add(1))
					o, err := bb.eng.Execute(ctx, "order", id,
						in("place", fmt.Sprintf(`{"total": 5, "order_ref": %q}`, id)), engine.ExecuteOptions{})
					if err != nil || o.Outcome != store.OutcomeAccepted {
						b.Errorf("execute: %v %s", err, o.Outcome)
						return
					}
				}
			})
		})
	}
}
