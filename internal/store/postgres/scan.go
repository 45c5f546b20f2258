package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// Columns and scanners of each table. JSON and bytea columns scan as stored (every
// write compacts JSON first), SQL NULL as nil. A scanner with a rid parameter scans the
// row's rid first when it is not nil.

const definitionColumns = `type, version, body, hash, created_at`

func scanDefinition(row pgx.Row) (store.Definition, error) {
	var d store.Definition
	if err := row.Scan(&d.Type, &d.Version, (*[]byte)(&d.Body), &d.Hash, &d.CreatedAt); err != nil {
		return store.Definition{}, err
	}
	d.CreatedAt = d.CreatedAt.UTC()
	return d, nil
}

const instanceColumns = `type, id, definition_version, state_name, state_data, status, version, unique_key,
    created_at, updated_at, completed_at`

func scanInstance(row pgx.Row, rid *int64) (store.Instance, error) {
	var in store.Instance
	if err := row.Scan(withRID(rid, &in.Type, &in.ID, &in.DefinitionVersion, &in.StateName, (*[]byte)(&in.StateData),
		&in.Status, &in.Version, &in.UniqueKey, &in.CreatedAt, &in.UpdatedAt, &in.CompletedAt)...); err != nil {
		return store.Instance{}, err
	}
	in.CreatedAt, in.UpdatedAt, in.CompletedAt = in.CreatedAt.UTC(), in.UpdatedAt.UTC(), utcPtr(in.CompletedAt)
	return in, nil
}

const inputColumns = `id, workflow_type, workflow_id, idempotency_key, request_hash, type, data, source,
    outcome, reason, version, response, created_at`

func scanInput(row pgx.Row, rid *int64) (store.InputRecord, error) {
	var in store.InputRecord
	if err := row.Scan(withRID(rid, &in.ID, &in.WorkflowType, &in.WorkflowID, &in.IdempotencyKey, &in.RequestHash,
		&in.Type, (*[]byte)(&in.Data), &in.Source, &in.Outcome, &in.Reason, &in.Version, (*[]byte)(&in.Response),
		&in.CreatedAt)...); err != nil {
		return store.InputRecord{}, err
	}
	in.CreatedAt = in.CreatedAt.UTC()
	return in, nil
}

const eventColumns = `workflow_type, workflow_id, seq, type, from_state, to_state, data, input_type,
    input_id, recorded_at`

func scanEvent(row pgx.Row) (store.Event, error) {
	var e store.Event
	if err := row.Scan(&e.WorkflowType, &e.WorkflowID, &e.Seq, &e.Type, &e.From, &e.To, (*[]byte)(&e.Data),
		&e.InputType, &e.InputID, &e.RecordedAt); err != nil {
		return store.Event{}, err
	}
	e.RecordedAt = e.RecordedAt.UTC()
	return e, nil
}

const effectColumns = `id, workflow_type, workflow_id, seq, name, payload, status, attempts, next_attempt_at,
    locked_by, locked_until, last_error, created_at, updated_at, delivered_at, chain_depth, effect_key,
    max_attempts, initial_interval_ms, max_interval_ms, timeout_ms, state_scoped, on_dead, on_dead_outcome`

func scanEffect(row pgx.Row, rid *int64) (store.Effect, error) {
	var e store.Effect
	var initial, maxInterval, timeout int64
	if err := row.Scan(withRID(rid, &e.ID, &e.WorkflowType, &e.WorkflowID, &e.Seq, &e.Name, (*[]byte)(&e.Payload),
		&e.Status, &e.Attempts, &e.NextAttemptAt, &e.LockedBy, &e.LockedUntil, &e.LastError, &e.CreatedAt,
		&e.UpdatedAt, &e.DeliveredAt, &e.ChainDepth, &e.Key, &e.MaxAttempts, &initial, &maxInterval, &timeout,
		&e.StateScoped, &e.OnDead, &e.OnDeadOutcome)...); err != nil {
		return store.Effect{}, err
	}
	e.InitialInterval, e.MaxInterval, e.Timeout = millis(initial), millis(maxInterval), millis(timeout)
	e.NextAttemptAt, e.CreatedAt, e.UpdatedAt = e.NextAttemptAt.UTC(), e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	e.LockedUntil, e.DeliveredAt = utcPtr(e.LockedUntil), utcPtr(e.DeliveredAt)
	return e, nil
}

const timerColumns = `id, workflow_type, workflow_id, key, fire_at, input_type, input_data, status, attempts,
    next_attempt_at, locked_by, locked_until, last_error, outcome, created_at, updated_at, fired_at`

func scanTimer(row pgx.Row, rid *int64) (store.Timer, error) {
	var t store.Timer
	if err := row.Scan(withRID(rid, &t.ID, &t.WorkflowType, &t.WorkflowID, &t.Key, &t.FireAt, &t.InputType,
		(*[]byte)(&t.InputData), &t.Status, &t.Attempts, &t.NextAttemptAt, &t.LockedBy, &t.LockedUntil, &t.LastError,
		&t.Outcome, &t.CreatedAt, &t.UpdatedAt, &t.FiredAt)...); err != nil {
		return store.Timer{}, err
	}
	t.FireAt, t.NextAttemptAt, t.CreatedAt, t.UpdatedAt = t.FireAt.UTC(), t.NextAttemptAt.UTC(), t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	t.LockedUntil, t.FiredAt = utcPtr(t.LockedUntil), utcPtr(t.FiredAt)
	return t, nil
}

const webhookColumns = `workflow_type, url, secrets, status, created_at, updated_at`

func scanWebhook(row pgx.Row) (store.Webhook, error) {
	var w store.Webhook
	var secrets []byte
	if err := row.Scan(&w.WorkflowType, &w.URL, &secrets, &w.Status, &w.CreatedAt, &w.UpdatedAt); err != nil {
		return store.Webhook{}, err
	}
	var err error
	if w.Secrets, err = sqlstore.DecodeSecrets(secrets); err != nil {
		return store.Webhook{}, fmt.Errorf("webhook %s secrets: %w", w.WorkflowType, err)
	}
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	return w, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func withRID(rid *int64, dest ...any) []any {
	if rid == nil {
		return dest
	}
	return append([]any{rid}, dest...)
}

func noRID[T any](scan func(pgx.Row, *int64) (T, error)) func(pgx.Row) (T, error) {
	return func(row pgx.Row) (T, error) { return scan(row, nil) }
}

// collect scans every row of a query with scan.
func collect[T any](rows pgx.Rows, err error, scan func(pgx.Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
}

// list runs a keyset query over table's rid after after, oldest first, up to limit rows.
func list[T any](ctx context.Context, d *driver, table, columns string, f filters, after int64, limit int,
	scan func(pgx.Row, *int64) (T, error)) ([]sqlstore.Listed[T], error) {
	f.add("rid > ?", after)
	rows, err := d.pool.Query(ctx, `SELECT rid, `+columns+` FROM `+table+f.where()+` ORDER BY rid LIMIT `+f.next(limit), f.args...)
	return collect(rows, err, func(row pgx.Row) (sqlstore.Listed[T], error) {
		var l sqlstore.Listed[T]
		var err error
		l.Item, err = scan(row, &l.RID)
		return l, err
	})
}

// filters builds a WHERE clause of ANDed conditions with numbered parameters.
type filters struct {
	conds []string
	args  []any
}

// add appends cond, in which "?" stands for the parameter arg.
func (f *filters) add(cond string, arg any) {
	f.conds = append(f.conds, strings.Replace(cond, "?", f.next(arg), 1))
}

// addIf appends cond unless arg is "".
func (f *filters) addIf(cond, arg string) {
	if arg != "" {
		f.add(cond, arg)
	}
}

// addStatus appends status = value unless value is "". One of the store's own statuses
// (known) goes into the SQL as a literal rather than a parameter, so that the planner
// can match the partial indexes on status (migrations 000002) even when it settles on a
// generic plan for the cached statement.
func (f *filters) addStatus(value string, known ...string) {
	if slices.Contains(known, value) {
		f.conds = append(f.conds, "status = '"+value+"'")
		return
	}
	f.addIf("status = ?", value)
}

func (f *filters) where() string {
	if len(f.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.conds, " AND ")
}

// next returns the placeholder of the next parameter, arg.
func (f *filters) next(arg any) string {
	f.args = append(f.args, arg)
	return "$" + strconv.Itoa(len(f.args))
}

// millis is a duration kept in whole milliseconds.
func millis(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
