package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkPrune measures retention pruning the oldest day of a database that holds
// what ten days of use leave behind, at several sizes, to show whether a batch costs
// what it deletes or what the tables hold (docs/decisions/0026-sqlite-prune-indexes.md).
// For each size it seeds n finished instances in straight SQL (seedPruneBench), then
// prunes the oldest day in Prune batches of 500, stopping after IRONFLOW_BENCH_PRUNE_CAP
// (default 60s) when the day is not done by then, and reports the median batch
// (ms/batch), the rate (rows/s; rows is how many it deleted) and the time of a call
// that finds nothing to prune (ms/empty). ns/op is the whole run, seeding included:
// read the metrics.
//
// Sizes are IRONFLOW_BENCH_PRUNE_SIZES (comma-separated; default 10000,100000); a
// million instances take about a minute to seed and 1.3 GB of temporary disk:
//
//	IRONFLOW_BENCH_PRUNE_SIZES=100000,1000000 go test ./internal/store/sqlite \
//	    -run '^$' -bench Prune -benchtime 1x -timeout 30m
func BenchmarkPrune(b *testing.B) {
	sizes := []int64{10_000, 100_000}
	if env := os.Getenv("IRONFLOW_BENCH_PRUNE_SIZES"); env != "" {
		sizes = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			require.NoError(b, err, "IRONFLOW_BENCH_PRUNE_SIZES")
			sizes = append(sizes, n)
		}
	}
	limit := 60 * time.Second
	if env := os.Getenv("IRONFLOW_BENCH_PRUNE_CAP"); env != "" {
		var err error
		limit, err = time.ParseDuration(env)
		require.NoError(b, err, "IRONFLOW_BENCH_PRUNE_CAP")
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), "ironflow.db")
			plan := newPruneBenchPlan(n, time.Now())
			t0 := time.Now()
			require.NoError(b, seedPruneBench(ctx, path, plan))
			b.Logf("seeded %d finished and %d running instances in %s", n, n/10, time.Since(t0).Round(time.Second))

			s, _, err := open(ctx, path)
			require.NoError(b, err)
			defer func() { require.NoError(b, s.Close()) }()

			before := plan.start.Add(24 * time.Hour) // the oldest day
			const batch = 500
			var took []time.Duration
			var rows int64
			done := false
			start := time.Now()
			for !done && time.Since(start) < limit {
				t := time.Now()
				pruned, err := s.Prune(ctx, before, batch)
				require.NoError(b, err)
				took = append(took, time.Since(t))
				rows += pruned
				done = pruned == 0
			}
			elapsed := time.Since(start)
			if done {
				took = took[:len(took)-1] // the call that found nothing
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms/batch")
			b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
			b.ReportMetric(float64(rows), "rows")
			b.Logf("pruned %d rows in %d batches in %s (day done: %t)", rows, len(took), elapsed.Round(time.Millisecond), done)

			// A call with nothing to prune, the cutoff before every row: what each
			// batch pays whatever it deletes.
			t := time.Now()
			pruned, err := s.Prune(ctx, plan.start, batch)
			require.NoError(b, err)
			require.Zero(b, pruned)
			b.ReportMetric(float64(time.Since(t).Microseconds())/1000, "ms/empty")
		})
	}
}

// pruneBenchPlan is where the seeded rows lie in time, as the PostgreSQL growth
// seeder lays them out (bench/cmd/ironbench/seed.go): instance k (1 ≤ k ≤ n + n/10) is
// created at start + k·step, spread over ten days ending an hour ago, and is running
// when k % 11 = 0.
type pruneBenchPlan struct {
	total int64
	start time.Time
	step  time.Duration
}

func newPruneBenchPlan(n int64, now time.Time) pruneBenchPlan {
	total := n + n/10
	span := 10 * 24 * time.Hour
	return pruneBenchPlan{total: total, start: now.Add(-time.Hour - span), step: span / time.Duration(total)}
}

// pruneBenchSeed inserts the rows of instances ?1..?2 (?3 start and ?4 step in
// microseconds), one statement per table: each finished instance with 4 inputs, 1
// delivered effect with its attempt and, every tenth, a fired timer; each running one
// with 2 inputs, 1 effect (every tenth dead) and 1 pending timer. Events are left out:
// no prune statement reads them.
var pruneBenchSeed = func() []string {
	const (
		ks   = `WITH RECURSIVE ks(k) AS (SELECT ?1 UNION ALL SELECT k + 1 FROM ks WHERE k < ?2) `
		ts   = `(?3 + k * ?4)`
		typ  = `(CASE k % 4 WHEN 0 THEN 'bench' WHEN 1 THEN 'orders' WHEN 2 THEN 'payments' ELSE 'refunds' END)`
		id   = `printf('o-%010d', k)`
		run  = `(k % 11 = 0)`
		inTs = `(` + ts + ` + (s - 1) * 1000000)`
	)
	// uuid is a UUIDv7-shaped text whose 48-bit millisecond prefix is the row's time.
	uuid := func(at, salt string) string {
		return `printf('%08x-%04x-7%03x-8%03x-%012x', (` + at + `) / 1000 >> 16, (` + at + `) / 1000 & 65535, ` +
			salt + ` & 4095, k & 4095, k)`
	}
	return []string{
		ks + `INSERT INTO instances (type, id, definition_version, state_name, state_data, status, version,
    created_at, updated_at, completed_at)
SELECT ` + typ + `, ` + id + `, 1, CASE WHEN ` + run + ` THEN 'waiting' ELSE 'finished' END, '{"n":1}',
    CASE WHEN ` + run + ` THEN 'running' ELSE 'completed' END, CASE WHEN ` + run + ` THEN 2 ELSE 4 END,
    ` + ts + `, ` + ts + ` + CASE WHEN ` + run + ` THEN 1000000 ELSE 3000000 END,
    CASE WHEN ` + run + ` THEN NULL ELSE ` + ts + ` + 3000000 END
FROM ks`,
		ks + `INSERT INTO inputs (id, workflow_type, workflow_id, type, data, source, outcome, version, response, created_at)
SELECT ` + uuid(inTs, `s`) + `, ` + typ + `, ` + id + `,
    CASE s WHEN 1 THEN 'start' WHEN 4 THEN 'done' ELSE 'tick' END, '{"n":1}',
    CASE WHEN s = 4 THEN 'effect' ELSE 'api' END, 'accepted', s,
    '{"workflow_type":"' || ` + typ + ` || '","workflow_id":"' || ` + id + ` || '","outcome":"accepted","version":' ||
        s || ',"state":"' || CASE s WHEN 4 THEN 'finished' ELSE 'waiting' END || '","effects":[]}',
    ` + inTs + `
FROM ks JOIN (SELECT 1 AS s UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4)
    ON s <= CASE WHEN ` + run + ` THEN 2 ELSE 4 END
ORDER BY k, s`,
		ks + `INSERT INTO effects (id, workflow_type, workflow_id, seq, name, payload, status, attempts,
    next_attempt_at, last_error, created_at, updated_at, delivered_at)
SELECT ` + uuid(ts, `5`) + `, ` + typ + `, ` + id + `, 1, 'call', '{"n":1}',
    CASE WHEN k % 110 = 0 THEN 'dead' ELSE 'delivered' END, 1, ` + ts + `,
    CASE WHEN k % 110 = 0 THEN 'status 500' ELSE '' END, ` + ts + `, ` + ts + ` + 1000000,
    CASE WHEN k % 110 = 0 THEN NULL ELSE ` + ts + ` + 1000000 END
FROM ks`,
		ks + `INSERT INTO effect_attempts (effect_id, number, started_at, duration_us, status_code, error, response,
    routed_outcome)
SELECT ` + uuid(ts, `5`) + `, 1, ` + ts + ` + 500000, 5000, CASE WHEN k % 110 = 0 THEN 500 ELSE 200 END,
    CASE WHEN k % 110 = 0 THEN 'status 500' ELSE '' END, '{"input":{"type":"done"}}',
    CASE WHEN k % 110 = 0 OR ` + run + ` THEN '' ELSE 'accepted' END
FROM ks`,
		ks + `INSERT INTO timers (id, workflow_type, workflow_id, key, fire_at, input_type, input_data, status,
    attempts, next_attempt_at, outcome, created_at, updated_at, fired_at)
SELECT ` + uuid(ts, `6`) + `, ` + typ + `, ` + id + `, 'remind',
    ` + ts + ` + CASE WHEN ` + run + ` THEN 30 * 86400000000 ELSE 2000000 END, 'tick', '{"n":1}',
    CASE WHEN ` + run + ` THEN 'pending' ELSE 'fired' END, CASE WHEN ` + run + ` THEN 0 ELSE 1 END,
    ` + ts + ` + CASE WHEN ` + run + ` THEN 30 * 86400000000 ELSE 2000000 END,
    CASE WHEN ` + run + ` THEN '' ELSE 'accepted' END,
    ` + ts + `, ` + ts + ` + CASE WHEN ` + run + ` THEN 0 ELSE 2000000 END,
    CASE WHEN ` + run + ` THEN NULL ELSE ` + ts + ` + 2000000 END
FROM ks WHERE ` + run + ` OR k % 10 = 0`,
	}
}()

// seedPruneBench migrates a database file at path and fills it as p says, through a
// connection of its own without journal or fsync (a failed seed is thrown away).
func seedPruneBench(ctx context.Context, path string, p pruneBenchPlan) error {
	if err := Migrate(ctx, path); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)"+
		"&_pragma=cache_size(-262144)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	const chunk = 100_000
	for lo := int64(1); lo <= p.total; lo += chunk {
		hi := min(lo+chunk-1, p.total)
		for _, q := range pruneBenchSeed {
			if _, err := db.ExecContext(ctx, q, lo, hi, p.start.UnixMicro(), p.step.Microseconds()); err != nil {
				return fmt.Errorf("seed: %w\n%s", err, q)
			}
		}
	}
	_, err = db.ExecContext(ctx, `PRAGMA journal_mode = WAL`)
	return err
}
