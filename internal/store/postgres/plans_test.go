package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
	"github.com/ironflow/ironflow/internal/store/storetest"
)

// TestCompletionsPlanForTheirRows: the statements that lock and update completed effects
// by id are planned for the rows at hand each time. A cached generic plan is made from
// the table's statistics when the statement first ran often enough; on a new database
// that was a scan of the whole effects table, kept until autovacuum's first ANALYZE
// (decision 0029). One pooled connection, so every completion runs on the backend whose
// prepared statements are read at the end.
func TestCompletionsPlanForTheirRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, d := openPool(t, 1)
	now := time.Now().UTC().Truncate(time.Microsecond)
	storetest.PutWebhook(t, s, "t", now)

	// Batches of two deliveries with a routed answer, recorded together as the workers'
	// are: the update's statement for many rows.
	const completions = 8 // past the five custom plans after which a generic one may be kept
	for i := range completions {
		for j := range 2 {
			id := fmt.Sprintf("i-%d-%d", i, j)
			_, err := s.Execute(ctx, store.ExecuteParams{
				WorkflowType: "t", WorkflowID: id,
				Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
					return oneEffect(id), nil
				},
			})
			require.NoError(t, err)
		}
		at := time.Now().UTC()
		c, err := s.ClaimEffects(ctx, store.ClaimParams{Worker: "w", Limit: 2, Now: at,
			LeaseExpiry: at.Add(time.Minute)})
		require.NoError(t, err)
		effects := c.Effects
		require.Len(t, effects, 2)
		var ps []store.CompleteEffectParams
		for _, e := range effects {
			route := &store.ExecuteParams{WorkflowType: "t", WorkflowID: e.WorkflowID, IdempotencyKey: e.ID,
				Decide: func(_ context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
					next := *cur
					next.Version++
					return &store.Write{Instance: &next, Events: []store.Event{{Type: "Done", To: "s"}},
						Input: store.InputRecord{Type: "done", Outcome: store.OutcomeAccepted}}, nil
				}}
			ps = append(ps, store.CompleteEffectParams{EffectID: e.ID, Worker: "w", Status: store.EffectDelivered,
				Now: at, Attempt: store.Attempt{StartedAt: at, StatusCode: 200}, Route: route})
		}
		require.Equal(t, []error{nil, nil}, s.CompleteEffects(ctx, ps))
	}

	c, err := d.pool.Acquire(ctx)
	require.NoError(t, err)
	defer c.Release()
	rows, err := c.Query(ctx, `SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements
WHERE (statement LIKE 'SELECT id, status, locked_by FROM effects%' OR statement LIKE '%UPDATE effects e SET status%')
  AND statement NOT LIKE '%pg_prepared_statements%'`)
	require.NoError(t, err)
	seen := 0
	for rows.Next() {
		var stmt string
		var generic, custom int64
		require.NoError(t, rows.Scan(&stmt, &generic, &custom))
		require.Zero(t, generic, stmt)
		require.GreaterOrEqual(t, custom, int64(completions), stmt)
		seen++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 2, seen, "the lock and the update of the completed effects")
}

// TestInputsKeepTheLatestDefinitionPlan: an input reads the latest definition of its
// one type with a statement whose cached (generic) plan PostgreSQL keeps, the last
// entry of the primary key for the type, instead of planning the lookup at every
// input. One pooled connection, so every input runs on the backend whose prepared
// statements are read at the end.
func TestInputsKeepTheLatestDefinitionPlan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, d := openPool(t, 1)
	const inputs = 12 // past the five custom plans after which a generic one may be kept
	for i := range inputs {
		id := fmt.Sprintf("i-%d", i)
		_, err := s.Execute(ctx, store.ExecuteParams{
			WorkflowType: "t", WorkflowID: id,
			Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
				return oneEffect(id), nil
			},
		})
		require.NoError(t, err)
	}
	var generic, custom int64
	require.NoError(t, d.pool.QueryRow(ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements
WHERE statement LIKE 'SELECT type, version FROM definitions WHERE type = $1%'`).Scan(&generic, &custom))
	require.GreaterOrEqual(t, generic, int64(inputs-5), "the lookup runs on its cached plan")
	require.LessOrEqual(t, custom, int64(5))
}

// TestClaimsCommitWithoutFlush: a claim's statement runs with synchronous_commit off,
// and the setting ends with its transaction (decision 0029).
func TestClaimsCommitWithoutFlush(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, d := openPool(t, 1)
	setting := func(row sqlstore.Row) (string, error) {
		var v string
		return v, row.Scan(&v)
	}
	got, err := claim(ctx, d, setting, `SELECT current_setting('synchronous_commit')`)
	require.NoError(t, err)
	require.Equal(t, []string{"off"}, got)
	var after string
	require.NoError(t, d.pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&after))
	require.Equal(t, "on", after)
}
