package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/store"
)

// TestCountWorkflowsCap: a count over the cap is reported as the cap, with capped set.
func TestCountWorkflowsCap(t *testing.T) {
	eachBackend(t, func(t *testing.T, b bundle) {
		ctx := context.Background()
		e := engine.New(engine.Config{Store: b.store, NowFunc: b.clock.Now, CountCap: 2})
		for i := range 3 {
			_, err := e.Execute(ctx, "order", fmt.Sprintf("o-%d", i), in("place", fmt.Sprintf(`{"total": 1, "order_ref": "r-%d"}`, i)), engine.ExecuteOptions{})
			require.NoError(t, err)
			b.clock.Advance(time.Minute)
		}
		_, err := e.Terminate(ctx, "order", "o-0", "test", engine.ExecuteOptions{})
		require.NoError(t, err)

		v, err := e.CountWorkflows(ctx, "", time.Time{}, time.Time{})
		require.NoError(t, err)
		require.Equal(t, engine.WorkflowCountsView{Counts: engine.StatusCountsView{Running: 2, Terminated: 1}, Cap: 2}, v,
			"exactly the cap is not capped")

		_, err = e.Execute(ctx, "order", "o-3", in("place", `{"total": 1, "order_ref": "r-3"}`), engine.ExecuteOptions{})
		require.NoError(t, err)
		v, err = e.CountWorkflows(ctx, "order", time.Time{}, time.Time{})
		require.NoError(t, err)
		require.Equal(t, engine.WorkflowCountsView{Counts: engine.StatusCountsView{Running: 2, Terminated: 1}, Capped: true, Cap: 2}, v)

		start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		v, err = e.CountWorkflows(ctx, "order", start.Add(time.Minute), start.Add(3*time.Minute))
		require.NoError(t, err)
		require.Equal(t, engine.WorkflowCountsView{Counts: engine.StatusCountsView{Running: 2}, Cap: 2}, v)

		v, err = b.eng.CountWorkflows(ctx, "nope", time.Time{}, time.Time{})
		require.NoError(t, err)
		require.Equal(t, engine.WorkflowCountsView{Cap: engine.DefaultCountCap}, v)
	})
}

// TestCancelEffect: an operator discards a pending effect once; the error says why not
// twice.
func TestCancelEffect(t *testing.T) {
	eachBackend(t, func(t *testing.T, b bundle) {
		ctx := context.Background()
		o, err := b.eng.Execute(ctx, "order", "o-1", in("place", `{"total": 1, "order_ref": "r-1"}`), engine.ExecuteOptions{})
		require.NoError(t, err)
		id := result(t, o).Effects[0].ID
		v, err := b.eng.CancelEffect(ctx, id)
		require.NoError(t, err)
		require.Equal(t, store.EffectCancelled, v.Status)
		_, err = b.eng.CancelEffect(ctx, id)
		require.ErrorIs(t, err, store.ErrWrongStatus)
		_, err = b.eng.CancelEffect(ctx, "nope")
		require.True(t, errors.Is(err, engine.ErrEffectNotFound), "%v", err)
	})
}
