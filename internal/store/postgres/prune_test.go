package postgres

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store/storetest"
)

// TestPruneTakesAttemptsWithTheirEffect: the prune statement deletes a pruned effect's
// attempts itself (they have no foreign key: migration 000013).
func TestPruneTakesAttemptsWithTheirEffect(t *testing.T) {
	t.Parallel()
	s, d := openPool(t, 2)
	storetest.PruneTakesAttempts(t, s, func() (n int) {
		require.NoError(t, d.pool.QueryRow(context.Background(), `SELECT count(*) FROM effect_attempts`).Scan(&n))
		return n
	})
}
