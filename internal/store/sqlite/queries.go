package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// The one-statement methods of the driver: reads on the reader pool, writes in the
// writer's group transaction.

// PutDefinition runs on the writer, which serialises concurrent PUTs of a type.
func (d *driver) PutDefinition(ctx context.Context, typ string, next func(*store.Definition) *store.Definition) (def store.Definition, err error) {
	err = d.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		var latest *store.Definition
		if l, err := scanner.Definition(tx.QueryRowContext(ctx, sqlLatestDefinition, typ)); err == nil {
			latest = &l
		} else if !errors.Is(err, errNoRows) {
			return err
		}
		n := next(latest)
		if n == nil {
			def = *latest
			return nil
		}
		def = *n
		_, err := tx.ExecContext(ctx, `INSERT INTO definitions (`+sqlstore.DefinitionColumns+`) VALUES (?, ?, ?, ?, ?)`,
			n.Type, n.Version, jsonText(n.Body), n.Hash, toMicros(n.CreatedAt))
		return err
	})
	return def, err
}

func (d *driver) GetDefinition(ctx context.Context, typ string, version int) (store.Definition, error) {
	if version == 0 {
		return scanner.Definition(d.read.QueryRowContext(ctx, sqlLatestDefinition, typ))
	}
	return scanner.Definition(d.read.QueryRowContext(ctx, sqlDefinitionVersion, typ, version))
}

func (d *driver) ListDefinitions(ctx context.Context, afterType string, limit int) ([]store.Definition, error) {
	return collect(ctx, d.r, `SELECT `+sqlstore.DefinitionColumns+` FROM definitions d
		 WHERE type > ? AND version = (SELECT MAX(version) FROM definitions WHERE type = d.type)
		 ORDER BY type LIMIT ?`, []any{afterType, limit}, scanner.Definition)
}

func (d *driver) ListDefinitionVersions(ctx context.Context, typ string, afterVersion, limit int) ([]store.Definition, error) {
	return collect(ctx, d.r, `SELECT `+sqlstore.DefinitionColumns+` FROM definitions WHERE type = ? AND version > ? ORDER BY version LIMIT ?`,
		[]any{typ, afterVersion, limit}, scanner.Definition)
}

func (d *driver) GetInstance(ctx context.Context, typ, id string) (store.Instance, error) {
	return scanner.Instance(d.read.QueryRowContext(ctx, sqlInstance, typ, id), nil)
}

func (d *driver) ListInstances(ctx context.Context, p store.ListInstancesParams, after int64, limit int) ([]sqlstore.Listed[store.Instance], error) {
	f := newFilter()
	// The BINARY collation of id orders by bytes: an id prefix is a range of the UNIQUE
	// (type, id) index.
	f.Instances(p, true)
	return list(ctx, d, "instances", sqlstore.InstanceColumns, f, after, limit, scanner.Instance)
}

// CountInstances counts each status in one statement, at most p.Limit rows each.
func (d *driver) CountInstances(ctx context.Context, p store.CountInstancesParams) (store.InstanceCounts, error) {
	var c store.InstanceCounts
	query, args := newFilter().CountQuery(p)
	err := d.r.QueryRowContext(ctx, query, args...).Scan(&c.Running, &c.Completed, &c.Failed, &c.Terminated)
	return c, err
}

func (d *driver) ListEvents(ctx context.Context, typ, id string, afterSeq int64, limit int) ([]store.Event, error) {
	return collect(ctx, d.r, `SELECT `+sqlstore.EventColumns+` FROM events
		 WHERE workflow_type = ? AND workflow_id = ? AND seq > ? ORDER BY seq LIMIT ?`, []any{typ, id, afterSeq, limit}, scanner.Event)
}

func (d *driver) ListInputs(ctx context.Context, typ, id string, after int64, limit int) ([]sqlstore.Listed[store.InputRecord], error) {
	f := newFilter()
	f.Inputs(typ, id)
	return list(ctx, d, "inputs", sqlstore.InputColumns, f, after, limit, scanner.Input)
}

func (d *driver) PutWebhook(ctx context.Context, w store.Webhook, secrets string) (store.Webhook, error) {
	var out store.Webhook
	err := d.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		out, err = scanner.Webhook(tx.QueryRowContext(ctx, `INSERT INTO webhooks (`+sqlstore.WebhookColumns+`) VALUES (?, ?, ?, 'active', ?, ?)
			 ON CONFLICT (workflow_type) DO UPDATE SET
			   url = excluded.url, secrets = excluded.secrets, status = 'active', updated_at = excluded.updated_at
			 RETURNING `+sqlstore.WebhookColumns, w.WorkflowType, w.URL, secrets, toMicros(w.CreatedAt), toMicros(w.UpdatedAt)))
		return err
	})
	return out, err
}

func (d *driver) GetWebhook(ctx context.Context, typ string) (store.Webhook, error) {
	return scanner.Webhook(d.r.QueryRowContext(ctx, `SELECT `+sqlstore.WebhookColumns+` FROM webhooks WHERE workflow_type = ?`, typ))
}

func (d *driver) DeleteWebhook(ctx context.Context, typ string) (bool, error) {
	return d.exec(ctx, `DELETE FROM webhooks WHERE workflow_type = ?`, typ)
}

func (d *driver) SetWebhookStatus(ctx context.Context, typ, status string, now time.Time) (bool, error) {
	return d.exec(ctx, `UPDATE webhooks SET status = ?, updated_at = ? WHERE workflow_type = ?`, status, toMicros(now), typ)
}

// exec runs one write statement and reports whether it changed a row.
func (d *driver) exec(ctx context.Context, query string, args ...any) (bool, error) {
	var n int64
	err := d.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	return n > 0, err
}

func (d *driver) RotateWebhookSecret(ctx context.Context, typ string, now time.Time, rotate func(store.Webhook) (string, error)) (store.Webhook, error) {
	var out store.Webhook
	err := d.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		w, err := scanner.Webhook(tx.QueryRowContext(ctx, `SELECT `+sqlstore.WebhookColumns+` FROM webhooks WHERE workflow_type = ?`, typ))
		if err != nil {
			return err
		}
		secrets, err := rotate(w)
		if err != nil {
			return err
		}
		out, err = scanner.Webhook(tx.QueryRowContext(ctx,
			`UPDATE webhooks SET secrets = ?, updated_at = ? WHERE workflow_type = ? RETURNING `+sqlstore.WebhookColumns,
			secrets, toMicros(now), typ))
		return err
	})
	return out, err
}

// Statements of claims, prepared on the writer (statements.go).
const (
	// sqlClaimEffects claims the earliest due effects the worker may deliver: sends, and
	// the webhook effects of each type with an active endpoint that is not excluded
	// (decision 0032). It reads the due rows of one such endpoint's type at a time
	// through effects_due_by_type, in due order, and the due sends through
	// effects_due_sends, so rows it may not deliver, however many, cost it nothing: a
	// disabled endpoint's backlog, or that of a type whose share of the slots is in use.
	// What it costs grows with the active endpoints instead, one index probe each.
	// Parameters: ?1 worker, ?2 lease expiry, ?3 now, ?4 the lease's timeouts, ?5
	// excluded types (a JSON array), ?6 limit.
	sqlClaimEffects = `UPDATE effects SET locked_by = ?1, locked_until = max(?2, ?3 + timeout_ms * 1000 * ?4)
			 WHERE rid IN (
			   SELECT rid FROM (
			     SELECT e.rid, e.next_attempt_at FROM webhooks w JOIN effects e ON e.rid IN (
			       SELECT f.rid FROM effects f INDEXED BY effects_due_by_type
			       WHERE f.workflow_type = w.workflow_type AND f.send_workflow_type = ''
			         AND f.status = 'pending' AND f.next_attempt_at <= ?3
			         AND (f.locked_until IS NULL OR f.locked_until <= ?3)
			       ORDER BY f.next_attempt_at, f.rid LIMIT ?6)
			     WHERE w.status = 'active' AND w.workflow_type NOT IN (SELECT value FROM json_each(?5))
			     UNION ALL
			     SELECT rid, next_attempt_at FROM (
			       SELECT rid, next_attempt_at FROM effects INDEXED BY effects_due_sends
			       WHERE send_workflow_type <> '' AND status = 'pending' AND next_attempt_at <= ?3
			         AND (locked_until IS NULL OR locked_until <= ?3)
			         AND workflow_type NOT IN (SELECT value FROM json_each(?5))
			       ORDER BY next_attempt_at, rid LIMIT ?6))
			   ORDER BY next_attempt_at, rid LIMIT ?6)
			 RETURNING ` + sqlstore.EffectColumns
	sqlClaimTimers = `UPDATE timers SET locked_by = ?, locked_until = ?
			 WHERE rid IN (
			   SELECT rid FROM timers
			   WHERE status = 'pending' AND next_attempt_at <= ?
			     AND (locked_until IS NULL OR locked_until <= ?)
			   ORDER BY next_attempt_at, rid
			   LIMIT ?)
			 RETURNING ` + sqlstore.TimerColumns
)

// ClaimEffects reads the endpoints of the claimed webhook effects' types in the claim's
// transaction, which saw them active.
func (d *driver) ClaimEffects(ctx context.Context, p store.ClaimParams, limit int) (store.EffectClaim, error) {
	exclude, err := json.Marshal(append([]string{}, p.ExcludeTypes...))
	if err != nil {
		return store.EffectClaim{}, fmt.Errorf("encode excluded types: %w", err)
	}
	c := store.EffectClaim{Endpoints: map[string]store.Webhook{}}
	err = d.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		c.Effects, err = collect(ctx, tx, sqlClaimEffects, []any{p.Worker, toMicros(p.LeaseExpiry), toMicros(p.Now),
			store.LeaseTimeouts, string(exclude), limit}, sqlstore.NoRID(scanner.Effect))
		if err != nil {
			return err
		}
		for _, e := range c.Effects {
			if _, ok := c.Endpoints[e.WorkflowType]; ok || e.SendType != "" {
				continue
			}
			w, err := scanner.Webhook(tx.QueryRowContext(ctx, `SELECT `+sqlstore.WebhookColumns+` FROM webhooks WHERE workflow_type = ?`, e.WorkflowType))
			if err != nil {
				return err
			}
			c.Endpoints[e.WorkflowType] = w
		}
		return nil
	})
	return c, err
}

func (d *driver) ClaimTimers(ctx context.Context, p store.ClaimParams, limit int) ([]store.Timer, error) {
	return claim(ctx, d, sqlClaimTimers, []any{p.Worker, toMicros(p.LeaseExpiry), toMicros(p.Due()), toMicros(p.Now), limit}, sqlstore.NoRID(scanner.Timer))
}

func claim[T any](ctx context.Context, d *driver, query string, args []any, scan func(sqlstore.Row) (T, error)) ([]T, error) {
	var claimed []T
	err := d.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		claimed, err = collect(ctx, tx, query, args, scan)
		return err
	})
	return claimed, err
}

func (d *driver) GetEffect(ctx context.Context, id string) (store.Effect, []store.Attempt, error) {
	e, err := scanner.Effect(d.r.QueryRowContext(ctx, `SELECT `+sqlstore.EffectColumns+` FROM effects WHERE id = ?`, id), nil)
	if err != nil {
		return store.Effect{}, nil, err
	}
	attempts, err := collect(ctx, d.r, `SELECT effect_id, number, started_at, duration_us, status_code, error,
		 response, routed_outcome FROM effect_attempts WHERE effect_id = ? ORDER BY number`, []any{id},
		func(sc sqlstore.Row) (store.Attempt, error) {
			var a store.Attempt
			var dur int64
			err := sc.Scan(&a.EffectID, &a.Number, micros{&a.StartedAt}, &dur, &a.StatusCode, &a.Error, &a.Response,
				&a.RoutedOutcome)
			a.Duration = time.Duration(dur) * time.Microsecond
			return a, err
		})
	return e, attempts, err
}

func (d *driver) ListEffects(ctx context.Context, p store.ListEffectsParams, after int64, limit int) ([]sqlstore.Listed[store.Effect], error) {
	f := newFilter()
	f.Effects(p)
	return list(ctx, d, "effects", sqlstore.EffectColumns, f, after, limit, scanner.Effect)
}

func (d *driver) RetryEffect(ctx context.Context, id string, now time.Time) (store.Effect, error) {
	return update(ctx, d, `UPDATE effects SET status = 'pending', attempts = 0, next_attempt_at = ?1, locked_by = '',
		 locked_until = NULL, updated_at = ?1 WHERE id = ?2 AND status = 'dead' RETURNING `+sqlstore.EffectColumns, scanner.Effect, toMicros(now), id)
}

func (d *driver) CancelEffect(ctx context.Context, id string, now time.Time) (store.Effect, error) {
	// locked_by stays, as in a termination's cancel: the completion of a worker holding
	// it is still recorded.
	return update(ctx, d, `UPDATE effects SET status = 'cancelled', updated_at = ?1
		 WHERE id = ?2 AND status IN ('pending', 'dead') RETURNING `+sqlstore.EffectColumns, scanner.Effect, toMicros(now), id)
}

func (d *driver) RowStatus(ctx context.Context, table, id string) (string, error) {
	var status string
	err := d.r.QueryRowContext(ctx, `SELECT status FROM `+table+` WHERE id = ?`, id).Scan(&status)
	return status, err
}

// ScheduleTimer cancels and inserts on the writer, which serialises it with every
// write of the instance's timers.
func (d *driver) ScheduleTimer(ctx context.Context, t store.Timer) error {
	return d.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		if err := cancelTimerKeys(ctx, tx, t.WorkflowType, t.WorkflowID, []string{t.Key}, t.UpdatedAt); err != nil {
			return err
		}
		return insertTimer(ctx, tx, t)
	})
}

func (d *driver) NextTimerAt(ctx context.Context) (*time.Time, error) {
	var at *time.Time
	err := d.r.QueryRowContext(ctx,
		`SELECT MIN(MAX(next_attempt_at, COALESCE(locked_until, 0))) FROM timers WHERE status = 'pending'`).
		Scan(nullableMicros{&at})
	return at, err
}

func (d *driver) GetTimer(ctx context.Context, id string) (store.Timer, error) {
	return scanner.Timer(d.r.QueryRowContext(ctx, `SELECT `+sqlstore.TimerColumns+` FROM timers WHERE id = ?`, id), nil)
}

func (d *driver) ListTimers(ctx context.Context, p store.ListTimersParams, after int64, limit int) ([]sqlstore.Listed[store.Timer], error) {
	f := newFilter()
	f.Timers(p)
	return list(ctx, d, "timers", sqlstore.TimerColumns, f, after, limit, scanner.Timer)
}

func (d *driver) CancelTimer(ctx context.Context, id string, now time.Time) (store.Timer, error) {
	return update(ctx, d, `UPDATE timers SET status = 'cancelled', locked_by = '', locked_until = NULL, updated_at = ?1
		 WHERE id = ?2 AND status IN ('pending', 'dead') RETURNING `+sqlstore.TimerColumns, scanner.Timer, toMicros(now), id)
}

// RetryTimer runs on the writer, which serialises it with every write of the instance's
// timers.
func (d *driver) RetryTimer(ctx context.Context, id string, now time.Time) (store.Timer, error) {
	t, err := update(ctx, d, `UPDATE timers SET status = 'pending', attempts = 0, next_attempt_at = ?1, locked_by = '',
		 locked_until = NULL, updated_at = ?1 WHERE id = ?2 AND status = 'dead' RETURNING `+sqlstore.TimerColumns, scanner.Timer, toMicros(now), id)
	if isUniqueViolation(err) {
		// A dead timer's key was scheduled again meanwhile; the newer timer wins.
		return t, fmt.Errorf("%w: another pending timer of the instance has the same key", store.ErrWrongStatus)
	}
	return t, err
}

// update runs a status-guarded UPDATE … RETURNING one row on the writer;
// sqlstore.ErrNoMatch when it matched none.
func update[T any](ctx context.Context, d *driver, query string, scan func(sqlstore.Row, *int64) (T, error), args ...any) (T, error) {
	var v T
	err := d.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		v, err = scan(tx.QueryRowContext(ctx, query, args...), nil)
		if errors.Is(err, errNoRows) {
			return sqlstore.ErrNoMatch
		}
		return err
	})
	return v, err
}

// pruneQueries delete one batch each (?1 before, ?2 batch). Rows are picked oldest
// first through an index on the time they are pruned by (migration 000011), which
// carries the rid, so that ties are broken in index order and a batch reads about as
// many rows as it deletes (docs/decisions/0026-sqlite-prune-indexes.md). INDEXED BY
// names it: without statistics (nothing runs ANALYZE) the planner prefers the equality
// on status in effects_status or timers_status, which reads every delivered effect or
// done timer and sorts them. A delivered effect's attempts go with it (ON DELETE
// CASCADE; the writer enforces foreign keys).
var pruneQueries = []string{
	`DELETE FROM effects WHERE rid IN (
    SELECT rid FROM effects INDEXED BY effects_delivered WHERE status = 'delivered' AND delivered_at < ?1
    ORDER BY delivered_at, rid LIMIT ?2)`,
	`DELETE FROM timers WHERE rid IN (
    SELECT rid FROM timers INDEXED BY timers_done WHERE status IN ('fired', 'cancelled') AND updated_at < ?1
    ORDER BY updated_at, rid LIMIT ?2)`,
}

// pruneInputs deletes a batch of the inputs older than ?1 whose instance completed
// before ?1 or never came to exist (a rejected first input), after the position (?3
// created_at, ?4 rid) where the pass's previous batch stopped, and returns the position
// of each row it deleted.
const pruneInputs = `DELETE FROM inputs WHERE rid IN (
    SELECT i.rid FROM inputs i INDEXED BY inputs_created
    WHERE i.created_at < ?1 AND (i.created_at, i.rid) > (?3, ?4)
      AND NOT EXISTS (SELECT 1 FROM instances w WHERE w.type = i.workflow_type AND w.id = i.workflow_id
          AND NOT (w.status = 'completed' AND w.completed_at < ?1))
    ORDER BY i.created_at, i.rid LIMIT ?2)
RETURNING created_at, rid`

// Prune runs the three statements on the writer, in one transaction; the inputs'
// position is the (created_at, rid) of the last input deleted.
func (d *driver) Prune(ctx context.Context, p sqlstore.PruneParams) (int64, sqlstore.PrunePosition, error) {
	var n int64
	to := p.From
	err := d.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		for _, q := range pruneQueries {
			res, err := tx.ExecContext(ctx, q, toMicros(p.Before), p.Batch)
			if err != nil {
				return err
			}
			c, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += c
		}
		rows, err := tx.QueryContext(ctx, pruneInputs, toMicros(p.Before), p.Batch, toMicros(p.From.Created), p.From.RID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var created int64
			var at sqlstore.PrunePosition
			if err := rows.Scan(&created, &at.RID); err != nil {
				return err
			}
			at.Created = fromMicros(created)
			to = to.Later(at)
			n++
		}
		return rows.Err()
	})
	return n, to, err
}

func (d *driver) Stats(ctx context.Context) (store.Stats, error) {
	return scanner.Stats(d.r.QueryRowContext(ctx, sqlstore.StatsQuery))
}

// list runs a keyset query over table's rid after after, oldest first, up to limit rows.
func list[T any](ctx context.Context, d *driver, table, cols string, f sqlstore.Filter, after int64, limit int,
	scan func(sqlstore.Row, *int64) (T, error)) ([]sqlstore.Listed[T], error) {
	query, args := f.Keyset(table, cols, after, limit)
	return collect(ctx, d.r, query, args, sqlstore.ListedOf(scan))
}

// newFilter numbers parameters ?1, ?2, … and passes times as micros.
func newFilter() sqlstore.Filter { return sqlstore.Filter{Mark: "?", Time: params.Time} }

// collect scans every row of a query with scan.
func collect[T any](ctx context.Context, q querier, query string, args []any, scan func(sqlstore.Row) (T, error)) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
