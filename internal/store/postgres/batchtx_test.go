package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
)

// TestBatchTxFailuresLeaveConnectionsClean fails transactions at each point batchTx can
// fail — a write rejected in the COMMIT's batch, a decision error after the lock batch,
// a context cancelled before the commit — many more times than the pool has
// connections, and checks that each returns the error it did before, that nothing of it
// was committed and that no pooled connection is left inside a transaction.
func TestBatchTxFailuresLeaveConnectionsClean(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, d := openPool(t, 2)

	create := func(ctx context.Context, id string, decideErr error, onDecide func()) error {
		_, err := s.Execute(ctx, store.ExecuteParams{
			WorkflowType: "t", WorkflowID: id,
			Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
				if onDecide != nil {
					onDecide()
				}
				if decideErr != nil {
					return nil, decideErr
				}
				return oneEffect("k"), nil
			},
		})
		return err
	}
	require.NoError(t, create(ctx, "holder", nil, nil))

	errBoom := errors.New("boom")
	for i := range 6 {
		// The unique key violation comes back from the batch that carries the COMMIT.
		err := create(ctx, fmt.Sprintf("dup-%d", i), nil, nil)
		require.ErrorIs(t, err, store.ErrUniqueKeyConflict)
		// A decision error, after BEGIN and the lock batch, is returned unchanged.
		err = create(ctx, fmt.Sprintf("boom-%d", i), errBoom, nil)
		require.Equal(t, errBoom, err)
		// The caller gives up after the lock batch.
		cctx, cancel := context.WithCancel(ctx)
		err = create(cctx, fmt.Sprintf("cancel-%d", i), nil, cancel)
		cancel()
		require.ErrorIs(t, err, context.Canceled)
	}

	var rows, placeholders, effects int
	require.NoError(t, d.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = ''),
    (SELECT count(*) FROM effects) FROM instances`).Scan(&rows, &placeholders, &effects))
	require.Equal(t, 1, rows)
	require.Zero(t, placeholders)
	require.Equal(t, 1, effects)

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var inTx int
	for range 2 { // every connection of the pool
		c, err := d.pool.Acquire(ctx)
		require.NoError(t, err)
		defer c.Release()
		require.Equal(t, byte('I'), c.Conn().PgConn().TxStatus())
		require.NoError(t, c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&inTx))
		require.Zero(t, inTx)
	}
}

// openPool opens a store on a migrated database of its own with a pool of n connections,
// closed at the test's end.
func openPool(t *testing.T, n int) (*Store, *driver) {
	t.Helper()
	return openURL(t, fmt.Sprintf("%s&pool_max_conns=%d", pgtest.MigratedDatabaseURL(t, Migrate), n))
}

// openURL opens a store on the database at url, closed at the test's end.
func openURL(t *testing.T, url string) (*Store, *driver) {
	t.Helper()
	s, d, err := open(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, d
}

// oneEffect is the write of a new instance of type "t" with uniqueKey that emits one
// effect.
func oneEffect(uniqueKey string) *store.Write {
	return &store.Write{
		Instance: &store.Instance{DefinitionVersion: 1, StateName: "s", UniqueKey: uniqueKey,
			StateData: json.RawMessage(`{}`)},
		Events:  []store.Event{{Type: "E", To: "s"}},
		Effects: []store.Effect{{Name: "e", Payload: json.RawMessage(`{}`)}},
		Input:   store.InputRecord{Type: "go", Outcome: store.OutcomeAccepted},
	}
}
