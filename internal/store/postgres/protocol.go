package postgres

import (
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// Begin runs fn in one batchTx: Load is the first round trip (with BEGIN), Write holds
// its statements for the second, which carries the COMMIT. serial changes nothing: the
// instances are locked from Load to the commit anyway.
func (d *driver) Begin(ctx context.Context, _ bool, fn func(sqlstore.Tx) error) error {
	return d.withTx(ctx, func(tx *batchTx) error { return fn(protocolTx{tx, &d.defs}) })
}

type protocolTx struct {
	tx   *batchTx
	defs *definitionCache
}

// Load locks the instances with a transaction-scoped advisory lock on a hash of each
// key, which every writer of an instance takes first, whether or not the instance exists
// yet (so a new instance needs no placeholder row: decision 0008), in r's order; then,
// after the locks (a new statement, so a new snapshot in READ COMMITTED, which sees what
// a transaction we waited for committed), reads the instances, the latest definition
// version of their types, the earlier inputs and the claimed rows' holders, locking the
// claimed rows. The instance rows are not locked: only a holder of the advisory lock
// writes one (decision 0023). One round trip, and a second only for a definition
// version this process has not read before (definitions).
func (p protocolTx) Load(ctx context.Context, r sqlstore.LoadRequest) (*sqlstore.Snapshot, error) {
	snap := &sqlstore.Snapshot{Instances: map[sqlstore.Key]*store.Instance{}, Earlier: map[sqlstore.Key]*store.InputRecord{},
		Holders: map[string]sqlstore.Holder{}}
	b := &pgx.Batch{}
	types, ids := make([]string, len(r.Instances)), make([]string, len(r.Instances))
	for k, key := range r.Instances {
		types[k], ids[k] = key.Type, key.ID
	}
	wanted := make(map[sqlstore.Key]bool, len(r.Instances))
	for _, k := range r.Instances {
		wanted[k] = true
	}
	collectInstances := func(rows pgx.Rows) error {
		for rows.Next() {
			inst, err := scanner.Instance(rows, nil)
			if err != nil {
				return err
			}
			if k := (sqlstore.Key{Type: inst.Type, ID: inst.ID}); wanted[k] {
				snap.Instances[k] = &inst
			}
		}
		return rows.Err()
	}
	switch len(r.Instances) {
	case 0:
	case 1: // the statements of one input, whose plans are the simplest
		// A type name never contains '/', so type/id is unambiguous.
		b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))`, types[0], ids[0])
		b.Queue(`SELECT `+sqlstore.InstanceColumns+` FROM instances WHERE type = $1 AND id = $2`, types[0], ids[0]).
			Query(collectInstances)
	default:
		// unnest yields the pairs in array order, so the locks are taken in that order.
		b.Queue(`SELECT count(pg_advisory_xact_lock(hashtextextended(t || '/' || i, 0)))
FROM unnest($1::text[], $2::text[]) AS u(t, i)`, types, ids)
		// Each pair is looked up by the primary key on its own (LATERAL … LIMIT 1 keeps
		// the planner from flattening it): a join with unnest of the pairs, or
		// "type = ANY … AND id = ANY …", was planned as a scan of the whole table when
		// its statistics were young, and a statement's cached plan kept it.
		const keyed = `unnest($1::text[], $2::text[]) AS u(t, id) CROSS JOIN LATERAL (
    SELECT * FROM instances WHERE type = u.t AND id = u.id LIMIT 1) i`
		b.Queue(`SELECT `+prefixed("i.", sqlstore.InstanceColumns)+` FROM `+keyed, types, ids).Query(collectInstances)
	}
	latest := map[string]int{}
	collectLatest := func(rows pgx.Rows) error {
		for rows.Next() {
			var typ string
			var version int
			if err := rows.Scan(&typ, &version); err != nil {
				return err
			}
			latest[typ] = version
		}
		return rows.Err()
	}
	switch ts := distinct(types); len(ts) {
	case 0:
	case 1:
		// One type, as every input and most batches have: the last entry of the
		// primary key for it, a plan PostgreSQL keeps cached and that costs little to
		// make. The array form below was planned afresh at every call, inputs'
		// and completions' alike: about 45 µs each, against 10 µs to run it.
		b.Queue(`SELECT type, version FROM definitions WHERE type = $1 ORDER BY version DESC LIMIT 1`, ts[0]).
			Query(collectLatest)
	default:
		b.Queue(`SELECT type, max(version) FROM definitions WHERE type = ANY($1) GROUP BY type`, ts).
			Query(collectLatest)
	}
	for k, key := range r.IdempotencyKeys {
		b.Queue(`SELECT `+sqlstore.InputColumns+` FROM inputs
WHERE workflow_type = $1 AND workflow_id = $2 AND idempotency_key = $3`, k.Type, k.ID, key).
			QueryRow(func(row pgx.Row) error {
				in, err := scanner.Input(row, nil)
				if errors.Is(err, pgx.ErrNoRows) {
					return nil
				}
				snap.Earlier[k] = &in
				return err
			})
	}
	collectHolders := func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var h sqlstore.Holder
			if err := rows.Scan(&id, &h.Status, &h.LockedBy); err != nil {
				return err
			}
			snap.Holders[id] = h
		}
		return rows.Err()
	}
	switch len(r.Claimed) {
	case 0:
	case 1:
		// One completion, as at any moderate load: statements of one row each, whose
		// cached (generic) plans are primary-key lookups even on a new table, so
		// nothing is planned per completion (decision 0033).
		b.Queue(`SELECT id, status, locked_by FROM `+r.Table+` WHERE id = $1 FOR UPDATE`, r.Claimed[0]).
			Query(collectHolders)
	default:
		// A batch of completions plans its statements for the rows at hand. The cached
		// (generic) plans of the statements for many rows (id = ANY, UPDATE … FROM
		// unnest) were made when the table was young: on a new database, every
		// completion scanned the whole effects table to lock and update a few rows, by
		// id, until autovacuum's first ANALYZE (a minute or more), and at 1,500
		// workflows a second that cost more than everything else the database did
		// (decision 0029). The setting ends with the transaction; its planning is
		// shared by the batch's rows.
		b.Queue(`SET LOCAL plan_cache_mode = force_custom_plan`)
		b.Queue(`SELECT id, status, locked_by FROM `+r.Table+` WHERE id = ANY($1) ORDER BY id FOR UPDATE`, r.Claimed).
			Query(collectHolders)
	}
	if err := p.tx.Send(ctx, b); err != nil {
		return nil, err
	}
	return snap, p.definitions(ctx, snap, r.Instances, latest)
}

// definitions adds to snap the definition each instance of keys is decided with: the
// version it is pinned to, or the latest of its type (latest) for a new one; none when
// its type has none. They come from the cache, and those it lacks from one more round
// trip, which caches them.
func (p protocolTx) definitions(ctx context.Context, snap *sqlstore.Snapshot, keys []sqlstore.Key, latest map[string]int) error {
	var types []string
	var versions []int
	seen := map[defKey]bool{}
	for _, k := range keys {
		version, ok := latest[k.Type]
		if in := snap.Instances[k]; in != nil {
			version, ok = in.DefinitionVersion, true
		}
		dk := defKey{k.Type, version}
		if !ok || seen[dk] {
			continue
		}
		seen[dk] = true
		if d, ok := p.defs.get(dk); ok {
			snap.AddDefinition(d)
			continue
		}
		types, versions = append(types, dk.typ), append(versions, dk.version)
	}
	if len(types) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+sqlstore.DefinitionColumns+` FROM definitions
WHERE (type, version) IN (SELECT * FROM unnest($1::text[], $2::integer[]))`, types, versions).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				d, err := scanner.Definition(rows)
				if err != nil {
					return err
				}
				p.defs.put(d)
				snap.AddDefinition(d)
			}
			return rows.Err()
		})
	return p.tx.Send(ctx, b)
}

// distinct returns ss without repeats, in order.
func distinct(ss []string) []string {
	out := make([]string, 0, 1)
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Write holds the statements that write rows, one per table (unnest) where a batch has
// several, to be sent with the COMMIT.
func (p protocolTx) Write(_ context.Context, r *sqlstore.Rows) error {
	b := &pgx.Batch{}
	if len(r.Created)+len(r.Updated) == 1 {
		for _, in := range r.Created {
			instanceInsert.queueOne(b, params.Instance(in))
		}
		for _, in := range r.Updated {
			// An instance's parent and link ($12…) are set when it is created and never change.
			b.Queue(`UPDATE instances SET definition_version = $3, state_name = $4, state_data = $5,
    status = $6, version = $7, unique_key = $8, created_at = $9, updated_at = $10, completed_at = $11
WHERE type = $1 AND id = $2`, params.Instance(in)[:11]...)
		}
	} else {
		// New instances are inserted plainly: the advisory lock held since Load keeps any
		// other writer from creating one, and an upsert's speculative insertion costs
		// each row more. Those that existed are updated by an upsert, which finds each row
		// by the primary key whatever the table's statistics (an UPDATE … FROM unnest is
		// planned, and may be planned for a young table).
		instanceInsert.queue(b, sqlstore.MapRows(r.Created, params.Instance))
		instanceUpsert.queue(b, sqlstore.MapRows(r.Updated, params.Instance))
	}
	eventInsert.queue(b, sqlstore.MapRows(r.Events, params.Event))
	inputInsert.queue(b, sqlstore.MapRows(r.Inputs, params.Input))
	for _, c := range r.EffectCancels {
		// locked_by stays: the completion of a worker holding one is still recorded.
		b.Queue(`UPDATE effects SET status = 'cancelled', updated_at = $3
WHERE workflow_type = $1 AND workflow_id = $2 AND status = 'pending'
  AND (state_scoped OR NOT $4 OR ($5 AND send_on_parent_end = 'terminate'))`,
			c.Type, c.ID, c.At, c.StateScoped, c.ChildSends)
	}
	effectInsert.queue(b, sqlstore.MapRows(r.Effects, effectRow))
	for _, c := range r.Cancels {
		if c.All {
			b.Queue(`UPDATE timers SET status = 'cancelled', locked_by = '', locked_until = NULL, updated_at = $3
WHERE workflow_type = $1 AND workflow_id = $2 AND status = 'pending'`, c.Type, c.ID, c.At)
			continue
		}
		b.Queue(`UPDATE timers SET status = 'cancelled', locked_by = '', locked_until = NULL, updated_at = $4
WHERE workflow_type = $1 AND workflow_id = $2 AND key = ANY($3) AND status = 'pending'`, c.Type, c.ID, c.Keys, c.At)
	}
	for _, t := range r.Timers {
		queueInsertTimer(b, t)
	}
	attemptInsert.queue(b, sqlstore.MapRows(r.EffectCompletions, attemptRow))
	effectUpdate.queue(b, sqlstore.MapRows(r.EffectCompletions, params.EffectCompletion))
	timerUpdate.queue(b, sqlstore.MapRows(r.TimerCompletions, params.TimerCompletion))
	p.tx.Hold(b)
	return nil
}

func queueInsertTimer(b *pgx.Batch, t store.Timer) {
	b.Queue(`INSERT INTO timers (id, workflow_type, workflow_id, key, fire_at, input_type, input_data,
    status, attempts, next_attempt_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11)`,
		t.ID, t.WorkflowType, t.WorkflowID, t.Key, t.FireAt, t.InputType, jsonParam(t.InputData),
		t.Status, t.NextAttemptAt, t.CreatedAt, t.UpdatedAt)
}

// BatchInputs is true: a transaction costs two round trips and a commit, which a batch
// of concurrent inputs shares (docs/decisions/0023-batched-inputs.md).
func (d *driver) BatchInputs() bool { return true }
