package sqlite

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// TestTwoStoresShareAnInstance runs inputs to one instance through two stores on one
// file, as two processes would: their in-process locks do not see each other, so
// decisions race, and the writer's version check must turn every lost race into a new
// decision (ErrStale), never into a lost or duplicated event.
func TestTwoStoresShareAnInstance(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ironflow.db")
	var stores [2]*Store
	for i := range stores {
		s, _, err := open(context.Background(), path)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		stores[i] = s
	}
	var decisions atomic.Int64
	step := func(_ context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
		decisions.Add(1)
		var v int64
		if cur != nil {
			v = cur.Version
		}
		return &store.Write{
			Instance: &store.Instance{DefinitionVersion: 1, StateName: "s", Version: v + 1, StateData: json.RawMessage(`{}`)},
			Events:   []store.Event{{Type: "E", To: "s"}},
			Input:    store.InputRecord{Type: "go", Outcome: store.OutcomeAccepted},
		}, nil
	}
	const perStore = 40
	var wg sync.WaitGroup
	for _, s := range stores {
		for range perStore {
			wg.Go(func() {
				_, err := s.Execute(context.Background(), store.ExecuteParams{WorkflowType: "t", WorkflowID: "i", Decide: step})
				require.NoError(t, err)
			})
		}
	}
	wg.Wait()
	inst, err := stores[0].GetInstance(context.Background(), "t", "i")
	require.NoError(t, err)
	require.EqualValues(t, 2*perStore, inst.Version)
	evs, err := stores[1].ListEvents(context.Background(), "t", "i", 0, 1000)
	require.NoError(t, err)
	require.Len(t, evs, 2*perStore)
	for i, ev := range evs {
		require.EqualValues(t, i+1, ev.Seq)
	}
	t.Logf("%d decisions for %d inputs", decisions.Load(), 2*perStore)
}

// TestSerialTransaction runs the protocol transaction the store falls back to after
// repeated stale snapshots: Load, decision and Write on the writer. It must write like
// the optimistic one and must not wait for an optimistic transaction that holds an
// instance's in-process lock while it waits for the writer.
func TestSerialTransaction(t *testing.T) {
	t.Parallel()
	s, d := openDriver(t)
	ctx := context.Background()
	rows := func(id string) *sqlstore.Rows {
		now := time.Now().UTC()
		return &sqlstore.Rows{
			Created: []*store.Instance{{Type: "t", ID: id, DefinitionVersion: 1, StateName: "s", Status: store.StatusRunning,
				Version: 1, StateData: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now}},
			Events: []store.Event{{WorkflowType: "t", WorkflowID: id, Seq: 1, Type: "E", To: "s", RecordedAt: now}},
			Inputs: []store.InputRecord{{ID: id, WorkflowType: "t", WorkflowID: id, Type: "go", Source: store.SourceAPI,
				Outcome: store.OutcomeAccepted, Version: 1, CreatedAt: now}},
		}
	}
	// An optimistic transaction holds instance a's in-process lock while the serial one
	// runs on the writer and loads a.
	locked, release := make(chan struct{}), make(chan struct{})
	optimistic := make(chan error, 1)
	go func() {
		optimistic <- d.Begin(ctx, false, func(tx sqlstore.Tx) error {
			if _, err := tx.Load(ctx, sqlstore.LoadRequest{Instances: []sqlstore.Key{{Type: "t", ID: "a"}}}); err != nil {
				return err
			}
			close(locked)
			<-release
			return tx.Write(ctx, rows("a"))
		})
	}()
	<-locked
	err := d.Begin(ctx, true, func(tx sqlstore.Tx) error {
		snap, err := tx.Load(ctx, sqlstore.LoadRequest{Instances: []sqlstore.Key{{Type: "t", ID: "a"}, {Type: "t", ID: "b"}}})
		if err != nil {
			return err
		}
		require.Empty(t, snap.Instances)
		return tx.Write(ctx, rows("b"))
	})
	require.NoError(t, err, "the serial transaction does not wait for a's lock")
	close(release)
	require.NoError(t, <-optimistic)
	for _, id := range []string{"a", "b"} {
		inst, err := s.GetInstance(ctx, "t", id)
		require.NoError(t, err)
		require.EqualValues(t, 1, inst.Version)
	}
	// A stale snapshot: b changed after the optimistic Load.
	err = d.Begin(ctx, false, func(tx sqlstore.Tx) error {
		if _, err := tx.Load(ctx, sqlstore.LoadRequest{Instances: []sqlstore.Key{{Type: "t", ID: "c"}}}); err != nil {
			return err
		}
		require.NoError(t, d.Begin(ctx, true, func(tx sqlstore.Tx) error {
			if _, err := tx.Load(ctx, sqlstore.LoadRequest{Instances: []sqlstore.Key{{Type: "t", ID: "c"}}}); err != nil {
				return err
			}
			return tx.Write(ctx, rows("c"))
		}))
		return tx.Write(ctx, rows("c"))
	})
	require.ErrorIs(t, err, sqlstore.ErrStale)
}
