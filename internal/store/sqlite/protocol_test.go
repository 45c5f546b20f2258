package sqlite

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
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
