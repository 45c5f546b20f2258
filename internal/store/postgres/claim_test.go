package postgres

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
	"github.com/ironflow/ironflow/internal/store/storetest"
)

// TestClaimReadsOnlyDeliverableRows: a claim of effects reads the due rows it may
// deliver, not those of a type whose endpoint is disabled or missing, nor those of a
// type it is asked to exclude (decision 0032). Counted in the claim's own plan, run with
// EXPLAIN ANALYZE: every row a scan of effects returned or filtered out. With one due
// index in due order, the claim read past all 6,000 undeliverable rows to find three.
func TestClaimReadsOnlyDeliverableRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, d := openPool(t, 2)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, typ := range []string{"live", "off", "busy"} {
		storetest.PutWebhook(t, s, typ, now)
	}
	require.NoError(t, s.SetWebhookStatus(ctx, "off", store.WebhookDisabled, now))
	const hidden = 2000 // per undeliverable type
	_, err := d.pool.Exec(ctx, `
INSERT INTO effects (id, workflow_type, workflow_id, seq, name, status, next_attempt_at, created_at, updated_at)
SELECT t || '-' || g, t, 'w-' || g, 1, 'e', 'pending', $1::timestamptz - g * interval '1 millisecond', $1, $1
FROM unnest($2::text[]) t, generate_series(1, $3) g`, now.Add(-time.Minute),
		[]string{"off", "busy", "none"}, hidden)
	require.NoError(t, err)
	_, err = d.pool.Exec(ctx, `
INSERT INTO effects (id, workflow_type, workflow_id, seq, name, status, next_attempt_at, created_at, updated_at)
SELECT 'live-' || g, 'live', 'w-' || g, 1, 'e', 'pending', $1::timestamptz, $1, $1 FROM generate_series(1, 3) g`, now)
	require.NoError(t, err)
	_, err = d.pool.Exec(ctx, `ANALYZE effects`)
	require.NoError(t, err)

	read := claimRowsRead(t, d, now, []string{"busy"})
	require.Less(t, read, 50, "rows of effects the claim read")

	c, err := s.ClaimEffects(ctx, store.ClaimParams{Worker: "w", Limit: 10, Now: now,
		LeaseExpiry: now.Add(time.Minute), ExcludeTypes: []string{"busy"}})
	require.NoError(t, err)
	require.Len(t, c.Effects, 3)
	for _, e := range c.Effects {
		require.Equal(t, "live", e.WorkflowType)
	}
	require.Equal(t, []string{"live"}, slices.Collect(maps.Keys(c.Endpoints)))
}

// claimRowsRead runs the effect claim under EXPLAIN ANALYZE, rolled back, and returns
// how many rows its scans of effects returned or filtered out.
func claimRowsRead(t *testing.T, d *driver, now time.Time, exclude []string) int {
	t.Helper()
	ctx := context.Background()
	tx, err := d.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { require.NoError(t, tx.Rollback(ctx)) }()
	var plan []byte
	require.NoError(t, tx.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+sqlClaimEffects, "w",
		now.Add(time.Minute), now, 10, exclude, store.LeaseTimeouts).Scan(&plan))
	var root []struct {
		Plan planNode `json:"Plan"`
	}
	require.NoError(t, json.Unmarshal(plan, &root))
	require.Len(t, root, 1)
	return root[0].Plan.rowsRead("effects")
}

// planNode is a node of EXPLAIN's JSON plan, with what rowsRead needs.
type planNode struct {
	Relation       string     `json:"Relation Name"`
	ActualRows     float64    `json:"Actual Rows"`
	ActualLoops    float64    `json:"Actual Loops"`
	RemovedFilter  float64    `json:"Rows Removed by Filter"`
	RemovedRecheck float64    `json:"Rows Removed by Index Recheck"`
	Plans          []planNode `json:"Plans"`
}

// rowsRead sums, over the scans of table in the plan, the rows each returned or removed.
func (n planNode) rowsRead(table string) int {
	read := 0
	if n.Relation == table {
		read += int(n.ActualRows*n.ActualLoops + n.RemovedFilter + n.RemovedRecheck)
	}
	for _, c := range n.Plans {
		read += c.rowsRead(table)
	}
	return read
}

// BenchmarkClaimEffects: a claim beside rows it may not deliver (storetest).
func BenchmarkClaimEffects(b *testing.B) {
	storetest.BenchmarkClaimEffects(b, func(b *testing.B) store.Store {
		s, err := Open(context.Background(), pgtest.MigratedDatabaseURL(b, Migrate))
		require.NoError(b, err)
		b.Cleanup(func() { require.NoError(b, s.Close()) })
		return s
	})
}
