package postgres

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
	"github.com/ironflow/ironflow/internal/store/storetest"
)

// TestRoutedBatchesCommitAsBatches runs deliverBatch and fireBatch directly.
func TestRoutedBatchesCommitAsBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, pgtest.MigratedDatabaseURL(t, Migrate))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	storetest.RoutedBatches(t, s, 20,
		func(ps []store.CompleteEffectParams) ([]error, error) { return s.deliverBatch(ctx, ps) },
		func(ps []store.CompleteTimerParams) ([]error, error) { return s.fireBatch(ctx, ps) })
}
