package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// The one-statement methods of the driver.

func (d *driver) PutDefinition(ctx context.Context, typ string, next func(*store.Definition) *store.Definition) (def store.Definition, err error) {
	err = d.withTx(ctx, func(tx *batchTx) error {
		var latest *store.Definition
		b := &pgx.Batch{}
		// Concurrent PUTs of one type are serialised by a lock on the type.
		b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended('ironflow.definition:' || $1, 0))`, typ)
		b.Queue(`SELECT `+sqlstore.DefinitionColumns+` FROM definitions WHERE type = $1 ORDER BY version DESC LIMIT 1`, typ).
			QueryRow(func(row pgx.Row) error {
				d, err := scanner.Definition(row)
				if errors.Is(err, pgx.ErrNoRows) {
					return nil
				}
				latest = &d
				return err
			})
		if err := tx.Send(ctx, b); err != nil {
			return err
		}
		if n := next(latest); n != nil {
			def, err = scanner.Definition(tx.QueryRow(ctx, `INSERT INTO definitions (type, version, body, hash, created_at)
VALUES ($1, $2, $3, $4, $5) RETURNING `+sqlstore.DefinitionColumns, n.Type, n.Version, jsonParam(n.Body), n.Hash, n.CreatedAt))
			return err
		}
		def = *latest
		return nil
	})
	return def, err
}

func (d *driver) GetDefinition(ctx context.Context, typ string, version int) (store.Definition, error) {
	if version == 0 {
		return scanner.Definition(d.pool.QueryRow(ctx, `SELECT `+sqlstore.DefinitionColumns+` FROM definitions
WHERE type = $1 ORDER BY version DESC LIMIT 1`, typ))
	}
	return scanner.Definition(d.pool.QueryRow(ctx, `SELECT `+sqlstore.DefinitionColumns+` FROM definitions
WHERE type = $1 AND version = $2`, typ, version))
}

func (d *driver) ListDefinitions(ctx context.Context, afterType string, limit int) ([]store.Definition, error) {
	rows, err := d.pool.Query(ctx, `SELECT DISTINCT ON (type) `+sqlstore.DefinitionColumns+`
FROM definitions WHERE type > $1 ORDER BY type, version DESC LIMIT $2`, afterType, limit)
	return collect(rows, err, scanner.Definition)
}

func (d *driver) ListDefinitionVersions(ctx context.Context, typ string, afterVersion, limit int) ([]store.Definition, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+sqlstore.DefinitionColumns+`
FROM definitions WHERE type = $1 AND version > $2 ORDER BY version LIMIT $3`, typ, afterVersion, limit)
	return collect(rows, err, scanner.Definition)
}

func (d *driver) GetInstance(ctx context.Context, typ, id string) (store.Instance, error) {
	return scanner.Instance(d.pool.QueryRow(ctx, `SELECT `+sqlstore.InstanceColumns+` FROM instances WHERE type = $1 AND id = $2`, typ, id), nil)
}

func (d *driver) ListInstances(ctx context.Context, p store.ListInstancesParams, after int64, limit int) ([]sqlstore.Listed[store.Instance], error) {
	f := newFilter()
	// Always true now that instances are locked without placeholder rows (decision
	// 0008), but it lets the list use the partial indexes migration 000002 made.
	f.Conds = append(f.Conds, "status <> ''")
	f.RowCond = "status <> ''"
	// Where the database orders text byte by byte (collation C, POSIX, C.UTF-8), an id
	// prefix is a range of the (type, id) primary key. Without a type, the prefix is
	// made one range per type, the types read from the same key one index probe each
	// (a loose index scan), instead of a scan of every instance: 4 ms instead of 450 ms
	// for a prefix nothing matches among a million instances
	// (docs/decisions/0024-data-growth.md).
	if p.IDPrefix != "" && p.Type == "" && d.byteOrder {
		f.Conds = append(f.Conds, anyInstanceType)
		f.Key = append(f.Key, anyInstanceType)
	}
	f.Instances(p, d.byteOrder)
	if p.IDPrefix != "" && d.byteOrder && !f.ByCreated {
		query, args := prefixPage(f, after, limit, d.prefixWindow)
		rows, err := d.pool.Query(ctx, query, args...)
		return collect(rows, err, sqlstore.ListedOf(scanner.Instance))
	}
	return list(ctx, d, "instances", sqlstore.InstanceColumns, f, after, limit, scanner.Instance)
}

// prefixWindow is how many instances after the cursor a list with an id prefix checks
// in rid order before it reads the prefix's rids from the (type, id) key (prefixPage).
const prefixWindow = 1000

// prefixPage is the page query of a list with an id prefix (f.Key its conditions on the
// (type, id) key) after the rid after. Paged by rid alone, the planner reckons the
// prefix's rows spread evenly over the rids, so for a deep cursor it walks the rids
// after it and checks each row's id; but ids given in order (o-0000000042) put a
// prefix's rows in one stretch of rids, and the page after the last of them read every
// later instance (100 ms at 2,200,000 instances for a prefix of 100,000 ids, 360-520 ms
// at 5,500,000). Read from the key first, a page cost the prefix's rows instead, every
// page: a prefix of every id would cost the table.
//
// So a page costs the smaller of the two, bounded: the window, the next window rows
// after the cursor in rid order, is checked first; when it holds the page, or reaches
// the last instance, that is the page. Otherwise the rest of the page comes from the
// prefix's rids after the window, read from the key alone (its index carries rid,
// migration 000010), and only those rows are fetched, in rid order. A prefix whose rows
// are dense after the cursor is served by the window; a sparse one costs its ids, read
// from the key (25 ms for 100,000 of four types on a loaded 2-core machine; decision
// 0025). Neither part hangs on the planner's estimates: the generic plan of the
// statement is its custom plan.
func prefixPage(f sqlstore.Filter, after int64, limit, window int) (string, []any) {
	x, l, w := f.Next(after), f.Next(limit), strconv.Itoa(window)
	// The rows come by rid from the key, so they need no other check of it; and any
	// type (anyInstanceType) holds for every row.
	var conds []string
	for _, c := range f.Conds {
		if c != anyInstanceType {
			conds = append(conds, c)
		}
	}
	key, cond := strings.Join(f.Key, " AND "), strings.Join(conds, " AND ")
	cols := `rid, ` + sqlstore.InstanceColumns
	return `WITH w AS MATERIALIZED (
  SELECT rid, (` + cond + `) AS hit FROM instances WHERE status <> '' AND rid > ` + x + ` ORDER BY rid LIMIT ` + w + `),
e AS (SELECT coalesce(max(rid), ` + x + `) AS last, count(*) = ` + w + ` AND count(*) FILTER (WHERE hit) < ` + l + ` AS more FROM w)
SELECT ` + cols + ` FROM (
  (SELECT ` + cols + ` FROM instances WHERE status <> '' AND rid = ANY(ARRAY(SELECT rid FROM w WHERE hit ORDER BY rid LIMIT ` + l + `)))
  UNION ALL
  (SELECT ` + cols + ` FROM instances WHERE ` + cond + ` AND rid > (SELECT last FROM e) AND (SELECT more FROM e)
    AND rid = ANY(ARRAY(SELECT rid FROM instances WHERE ` + key + ` AND rid > (SELECT last FROM e)))
    ORDER BY rid LIMIT ` + l + `)) page
ORDER BY rid LIMIT ` + l, f.Args
}

// anyInstanceType is the condition that the instance's type is one of the types of
// instances, listed by walking the primary key from one type to the next.
const anyInstanceType = `type = ANY(ARRAY(WITH RECURSIVE t(type) AS (
    SELECT min(type) FROM instances
    UNION ALL SELECT (SELECT min(i.type) FROM instances i WHERE i.type > t.type) FROM t WHERE t.type IS NOT NULL)
  SELECT type FROM t WHERE type IS NOT NULL))`

// CountInstances counts each status in one statement, each through the partial
// (status, rid) index and at most p.Limit rows of it.
func (d *driver) CountInstances(ctx context.Context, p store.CountInstancesParams) (store.InstanceCounts, error) {
	var c store.InstanceCounts
	query, args := newFilter().CountQuery(p, "status <> ''")
	err := d.pool.QueryRow(ctx, query, args...).Scan(&c.Running, &c.Completed, &c.Failed, &c.Terminated)
	return c, err
}

func (d *driver) ListEvents(ctx context.Context, typ, id string, afterSeq int64, limit int) ([]store.Event, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+sqlstore.EventColumns+` FROM events
WHERE workflow_type = $1 AND workflow_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`, typ, id, afterSeq, limit)
	return collect(rows, err, scanner.Event)
}

func (d *driver) ListInputs(ctx context.Context, typ, id string, after int64, limit int) ([]sqlstore.Listed[store.InputRecord], error) {
	f := newFilter()
	f.Inputs(typ, id)
	return list(ctx, d, "inputs", sqlstore.InputColumns, f, after, limit, scanner.Input)
}

func (d *driver) PutWebhook(ctx context.Context, w store.Webhook, secrets string) (store.Webhook, error) {
	return scanner.Webhook(d.pool.QueryRow(ctx, `INSERT INTO webhooks (workflow_type, url, secrets, status, created_at, updated_at)
VALUES ($1, $2, $3, 'active', $4, $5)
ON CONFLICT (workflow_type) DO UPDATE
SET url = excluded.url, secrets = excluded.secrets, status = 'active', updated_at = excluded.updated_at
RETURNING `+sqlstore.WebhookColumns, w.WorkflowType, w.URL, secrets, w.CreatedAt, w.UpdatedAt))
}

func (d *driver) GetWebhook(ctx context.Context, typ string) (store.Webhook, error) {
	return scanner.Webhook(d.pool.QueryRow(ctx, `SELECT `+sqlstore.WebhookColumns+` FROM webhooks WHERE workflow_type = $1`, typ))
}

func (d *driver) DeleteWebhook(ctx context.Context, typ string) (bool, error) {
	ct, err := d.pool.Exec(ctx, `DELETE FROM webhooks WHERE workflow_type = $1`, typ)
	return ct.RowsAffected() > 0, err
}

func (d *driver) SetWebhookStatus(ctx context.Context, typ, status string, now time.Time) (bool, error) {
	ct, err := d.pool.Exec(ctx, `UPDATE webhooks SET status = $2, updated_at = $3 WHERE workflow_type = $1`, typ, status, now)
	return ct.RowsAffected() > 0, err
}

func (d *driver) RotateWebhookSecret(ctx context.Context, typ string, now time.Time, rotate func(store.Webhook) (string, error)) (store.Webhook, error) {
	var out store.Webhook
	err := d.withTx(ctx, func(tx *batchTx) error {
		w, err := scanner.Webhook(tx.QueryRow(ctx, `SELECT `+sqlstore.WebhookColumns+` FROM webhooks WHERE workflow_type = $1 FOR UPDATE`, typ))
		if err != nil {
			return err
		}
		secrets, err := rotate(w)
		if err != nil {
			return err
		}
		out, err = scanner.Webhook(tx.QueryRow(ctx, `UPDATE webhooks SET secrets = $2, updated_at = $3
WHERE workflow_type = $1 RETURNING `+sqlstore.WebhookColumns, typ, secrets, now))
		return err
	})
	return out, err
}

// claim runs a claim statement, whose transaction commits without waiting for its WAL
// flush. A lease needs no flush of its own: lost in a crash, it leaves its row to be
// claimed and delivered (or fired) again, as at least once allows, and the answer routed
// from it is keyed by the row, so it is still applied once. The completion that ends the
// lease commits synchronously, which flushes the WAL up to the claim's record too.
// Waiting for a flush per claim put a disk wait between every commit of an input and
// its delivery (decision 0029).
func claim[T any](ctx context.Context, d *driver, scan func(sqlstore.Row) (T, error), query string, args ...any) ([]T, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	var out []T
	b.Queue(query, args...).Query(func(rows pgx.Rows) error {
		var err error
		out, err = collect(rows, nil, scan)
		return err
	})
	return out, d.pool.SendBatch(ctx, b).Close()
}

// sqlClaimEffects claims the earliest due effects the worker may deliver: sends, and
// the webhook effects of each type with an active endpoint that is not excluded
// (decision 0032). It reads the due rows of one such endpoint's type at a time through
// effects_due_by_type, in due order, and the due sends through effects_due_sends, so
// rows it may not deliver, however many, cost it nothing: a disabled endpoint's
// backlog, or that of a type whose share of the slots is in use. What it costs grows
// with the active endpoints instead, one index probe each. Each branch locks what it
// reads, skipping rows another claim holds; rows a branch locked beyond the limit are
// freed at the claim's commit. Parameters: $1 worker, $2 lease expiry, $3 now, $4
// limit, $5 excluded types, $6 the lease's timeouts.
var sqlClaimEffects = `
WITH hooks AS (
    SELECT f.id, f.next_attempt_at
    FROM webhooks w
    CROSS JOIN LATERAL (
        SELECT f.id, f.next_attempt_at FROM effects f
        WHERE f.workflow_type = w.workflow_type AND f.send_workflow_type = ''
          AND f.status = 'pending' AND f.next_attempt_at <= $3
          AND (f.locked_until IS NULL OR f.locked_until <= $3)
        ORDER BY f.next_attempt_at
        LIMIT $4
        FOR UPDATE OF f SKIP LOCKED
    ) f
    WHERE w.status = 'active' AND NOT (w.workflow_type = ANY($5::text[]))
), sends AS (
    SELECT f.id, f.next_attempt_at FROM effects f
    WHERE f.send_workflow_type <> '' AND f.status = 'pending' AND f.next_attempt_at <= $3
      AND (f.locked_until IS NULL OR f.locked_until <= $3)
      AND NOT (f.workflow_type = ANY($5::text[]))
    ORDER BY f.next_attempt_at
    LIMIT $4
    FOR UPDATE OF f SKIP LOCKED
), due AS (
    SELECT id FROM (SELECT * FROM hooks UNION ALL SELECT * FROM sends) d
    ORDER BY next_attempt_at
    LIMIT $4
), claimed AS (
    UPDATE effects e SET locked_by = $1,
        locked_until = greatest($2, $3 + e.timeout_ms * $6 * interval '1 millisecond')
    FROM due WHERE e.id = due.id
    RETURNING ` + prefixed("e.", sqlstore.EffectColumns) + `
)
SELECT c.*, coalesce(w.workflow_type, ''), coalesce(w.url, ''), w.secrets, coalesce(w.status, ''),
    coalesce(w.created_at, c.created_at), coalesce(w.updated_at, c.updated_at)
FROM claimed c LEFT JOIN webhooks w ON c.send_workflow_type = '' AND w.workflow_type = c.workflow_type`

// ClaimEffects claims and reads the endpoints in one statement: the endpoint of each
// webhook effect is joined to it in the snapshot in which the claim found it active.
func (d *driver) ClaimEffects(ctx context.Context, p store.ClaimParams, limit int) (store.EffectClaim, error) {
	type row struct {
		e store.Effect
		w store.Webhook
	}
	rows, err := claim(ctx, d, func(r sqlstore.Row) (row, error) {
		e, w, err := scanner.EffectEndpoint(r)
		return row{e, w}, err
	}, sqlClaimEffects, p.Worker, p.LeaseExpiry, p.Now, limit, append([]string{}, p.ExcludeTypes...), store.LeaseTimeouts)
	if err != nil {
		return store.EffectClaim{}, err
	}
	c := store.EffectClaim{Effects: make([]store.Effect, len(rows)), Endpoints: map[string]store.Webhook{}}
	for i, r := range rows {
		c.Effects[i] = r.e
		if r.w.WorkflowType != "" {
			c.Endpoints[r.w.WorkflowType] = r.w
		}
	}
	return c, nil
}

func (d *driver) GetEffect(ctx context.Context, id string) (store.Effect, []store.Attempt, error) {
	var e store.Effect
	var attempts []store.Attempt
	b := &pgx.Batch{}
	b.Queue(`SELECT `+sqlstore.EffectColumns+` FROM effects WHERE id = $1`, id).QueryRow(func(row pgx.Row) error {
		var err error
		e, err = scanner.Effect(row, nil)
		return err
	})
	b.Queue(`SELECT effect_id, number, started_at, duration_ns, status_code, error, response, routed_outcome
FROM effect_attempts WHERE effect_id = $1 ORDER BY number`, id).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var a store.Attempt
			var dur int64
			var response []byte
			if err := rows.Scan(&a.EffectID, &a.Number, &a.StartedAt, &dur, &a.StatusCode, &a.Error,
				&response, &a.RoutedOutcome); err != nil {
				return err
			}
			a.StartedAt, a.Duration, a.Response = a.StartedAt.UTC(), time.Duration(dur), string(response)
			attempts = append(attempts, a)
		}
		return rows.Err()
	})
	return e, attempts, d.pool.SendBatch(ctx, b).Close()
}

func (d *driver) ListEffects(ctx context.Context, p store.ListEffectsParams, after int64, limit int) ([]sqlstore.Listed[store.Effect], error) {
	f := newFilter()
	f.Effects(p)
	return list(ctx, d, "effects", sqlstore.EffectColumns, f, after, limit, scanner.Effect)
}

func (d *driver) RetryEffect(ctx context.Context, id string, now time.Time) (store.Effect, error) {
	return noMatch(scanner.Effect(d.pool.QueryRow(ctx, `UPDATE effects SET status = 'pending', attempts = 0,
    next_attempt_at = $2, locked_by = '', locked_until = NULL, updated_at = $2
WHERE id = $1 AND status = 'dead' RETURNING `+sqlstore.EffectColumns, id, now), nil))
}

func (d *driver) CancelEffect(ctx context.Context, id string, now time.Time) (store.Effect, error) {
	// locked_by stays, as in a termination's cancel: the completion of a worker holding
	// it is still recorded.
	return noMatch(scanner.Effect(d.pool.QueryRow(ctx, `UPDATE effects SET status = 'cancelled', updated_at = $2
WHERE id = $1 AND status IN ('pending', 'dead') RETURNING `+sqlstore.EffectColumns, id, now), nil))
}

func (d *driver) RowStatus(ctx context.Context, table, id string) (string, error) {
	var status string
	err := d.pool.QueryRow(ctx, `SELECT status FROM `+table+` WHERE id = $1`, id).Scan(&status)
	return status, err
}

// lockInstance queues the lock Load takes on an instance.
func lockInstance(b *pgx.Batch, typ, id string) {
	b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))`, typ, id)
}

func (d *driver) ScheduleTimer(ctx context.Context, t store.Timer) error {
	return d.withTx(ctx, func(tx *batchTx) error {
		b := &pgx.Batch{}
		lockInstance(b, t.WorkflowType, t.WorkflowID)
		b.Queue(`UPDATE timers SET status = 'cancelled', locked_by = '', locked_until = NULL, updated_at = $4
WHERE workflow_type = $1 AND workflow_id = $2 AND key = $3 AND status = 'pending'`,
			t.WorkflowType, t.WorkflowID, t.Key, t.UpdatedAt)
		queueInsertTimer(b, t)
		tx.Hold(b) // sent with the COMMIT
		return nil
	})
}

func (d *driver) ClaimTimers(ctx context.Context, p store.ClaimParams, limit int) ([]store.Timer, error) {
	return claim(ctx, d, sqlstore.NoRID(scanner.Timer), `
WITH due AS (
    SELECT id FROM timers
    WHERE status = 'pending' AND next_attempt_at <= $5
      AND (locked_until IS NULL OR locked_until <= $3)
    ORDER BY next_attempt_at
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
UPDATE timers t SET locked_by = $1, locked_until = $2
FROM due WHERE t.id = due.id
RETURNING `+prefixed("t.", sqlstore.TimerColumns), p.Worker, p.LeaseExpiry, p.Now, limit, p.Due())
}

func (d *driver) NextTimerAt(ctx context.Context) (*time.Time, error) {
	var at *time.Time
	err := d.pool.QueryRow(ctx, `SELECT min(greatest(next_attempt_at, coalesce(locked_until, next_attempt_at)))
FROM timers WHERE status = 'pending'`).Scan(&at)
	return at, err
}

func (d *driver) GetTimer(ctx context.Context, id string) (store.Timer, error) {
	return scanner.Timer(d.pool.QueryRow(ctx, `SELECT `+sqlstore.TimerColumns+` FROM timers WHERE id = $1`, id), nil)
}

func (d *driver) ListTimers(ctx context.Context, p store.ListTimersParams, after int64, limit int) ([]sqlstore.Listed[store.Timer], error) {
	f := newFilter()
	f.Timers(p)
	return list(ctx, d, "timers", sqlstore.TimerColumns, f, after, limit, scanner.Timer)
}

func (d *driver) CancelTimer(ctx context.Context, id string, now time.Time) (store.Timer, error) {
	return noMatch(scanner.Timer(d.pool.QueryRow(ctx, `UPDATE timers SET status = 'cancelled', locked_by = '',
    locked_until = NULL, updated_at = $2
WHERE id = $1 AND status IN ('pending', 'dead') RETURNING `+sqlstore.TimerColumns, id, now), nil))
}

func (d *driver) RetryTimer(ctx context.Context, id string, now time.Time) (store.Timer, error) {
	var t store.Timer
	err := d.withTx(ctx, func(tx *batchTx) error {
		// Lock the instance first, as every decision and ScheduleTimer do before they
		// schedule a key, so one scheduling this key concurrently cannot collide with it.
		var typ, wid string
		if err := tx.QueryRow(ctx, `SELECT workflow_type, workflow_id FROM timers WHERE id = $1`, id).Scan(&typ, &wid); err != nil {
			return err
		}
		b := &pgx.Batch{}
		lockInstance(b, typ, wid)
		if err := tx.Send(ctx, b); err != nil {
			return err
		}
		var err error
		t, err = noMatch(scanner.Timer(tx.QueryRow(ctx, `UPDATE timers SET status = 'pending', attempts = 0,
    next_attempt_at = $2, locked_by = '', locked_until = NULL, updated_at = $2
WHERE id = $1 AND status = 'dead' RETURNING `+sqlstore.TimerColumns, id, now), nil))
		if isUniqueViolation(err, "timers_pending_key") {
			return errors.Join(store.ErrWrongStatus, errors.New("another pending timer of the instance has the same key"))
		}
		return err
	})
	return t, err
}

// noMatch turns the no-row error of a status-guarded UPDATE … RETURNING into
// sqlstore.ErrNoMatch.
func noMatch[T any](v T, err error) (T, error) {
	if errors.Is(err, pgx.ErrNoRows) {
		return v, sqlstore.ErrNoMatch
	}
	return v, err
}
