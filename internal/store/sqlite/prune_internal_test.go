package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
	"github.com/ironflow/ironflow/internal/store/storetest"
)

// TestPruneTakesAttemptsWithTheirEffect: the foreign key's ON DELETE CASCADE takes a
// pruned effect's attempts.
func TestPruneTakesAttemptsWithTheirEffect(t *testing.T) {
	t.Parallel()
	s, d := openDriver(t)
	storetest.PruneTakesAttempts(t, s, func() (n int) {
		require.NoError(t, d.r.QueryRowContext(context.Background(), `SELECT count(*) FROM effect_attempts`).Scan(&n))
		return n
	})
}

// queryPlan is the EXPLAIN QUERY PLAN of query, one line per step, indented by depth.
func queryPlan(t *testing.T, d *driver, query string, args ...any) []string {
	t.Helper()
	rows, err := d.r.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	depth := map[int]int{}
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		depth[id] = depth[parent] + 1
		plan = append(plan, strings.Repeat("  ", depth[id]-1)+detail)
	}
	require.NoError(t, rows.Err())
	return plan
}

// requireIndexedPlan fails when a step of the plan reads a whole table or index
// ("SCAN") or sorts ("TEMP B-TREE"): the statement would cost what the table holds.
func requireIndexedPlan(t *testing.T, plan []string) {
	t.Helper()
	for _, step := range plan {
		s := strings.TrimSpace(step)
		require.False(t, strings.HasPrefix(s, "SCAN ") || strings.Contains(s, "TEMP B-TREE"),
			"plan step %q:\n%s", s, strings.Join(plan, "\n"))
	}
}

// TestPruneReadsThroughTimeIndexes: every prune statement finds its rows through the
// index on the time it prunes by (migration 000011), in the order it deletes them, so a
// batch costs what it deletes however large the tables are; without the indexes each
// read every delivered effect, timer or old input and sorted them
// (docs/decisions/0026-sqlite-prune-indexes.md).
func TestPruneReadsThroughTimeIndexes(t *testing.T) {
	t.Parallel()
	_, d := openDriver(t)
	for _, q := range pruneQueries {
		requireIndexedPlan(t, queryPlan(t, d, q, 0, 500))
	}
	requireIndexedPlan(t, queryPlan(t, d, pruneInputs, 0, 500, 0, 0))
}

// TestCreatedRangeListsThroughIndex: a list with a creation time range pages through
// instances_created in (created_at, rid) order, on its first page and after a cursor.
func TestCreatedRangeListsThroughIndex(t *testing.T) {
	t.Parallel()
	_, d := openDriver(t)
	day := time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)
	for _, p := range []store.ListInstancesParams{
		{CreatedAfter: day, CreatedBefore: day.Add(24 * time.Hour)},
		{CreatedAfter: day},
		{CreatedBefore: day},
	} {
		for _, after := range []int64{0, 42} {
			f := newFilter()
			f.Instances(p, true)
			query, args := f.Keyset("instances", sqlstore.InstanceColumns, after, 50)
			requireIndexedPlan(t, queryPlan(t, d, query, args...))
		}
	}
}
