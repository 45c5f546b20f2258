package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/storetest"
)

// TestRoutedBatchesCommitAsBatches runs deliverBatch and fireBatch directly, each in
// one write request, with more completions than the largest chunk of a rowWrite.
func TestRoutedBatchesCommitAsBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "ironflow.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	storetest.RoutedBatches(t, s, 70,
		func(ps []store.CompleteEffectParams) (errs []error, err error) {
			err = s.inTx(ctx, func(ctx context.Context, tx *wtx) (err error) {
				errs, _, err = deliverBatch(ctx, tx, ps)
				return err
			})
			return errs, err
		},
		func(ps []store.CompleteTimerParams) (errs []error, err error) {
			err = s.inTx(ctx, func(ctx context.Context, tx *wtx) (err error) {
				errs, _, err = fireBatch(ctx, tx, ps)
				return err
			})
			return errs, err
		})
}
