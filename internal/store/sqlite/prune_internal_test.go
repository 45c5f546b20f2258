package sqlite

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// TestPruneTakesAttemptsWithTheirEffect: Prune deletes only effects and relies on the
// foreign key's ON DELETE CASCADE for their attempts, which the conformance suite
// cannot see (a pruned effect's attempts are unreachable through the Store).
func TestPruneTakesAttemptsWithTheirEffect(t *testing.T) {
	t.Parallel()
	s, d := openDriver(t)
	ctx := context.Background()
	old := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Microsecond)
	res, err := s.Execute(ctx, store.ExecuteParams{WorkflowType: "t", WorkflowID: "i",
		Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
			return &store.Write{
				Instance: &store.Instance{DefinitionVersion: 1, StateName: "s", StateData: json.RawMessage(`{}`)},
				Events:   []store.Event{{Type: "E", To: "s"}},
				Effects:  []store.Effect{{Name: "e", CreatedAt: old}},
				Input:    store.InputRecord{Type: "go", Outcome: store.OutcomeAccepted, CreatedAt: old},
			}, nil
		}})
	require.NoError(t, err)
	_, err = s.PutWebhook(ctx, store.Webhook{WorkflowType: "t", URL: "https://example.com/hooks/t",
		Secrets: []store.WebhookSecret{{Secret: "whsec_t"}}, CreatedAt: old, UpdatedAt: old})
	require.NoError(t, err)
	c, err := s.ClaimEffects(ctx, store.ClaimParams{Worker: "w", Limit: 1, Now: old, LeaseExpiry: old.Add(time.Minute)})
	require.NoError(t, err)
	claimed := c.Effects
	require.Len(t, claimed, 1)
	require.NoError(t, s.CompleteEffect(ctx, store.CompleteEffectParams{EffectID: res.Write.Effects[0].ID, Worker: "w",
		Status: store.EffectDelivered, Now: old, Attempt: store.Attempt{StartedAt: old, StatusCode: 200}}))
	attempts := func() (n int) {
		require.NoError(t, d.r.QueryRowContext(ctx, `SELECT count(*) FROM effect_attempts`).Scan(&n))
		return n
	}
	require.Equal(t, 1, attempts())

	n, err := s.Prune(ctx, time.Now(), 100)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the delivered effect")
	require.Zero(t, attempts(), "its attempt went with it")
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
