package postgres

import (
	"context"
	"fmt"
	"strings"
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
	s, d := openPool(t, 1)
	// Batches of two deliveries with a routed answer, recorded together as the workers'
	// are: the update's statement for many rows.
	const completions = 8 // past the five custom plans after which a generic one may be kept
	completeRouted(t, s, completions, 2)

	plans := preparedPlans(t, d, `statement LIKE 'SELECT id, status, locked_by FROM effects%'
  OR statement LIKE '%UPDATE effects e SET status%'`)
	require.Len(t, plans, 2, "the lock and the update of the completed effects")
	for stmt, p := range plans {
		require.Zero(t, p.generic, stmt)
		require.GreaterOrEqual(t, p.custom, int64(completions), stmt)
	}
}

// TestOneCompletionKeepsItsPlans: a completion recorded alone, as at any moderate load,
// locks and updates its effect with statements of one row, which run on their cached
// (generic) plans instead of being planned each time, and those plans are primary-key
// lookups on a new database, whose tables were never analysed (decision 0033).
func TestOneCompletionKeepsItsPlans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, d := openPool(t, 1)
	const completions = 12
	completeRouted(t, s, completions, 1)

	plans := preparedPlans(t, d, `statement LIKE 'SELECT id, status, locked_by FROM effects%'
  OR statement LIKE '%UPDATE effects e SET status%'`)
	require.Len(t, plans, 2, "the lock and the update of the completed effect")
	c, err := d.pool.Acquire(ctx)
	require.NoError(t, err)
	defer c.Release()
	for stmt, p := range plans {
		require.GreaterOrEqual(t, p.generic, int64(completions-5), stmt)
		require.LessOrEqual(t, p.custom, int64(5), stmt)
		args := "'e'"
		if strings.HasPrefix(stmt, "WITH") { // the update
			args = "'e', 'delivered', now(), '', now(), now(), ''"
		}
		var plan strings.Builder
		rows, err := c.Query(ctx, `EXPLAIN EXECUTE `+p.name+`(`+args+`)`)
		require.NoError(t, err, stmt)
		for rows.Next() {
			var line string
			require.NoError(t, rows.Scan(&line))
			plan.WriteString(line + "\n")
		}
		require.NoError(t, rows.Err(), stmt)
		require.Contains(t, plan.String(), "Index Scan using effects_pkey", stmt)
		require.NotContains(t, plan.String(), "Seq Scan", stmt)
	}
}

// completeRouted records batches of size completed deliveries of type "t", each with a
// routed answer, the batch's completions together, as a worker records them.
func completeRouted(t *testing.T, s *Store, batches, size int) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	storetest.PutWebhook(t, s, "t", now)
	for i := range batches {
		for j := range size {
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
		c, err := s.ClaimEffects(ctx, store.ClaimParams{Worker: "w", Limit: size, Now: at,
			LeaseExpiry: at.Add(time.Minute)})
		require.NoError(t, err)
		require.Len(t, c.Effects, size)
		var ps []store.CompleteEffectParams
		for _, e := range c.Effects {
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
		require.Equal(t, make([]error, size), s.CompleteEffects(ctx, ps))
	}
}

type preparedPlan struct {
	name            string
	generic, custom int64
}

// preparedPlans reads the prepared statements matching cond of the pool's one
// connection, by statement text.
func preparedPlans(t *testing.T, d *driver, cond string) map[string]preparedPlan {
	t.Helper()
	ctx := context.Background()
	rows, err := d.pool.Query(ctx, `SELECT name, statement, generic_plans, custom_plans FROM pg_prepared_statements
WHERE (`+cond+`) AND statement NOT LIKE '%pg_prepared_statements%'`)
	require.NoError(t, err)
	out := map[string]preparedPlan{}
	for rows.Next() {
		var stmt string
		var p preparedPlan
		require.NoError(t, rows.Scan(&p.name, &stmt, &p.generic, &p.custom))
		out[stmt] = p
	}
	require.NoError(t, rows.Err())
	return out
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
	plans := preparedPlans(t, d, `statement LIKE 'SELECT type, version FROM definitions WHERE type = $1%'`)
	require.Len(t, plans, 1, "the lookup of the latest definition")
	for _, p := range plans {
		require.GreaterOrEqual(t, p.generic, int64(inputs-5), "the lookup runs on its cached plan")
		require.LessOrEqual(t, p.custom, int64(5))
	}
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
