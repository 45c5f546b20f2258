package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// The protocol transaction. A decision does not hold the writer: Load locks its
// instances in process (sqlstore.KeyLocks: other inputs to them wait, nobody else does)
// and reads on the reader pool, the store decides, and Write hands the rows to the
// writer, which first checks that the instances and claimed rows are as Load read them
// (another process may share the file) and answers sqlstore.ErrStale when not. After
// repeated ErrStale the store asks for a serial transaction, which runs Load, decision
// and Write on the writer, as every write once did.

// BatchInputs is false: the writer already commits concurrent inputs' rows in one
// group, and each input reads on the reader pool without waiting for the others
// (docs/decisions/0023-batched-inputs.md).
func (d *driver) BatchInputs() bool { return false }

// Begin runs fn: optimistically, or with serial on the writer.
func (d *driver) Begin(ctx context.Context, serial bool, fn func(sqlstore.Tx) error) error {
	t := &ptx{d: d}
	defer func() {
		if t.unlock != nil {
			t.unlock()
		}
	}()
	if !serial {
		return fn(t)
	}
	return d.inTx(ctx, func(_ context.Context, w *wtx) error {
		t.w = w
		return fn(t)
	})
}

type ptx struct {
	d      *driver
	w      *wtx // set in a serial transaction
	unlock func()
	req    sqlstore.LoadRequest
	snap   *sqlstore.Snapshot
}

// Load reads what r names: on the reader pool after locking the instances in process,
// or on the writer in a serial transaction (which takes no in-process lock: the writer
// goroutine must never wait for a caller that waits for the writer).
func (t *ptx) Load(ctx context.Context, r sqlstore.LoadRequest) (*sqlstore.Snapshot, error) {
	var q querier = t.w
	t.unlock = func() {}
	if t.w == nil {
		q = t.d.read
		t.unlock = t.d.locks.Lock(r.Instances)
	}
	snap := &sqlstore.Snapshot{Earlier: map[sqlstore.Key]*store.InputRecord{}}
	var err error
	latest := map[string]int{} // the latest definition version of a type, where known
	if snap.Instances, err = readInstances(ctx, q, r.Instances, latest); err != nil {
		return nil, err
	}
	if err := t.d.readDefinitions(ctx, q, snap, r.Instances, latest); err != nil {
		return nil, err
	}
	for k, key := range r.IdempotencyKeys {
		in, err := scanner.Input(q.QueryRowContext(ctx, sqlInputByKey, k.Type, k.ID, key), nil)
		if err == nil {
			snap.Earlier[k] = &in
		} else if !errors.Is(err, errNoRows) {
			return nil, err
		}
	}
	if snap.Holders, err = readHolders(ctx, q, r.Table, r.Claimed); err != nil {
		return nil, err
	}
	t.req, t.snap = r, snap
	return snap, nil
}

// readInstances reads the instances of keys, one statement per type. The statement of
// one instance also reads the latest definition version of its type into latest.
func readInstances(ctx context.Context, q querier, keys []sqlstore.Key, latest map[string]int) (map[sqlstore.Key]*store.Instance, error) {
	found := make(map[sqlstore.Key]*store.Instance, len(keys))
	if len(keys) == 1 {
		var inst store.Instance
		var v int
		if err := q.QueryRowContext(ctx, sqlInstanceAndLatest, keys[0].Type, keys[0].ID).Scan(append(scanner.InstanceDest(&inst), &v)...); err != nil {
			return nil, err
		}
		if latest[keys[0].Type] = v; inst.ID != "" {
			found[keys[0]] = &inst
		}
		return found, nil
	}
	for typ, ids := range idsByType(keys) {
		rows, err := q.QueryContext(ctx, sqlInstancesOf, typ, ids)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			inst, err := scanner.Instance(rows, nil)
			if err != nil {
				rows.Close()
				return nil, err
			}
			found[sqlstore.Key{Type: inst.Type, ID: inst.ID}] = &inst
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// readDefinitions adds to snap the definitions decisions on keys are made by: each
// instance's pinned version, and the latest of the type for one that does not exist.
// A definition version never changes, so each is read once per process.
func (d *driver) readDefinitions(ctx context.Context, q querier, snap *sqlstore.Snapshot, keys []sqlstore.Key, latest map[string]int) error {
	for _, k := range keys {
		var version int
		if inst := snap.Instances[k]; inst != nil {
			version = inst.DefinitionVersion
		} else if v, ok := latest[k.Type]; ok {
			version = v
		} else {
			err := q.QueryRowContext(ctx, sqlLatestVersion, k.Type).Scan(&version)
			if err != nil {
				return err
			}
			latest[k.Type] = version
		}
		if version == 0 || snap.Definitions[k.Type][version] != nil {
			continue
		}
		key := sqlstore.Key{Type: k.Type, ID: strconv.Itoa(version)}
		if def, ok := d.defs.Load(key); ok {
			snap.AddDefinition(def.(store.Definition))
			continue
		}
		def, err := scanner.Definition(q.QueryRowContext(ctx, sqlDefinitionVersion, k.Type, version))
		if errors.Is(err, errNoRows) {
			continue // pinned to a version that is not stored: decided without one
		}
		if err != nil {
			return err
		}
		d.defs.Store(key, def)
		snap.AddDefinition(def)
	}
	return nil
}

// readHolders reads the status and holder of rows ids of table.
func readHolders(ctx context.Context, q querier, table string, ids []string) (map[string]sqlstore.Holder, error) {
	holders := make(map[string]sqlstore.Holder, len(ids))
	if len(ids) == 0 {
		return holders, nil
	}
	rows, err := q.QueryContext(ctx, sqlHolders(table), jsonList(ids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var h sqlstore.Holder
		if err := rows.Scan(&id, &h.Status, &h.LockedBy); err != nil {
			return nil, err
		}
		holders[id] = h
	}
	return holders, rows.Err()
}

// Write writes rows on the writer: at once in a serial transaction, else in the next
// write group after checking the snapshot.
func (t *ptx) Write(ctx context.Context, rows *sqlstore.Rows) error {
	if t.w != nil {
		return writeRows(ctx, t.w, rows)
	}
	return t.d.inTx(ctx, func(ctx context.Context, w *wtx) error {
		if err := t.check(ctx, w); err != nil {
			return err
		}
		err := writeRows(ctx, w, rows)
		if isUniqueViolation(err) && strings.Contains(err.Error(), "idempotency_key") {
			return sqlstore.ErrStale // an input with the key came meanwhile: replay it
		}
		return err
	})
}

// check returns sqlstore.ErrStale unless the instances and claimed rows are as Load
// read them: every write of an instance changes its version.
func (t *ptx) check(ctx context.Context, w *wtx) error {
	if len(t.req.Instances) == 1 { // an input: the plain primary-key read
		k, read := t.req.Instances[0], t.snap.Instances[t.req.Instances[0]]
		var v int64
		err := w.QueryRowContext(ctx, sqlInstanceVersion, k.Type, k.ID).Scan(&v)
		if errors.Is(err, errNoRows) != (read == nil) || err == nil && v != read.Version {
			return sqlstore.ErrStale
		}
		if err != nil && !errors.Is(err, errNoRows) {
			return err
		}
	}
	for typ, ids := range idsByType(t.req.Instances) {
		if len(t.req.Instances) == 1 {
			break
		}
		versions := map[string]int64{}
		rows, err := w.QueryContext(ctx, sqlInstanceVersions, typ, ids)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var v int64
			if err := rows.Scan(&id, &v); err != nil {
				rows.Close()
				return err
			}
			versions[id] = v
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		for _, k := range t.req.Instances {
			v, exists := versions[k.ID]
			read := t.snap.Instances[k]
			if k.Type == typ && (exists != (read != nil) || exists && v != read.Version) {
				return sqlstore.ErrStale
			}
		}
	}
	holders, err := readHolders(ctx, w, t.req.Table, t.req.Claimed)
	if err != nil {
		return err
	}
	for _, id := range t.req.Claimed {
		h, ok := holders[id]
		was, had := t.snap.Holders[id]
		if ok != had || h != was {
			return sqlstore.ErrStale
		}
	}
	return nil
}

// writeRows writes rows in tx, one multi-row statement per table where there are several.
func writeRows(ctx context.Context, tx *wtx, r *sqlstore.Rows) error {
	var instances [][]any
	for _, inst := range r.Instances() {
		if err := checkUniqueKey(ctx, tx, inst); err != nil {
			return err
		}
		instances = append(instances, params.Instance(inst))
	}
	if err := instanceUpsert.exec(ctx, tx, instances); err != nil {
		return err
	}
	if err := eventInsert.exec(ctx, tx, sqlstore.MapRows(r.Events, params.Event)); err != nil {
		return err
	}
	if err := inputInsert.exec(ctx, tx, sqlstore.MapRows(r.Inputs, params.Input)); err != nil {
		return err
	}
	for _, c := range r.EffectCancels {
		if _, err := tx.ExecContext(ctx, sqlCancelEffects, toMicros(c.At), c.Type, c.ID, c.StateScoped, c.ChildSends); err != nil {
			return fmt.Errorf("cancel effects: %w", err)
		}
	}
	for _, e := range r.Effects {
		if _, err := tx.ExecContext(ctx, sqlInsertEffect, e.ID, e.WorkflowType, e.WorkflowID, e.Seq, e.Name,
			jsonText(e.Payload), toMicros(e.NextAttemptAt), toMicros(e.CreatedAt), toMicros(e.UpdatedAt), e.ChainDepth,
			e.Key, e.MaxAttempts, e.InitialInterval.Milliseconds(), e.MaxInterval.Milliseconds(), e.Timeout.Milliseconds(),
			e.StateScoped, e.OnDead, e.SendType, e.SendID, e.SendChild.OnCompleted, e.SendChild.OnFailed,
			e.SendChild.OnParentEnd, jsonText(e.Item), e.ItemIndex); err != nil {
			return fmt.Errorf("insert effect %s: %w", e.Name, err)
		}
	}
	for _, c := range r.Cancels {
		if c.All {
			if _, err := tx.ExecContext(ctx, sqlCancelAllTimers, toMicros(c.At), c.Type, c.ID); err != nil {
				return fmt.Errorf("cancel timers: %w", err)
			}
			continue
		}
		if err := cancelTimerKeys(ctx, tx, c.Type, c.ID, c.Keys, c.At); err != nil {
			return err
		}
	}
	for _, t := range r.Timers {
		if err := insertTimer(ctx, tx, t); err != nil {
			return err
		}
	}
	if err := attemptInsert.exec(ctx, tx, sqlstore.MapRows(r.EffectCompletions, func(c sqlstore.EffectCompletion) []any {
		a := c.Attempt
		return []any{a.EffectID, toMicros(a.StartedAt), a.Duration.Microseconds(), a.StatusCode, a.Error, a.Response,
			a.RoutedOutcome}
	})); err != nil {
		return err
	}
	if err := effectUpdate.exec(ctx, tx, sqlstore.MapRows(r.EffectCompletions, params.EffectCompletion)); err != nil {
		return err
	}
	return timerUpdate.exec(ctx, tx, sqlstore.MapRows(r.TimerCompletions, params.TimerCompletion))
}

// checkUniqueKey fails with store.ErrUniqueKeyConflict when inst is running with a
// unique key that another running instance of its type holds.
func checkUniqueKey(ctx context.Context, tx *wtx, inst *store.Instance) error {
	if inst.Status != store.StatusRunning || inst.UniqueKey == "" {
		return nil
	}
	var holder string
	err := tx.QueryRowContext(ctx, sqlUniqueKeyHolder, inst.Type, inst.UniqueKey, inst.ID).Scan(&holder)
	switch {
	case err == nil:
		return fmt.Errorf("key %q held by %s: %w", inst.UniqueKey, holder, store.ErrUniqueKeyConflict)
	case !errors.Is(err, errNoRows):
		return err
	}
	return nil
}

// cancelTimerKeys cancels the instance's pending timers with the given keys.
func cancelTimerKeys(ctx context.Context, tx *wtx, typ, id string, keys []string, at time.Time) error {
	args := []any{toMicros(at), typ, id}
	for _, k := range keys {
		args = append(args, k)
	}
	if _, err := tx.ExecContext(ctx, cancelTimerKeysSQL(len(keys)), args...); err != nil {
		return fmt.Errorf("cancel timers: %w", err)
	}
	return nil
}

func insertTimer(ctx context.Context, tx *wtx, t store.Timer) error {
	if _, err := tx.ExecContext(ctx, sqlInsertTimer, t.ID, t.WorkflowType, t.WorkflowID, t.Key, toMicros(t.FireAt),
		t.InputType, jsonText(t.InputData), t.Status, toMicros(t.NextAttemptAt), toMicros(t.CreatedAt),
		toMicros(t.UpdatedAt)); err != nil {
		return fmt.Errorf("insert timer %s: %w", t.Key, err)
	}
	return nil
}

// idsByType groups the ids of keys by type, each group as a JSON list (json_each).
func idsByType(keys []sqlstore.Key) map[string]string {
	byType := map[string][]string{}
	for _, k := range keys {
		byType[k.Type] = append(byType[k.Type], k.ID)
	}
	lists := make(map[string]string, len(byType))
	for typ, ids := range byType {
		lists[typ] = jsonList(ids)
	}
	return lists
}

func jsonList(ids []string) string {
	b, _ := json.Marshal(ids) // strings always marshal
	return string(b)
}

// Statements of the decision path.
const (
	// The "idempotency_key <> ''" and "unique_key <> ''" terms are implied by the
	// callers (they run these only for a non-empty key) but SQLite cannot infer them from
	// "= ?": without them the partial unique indexes are not used and the lookups scan
	// every input of the instance, or every running instance.
	sqlInputByKey = `SELECT ` + sqlstore.InputColumns + ` FROM inputs
		WHERE workflow_type = ? AND workflow_id = ? AND idempotency_key = ? AND idempotency_key <> ''`
	sqlUniqueKeyHolder = `SELECT id FROM instances
		WHERE type = ? AND unique_key = ? AND status = 'running' AND unique_key <> '' AND id <> ?`
	sqlInstance = `SELECT ` + sqlstore.InstanceColumns + ` FROM instances WHERE type = ? AND id = ?`
	// sqlInstanceAndLatest reads an instance (zero values when it does not exist) and
	// the latest definition version of its type (0: none) in one statement.
	sqlInstanceAndLatest = `SELECT coalesce(i.type, ''), coalesce(i.id, ''), coalesce(i.definition_version, 0),
		coalesce(i.state_name, ''), i.state_data, coalesce(i.status, ''), coalesce(i.version, 0),
		coalesce(i.unique_key, ''), coalesce(i.created_at, 0), coalesce(i.updated_at, 0), i.completed_at,
		coalesce(i.parent_workflow_type, ''), coalesce(i.parent_workflow_id, ''), coalesce(i.on_completed, ''),
		coalesce(i.on_failed, ''), coalesce(i.on_parent_end, ''),
		coalesce((SELECT max(version) FROM definitions WHERE type = ?1), 0)
		FROM (SELECT 1) LEFT JOIN instances i ON i.type = ?1 AND i.id = ?2`
	sqlLatestVersion = `SELECT coalesce(max(version), 0) FROM definitions WHERE type = ?`
	// json_each takes a list of ids as one parameter.
	sqlInstancesOf       = `SELECT ` + sqlstore.InstanceColumns + ` FROM instances WHERE type = ? AND id IN (SELECT value FROM json_each(?))`
	sqlInstanceVersions  = `SELECT id, version FROM instances WHERE type = ? AND id IN (SELECT value FROM json_each(?))`
	sqlInstanceVersion   = `SELECT version FROM instances WHERE type = ? AND id = ?`
	sqlLatestDefinition  = `SELECT ` + sqlstore.DefinitionColumns + ` FROM definitions WHERE type = ? ORDER BY version DESC LIMIT 1`
	sqlDefinitionVersion = `SELECT ` + sqlstore.DefinitionColumns + ` FROM definitions WHERE type = ? AND version = ?`
	sqlInsertEffect      = `INSERT INTO effects (id, workflow_type, workflow_id, seq, name, payload, status, attempts,
		                      next_attempt_at, created_at, updated_at, chain_depth, effect_key, max_attempts,
		                      initial_interval_ms, max_interval_ms, timeout_ms, state_scoped, on_dead,
		                      send_workflow_type, send_workflow_id, send_on_completed, send_on_failed, send_on_parent_end,
		                      item, item_index)
		 VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlInsertTimer = `INSERT INTO timers (id, workflow_type, workflow_id, key, fire_at, input_type, input_data, status,
		                     attempts, next_attempt_at, created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`
)

// sqlHolders reads the status and holder of rows of table by id, like sqlInstancesOf.
func sqlHolders(table string) string {
	return `SELECT id, status, locked_by FROM ` + table + ` WHERE id IN (SELECT value FROM json_each(?))`
}

// sqlCancelEffects cancels the pending effects of one instance (only the state-scoped
// ones when its fourth parameter is true, and with its fifth the sends of children that
// end with their parent); locked_by stays, so the completion of a worker holding one is
// still recorded (sqlstore.EffectCancel).
const sqlCancelEffects = `UPDATE effects SET status = 'cancelled', updated_at = ?
		 WHERE workflow_type = ? AND workflow_id = ? AND status = 'pending'
		   AND (state_scoped OR NOT ? OR (? AND send_on_parent_end = 'terminate'))`

// sqlCancelAllTimers cancels every pending timer of one instance.
const sqlCancelAllTimers = `UPDATE timers SET status = 'cancelled', locked_by = '', locked_until = NULL, updated_at = ?
		 WHERE workflow_type = ? AND workflow_id = ? AND status = 'pending'`

// cancelTimerKeysSQL cancels the pending timers with n keys of one instance.
func cancelTimerKeysSQL(n int) string {
	return `UPDATE timers SET status = 'cancelled', locked_by = '', locked_until = NULL, updated_at = ?
		 WHERE workflow_type = ? AND workflow_id = ? AND status = 'pending'
		   AND key IN (?` + strings.Repeat(", ?", n-1) + `)`
}

// The writes of the protocol's rows, one row at a time or many (rows.go).
var (
	instanceUpsert = newRowWrite(`INSERT INTO instances (type, id, definition_version, state_name, state_data,
		                        status, version, unique_key, created_at, updated_at, completed_at,
		                        parent_workflow_type, parent_workflow_id, on_completed, on_failed, on_parent_end)`, 16, `
		 ON CONFLICT (type, id) DO UPDATE SET
		   definition_version = excluded.definition_version,
		   state_name = excluded.state_name,
		   state_data = excluded.state_data,
		   status = excluded.status,
		   version = excluded.version,
		   unique_key = excluded.unique_key,
		   updated_at = excluded.updated_at,
		   completed_at = excluded.completed_at`)
	eventInsert = newRowWrite(`INSERT INTO events (workflow_type, workflow_id, seq, type, from_state, to_state, data,
		                     input_type, input_id, recorded_at)`, 10, "")
	inputInsert = newRowWrite(`INSERT INTO inputs (id, workflow_type, workflow_id, idempotency_key, request_hash, type,
		                     data, source, outcome, reason, version, response, created_at)`, 13, "")
	// An attempt is numbered after the effect's earlier ones.
	attemptInsert = newRowWrite(`WITH v(effect_id, started_at, duration_us, status_code, error, response, routed_outcome) AS (`, 7, `)
		 INSERT INTO effect_attempts (effect_id, number, started_at, duration_us, status_code, error, response, routed_outcome)
		 SELECT v.effect_id, coalesce((SELECT max(a.number) FROM effect_attempts a WHERE a.effect_id = v.effect_id), 0) + 1,
		        v.started_at, v.duration_us, v.status_code, v.error, v.response, v.routed_outcome
		   FROM v`)
	// An on_dead outcome, once there, stays (the input runs once per effect).
	effectUpdate = newRowWrite(`WITH v(id, status, next_attempt_at, last_error, delivered_at, updated_at, on_dead_outcome) AS (`, 7, `)
		 UPDATE effects SET status = v.status, attempts = attempts + 1, next_attempt_at = v.next_attempt_at,
		        last_error = v.last_error, delivered_at = v.delivered_at, locked_by = '', locked_until = NULL,
		        updated_at = v.updated_at,
		        on_dead_outcome = coalesce(nullif(effects.on_dead_outcome, ''), v.on_dead_outcome)
		   FROM v WHERE effects.id = v.id`)
	timerUpdate = newRowWrite(`WITH v(id, status, next_attempt_at, last_error, outcome, fired_at, updated_at) AS (`, 7, `)
		 UPDATE timers SET status = v.status, attempts = attempts + 1, next_attempt_at = v.next_attempt_at,
		        last_error = v.last_error, outcome = v.outcome, fired_at = v.fired_at,
		        locked_by = '', locked_until = NULL, updated_at = v.updated_at
		   FROM v WHERE timers.id = v.id`)
)
