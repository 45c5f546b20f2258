package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The growth seeder fills a migrated PostgreSQL database with what years of use leave
// behind, in straight SQL (generate_series), not through the API: n finished instances
// (4 inputs, 4 events, 1 delivered effect with its attempt each, every tenth one a fired
// timer) and n/10 running ones (2 inputs, 2 events, 1 effect — every tenth one dead —
// and 1 pending timer), their times spread evenly over seedSpan and ending an hour ago,
// so that a retention of seedSpan minus a day has one day's worth to prune.
//
// Instance k (1 ≤ k ≤ total) is created at seedStart + k·step; it is running when
// k % 11 = 0, so ten finished instances come to one running one and rows lie in the
// tables in the order the engine would have written them (rid and gid follow time).
// Ids are what the engine writes: UUIDv7 text for inputs, effects and timers (their
// 48-bit millisecond prefix is the row's time), and client-chosen instance ids
// "o-0000000042" under four types. The secondary indexes and keys are dropped while
// the rows go in and built again afterwards exactly as the migrations defined them.

// seedTypes are the workflow types of the seeded instances (k % 4); each is registered
// with benchDefinition before seeding.
var seedTypes = []string{"bench", "orders", "payments", "refunds"}

const (
	seedSpan  = 10 * 24 * time.Hour
	seedChunk = 500_000 // instances per INSERT statement
)

// seedPlan is where the seeded rows lie in time.
type seedPlan struct {
	n, total int64 // finished instances; all instances (n + n/10)
	start    time.Time
	step     time.Duration // between two instances' creations
}

func newSeedPlan(n int64, now time.Time) seedPlan {
	total := n + n/10
	start := now.Add(-time.Hour - seedSpan)
	return seedPlan{n: n, total: total, start: start, step: seedSpan / time.Duration(max(total, 1))}
}

// at is the creation time of instance k.
func (p seedPlan) at(k int64) time.Time { return p.start.Add(time.Duration(k) * p.step) }

// SQL helpers shared by the statements below: $1, $2 are the chunk's first and last k,
// $3 seedStart, $4 the step in microseconds.
const (
	seedTs   = `($3::timestamptz + (k * $4::bigint) * interval '1 microsecond')`
	seedType = `(ARRAY['bench','orders','payments','refunds'])[k % 4 + 1]`
	seedID   = `('o-' || lpad(k::text, 10, '0'))`
	seedRun  = `(k % 11 = 0)`
)

// seedUUID is a UUIDv7 text whose time is ts and whose random part comes from salt.
func seedUUID(ts, salt string) string {
	h := `lpad(to_hex((extract(epoch FROM ` + ts + `) * 1000)::bigint), 12, '0')`
	r := `md5(` + salt + `)`
	return `(substr(` + h + `, 1, 8) || '-' || substr(` + h + `, 9, 4) || '-7' || substr(` + r + `, 1, 3) || '-8' ||
    substr(` + r + `, 4, 3) || '-' || substr(` + r + `, 7, 12))`
}

// seedStatements insert the rows of instances $1..$2, one statement per table.
func seedStatements() []struct{ table, sql string } {
	evTs := `(` + seedTs + ` + (s - 1) * interval '1 second')`
	inputID := seedUUID(evTs, `'i' || k || '.' || s`)
	effectID := seedUUID(seedTs, `'e' || k`)
	steps := `CROSS JOIN LATERAL generate_series(1, CASE WHEN ` + seedRun + ` THEN 2 ELSE 4 END) s`
	return []struct{ table, sql string }{
		{"instances", `INSERT INTO instances (type, id, definition_version, state_name, state_data, status, version,
    created_at, updated_at, completed_at)
SELECT ` + seedType + `, ` + seedID + `, 1,
    CASE WHEN ` + seedRun + ` THEN 'waiting' ELSE 'finished' END, '{"n":1}',
    CASE WHEN ` + seedRun + ` THEN 'running' ELSE 'completed' END,
    CASE WHEN ` + seedRun + ` THEN 2 ELSE 4 END,
    ` + seedTs + `,
    ` + seedTs + ` + CASE WHEN ` + seedRun + ` THEN interval '1 second' ELSE interval '3 seconds' END,
    CASE WHEN ` + seedRun + ` THEN NULL ELSE ` + seedTs + ` + interval '3 seconds' END
FROM generate_series($1::bigint, $2::bigint) k`},
		{"events", `INSERT INTO events (workflow_type, workflow_id, seq, type, from_state, to_state, data,
    input_type, input_id, recorded_at)
SELECT ` + seedType + `, ` + seedID + `, s,
    (ARRAY['Started','Ticked','Ticked','Finished'])[s],
    (ARRAY['new','waiting','waiting','waiting'])[s],
    (ARRAY['waiting','waiting','waiting','finished'])[s],
    '{"n":1}', (ARRAY['start','tick','tick','done'])[s], ` + inputID + `, ` + evTs + `
FROM generate_series($1::bigint, $2::bigint) k ` + steps + `
ORDER BY k, s`},
		{"inputs", `INSERT INTO inputs (id, workflow_type, workflow_id, type, data, source, outcome, version,
    response, created_at)
SELECT ` + inputID + `, ` + seedType + `, ` + seedID + `,
    (ARRAY['start','tick','tick','done'])[s], '{"n":1}',
    CASE WHEN s = 4 THEN 'effect' ELSE 'api' END, 'accepted', s,
    convert_to('{"workflow_type":"' || ` + seedType + ` || '","workflow_id":"' || ` + seedID +
			` || '","outcome":"accepted","version":' || s || ',"state":"' ||
        (ARRAY['waiting','waiting','waiting','finished'])[s] || '","effects":[]}', 'UTF8'),
    ` + evTs + `
FROM generate_series($1::bigint, $2::bigint) k ` + steps + `
ORDER BY k, s`},
		{"effects", `INSERT INTO effects (id, workflow_type, workflow_id, seq, name, payload, status, attempts,
    next_attempt_at, last_error, created_at, updated_at, delivered_at)
SELECT ` + effectID + `, ` + seedType + `, ` + seedID + `, 1, 'call', '{"n":1}',
    CASE WHEN k % 110 = 0 THEN 'dead' ELSE 'delivered' END, 1, ` + seedTs + `,
    CASE WHEN k % 110 = 0 THEN 'status 500' ELSE '' END,
    ` + seedTs + `, ` + seedTs + ` + interval '1 second',
    CASE WHEN k % 110 = 0 THEN NULL ELSE ` + seedTs + ` + interval '1 second' END
FROM generate_series($1::bigint, $2::bigint) k`},
		{"effect_attempts", `INSERT INTO effect_attempts (effect_id, number, started_at, duration_ns, status_code,
    error, response, routed_outcome)
SELECT ` + effectID + `, 1, ` + seedTs + ` + interval '500 milliseconds', 5000000,
    CASE WHEN k % 110 = 0 THEN 500 ELSE 200 END,
    CASE WHEN k % 110 = 0 THEN 'status 500' ELSE '' END,
    convert_to('{"input":{"type":"done"}}', 'UTF8'),
    CASE WHEN k % 110 = 0 OR ` + seedRun + ` THEN '' ELSE 'accepted' END
FROM generate_series($1::bigint, $2::bigint) k`},
		{"timers", `INSERT INTO timers (id, workflow_type, workflow_id, key, fire_at, input_type, input_data, status,
    attempts, next_attempt_at, outcome, created_at, updated_at, fired_at)
SELECT ` + seedUUID(seedTs, `'t' || k`) + `, ` + seedType + `, ` + seedID + `, 'remind',
    CASE WHEN ` + seedRun + ` THEN ` + seedTs + ` + interval '30 days' ELSE ` + seedTs + ` + interval '2 seconds' END,
    'tick', '{"n":1}',
    CASE WHEN ` + seedRun + ` THEN 'pending' ELSE 'fired' END,
    CASE WHEN ` + seedRun + ` THEN 0 ELSE 1 END,
    CASE WHEN ` + seedRun + ` THEN ` + seedTs + ` + interval '30 days' ELSE ` + seedTs + ` + interval '2 seconds' END,
    CASE WHEN ` + seedRun + ` THEN '' ELSE 'accepted' END,
    ` + seedTs + `,
    ` + seedTs + ` + CASE WHEN ` + seedRun + ` THEN interval '0' ELSE interval '2 seconds' END,
    CASE WHEN ` + seedRun + ` THEN NULL ELSE ` + seedTs + ` + interval '2 seconds' END
FROM generate_series($1::bigint, $2::bigint) k
WHERE ` + seedRun + ` OR k % 10 = 0`},
	}
}

// seedTables are the tables the seeder writes, whose keys and indexes it rebuilds.
var seedTables = []string{"instances", "events", "inputs", "effects", "effect_attempts", "timers"}

// seed fills the database at url as the plan says, logging progress through logf.
func seed(ctx context.Context, url string, p seedPlan, logf func(string, ...any)) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range []string{`SET synchronous_commit = off`, `SET maintenance_work_mem = '1GB'`, `SET work_mem = '64MB'`} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return err
		}
	}
	// What the migrations built, to build again once the rows are in: foreign keys
	// last, after the keys they reference.
	var keys, fkeys, indexes []string
	rows, err := conn.Query(ctx, `SELECT c.conrelid::regclass::text, c.conname, c.contype::text, pg_get_constraintdef(c.oid)
FROM pg_constraint c WHERE c.conrelid = ANY($1::regclass[]) AND c.contype IN ('p', 'u', 'f')
ORDER BY c.contype = 'f', c.conname`, seedTables)
	if err != nil {
		return err
	}
	var drops []string
	for rows.Next() {
		var table, name, typ, def string
		if err := rows.Scan(&table, &name, &typ, &def); err != nil {
			return err
		}
		add := `ALTER TABLE ` + table + ` ADD CONSTRAINT ` + pgx.Identifier{name}.Sanitize() + ` ` + def
		if typ == "f" {
			fkeys = append(fkeys, add)
			drops = append([]string{`ALTER TABLE ` + table + ` DROP CONSTRAINT ` + pgx.Identifier{name}.Sanitize()}, drops...)
		} else {
			keys = append(keys, add)
			drops = append(drops, `ALTER TABLE `+table+` DROP CONSTRAINT `+pgx.Identifier{name}.Sanitize())
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = conn.Query(ctx, `SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i WHERE i.indrelid = ANY($1::regclass[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)`, seedTables)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return err
		}
		indexes = append(indexes, def)
		drops = append(drops, `DROP INDEX `+name)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, s := range drops {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	t0 := time.Now()
	for lo := int64(1); lo <= p.total; lo += seedChunk {
		hi := min(lo+seedChunk-1, p.total)
		for _, st := range seedStatements() {
			if _, err := conn.Exec(ctx, st.sql, lo, hi, p.start, p.step.Microseconds()); err != nil {
				return fmt.Errorf("seed %s: %w", st.table, err)
			}
		}
		logf("growth: seeded instances %d–%d of %d (%s)", lo, hi, p.total, time.Since(t0).Round(time.Second))
	}
	for _, s := range append(append(keys, indexes...), fkeys...) {
		t := time.Now()
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		logf("growth: %s (%s)", s, time.Since(t).Round(time.Second))
	}
	// What autovacuum would have done over the days the rows span: hint bits, the
	// visibility map (index-only scans) and the planner's statistics.
	for _, t := range seedTables {
		tt := time.Now()
		if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) `+t); err != nil {
			return err
		}
		logf("growth: vacuum analyze %s (%s)", t, time.Since(tt).Round(time.Second))
	}
	return nil
}
