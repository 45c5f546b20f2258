package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

const effectCols = `rid, id, workflow_type, workflow_id, seq, name, payload, status, attempts, next_attempt_at,
	locked_by, locked_until, last_error, created_at, updated_at, delivered_at`

// Statements of claims and completions, prepared on the writer (statements.go).
const (
	sqlClaimEffects = `UPDATE effects SET locked_by = ?, locked_until = ?
			 WHERE rid IN (
			   SELECT e.rid FROM effects e
			   JOIN webhooks w ON w.workflow_type = e.workflow_type AND w.status = 'active'
			   WHERE e.status = 'pending' AND e.next_attempt_at <= ?
			     AND (e.locked_until IS NULL OR e.locked_until <= ?)
			   ORDER BY e.next_attempt_at, e.rid
			   LIMIT ?)
			 RETURNING ` + effectCols
	sqlEffectByID = `SELECT ` + effectCols + ` FROM effects WHERE id = ?`
)

func scanEffectRID(sc scanner) (store.Effect, int64, error) {
	var e store.Effect
	var rid, next, created, updated int64
	var payload sql.NullString
	var lockedUntil, delivered sql.NullInt64
	if err := sc.Scan(&rid, &e.ID, &e.WorkflowType, &e.WorkflowID, &e.Seq, &e.Name, &payload, &e.Status,
		&e.Attempts, &next, &e.LockedBy, &lockedUntil, &e.LastError, &created, &updated, &delivered); err != nil {
		return store.Effect{}, 0, err
	}
	e.Payload = fromJSONText(payload)
	e.NextAttemptAt, e.CreatedAt, e.UpdatedAt = fromMicros(next), fromMicros(created), fromMicros(updated)
	e.LockedUntil, e.DeliveredAt = fromNullMicros(lockedUntil), fromNullMicros(delivered)
	return e, rid, nil
}

func scanEffect(sc scanner) (store.Effect, error) {
	e, _, err := scanEffectRID(sc)
	return e, err
}

// ClaimEffects leases up to p.Limit (default 50) pending effects that are due at p.Now,
// whose lease is free or expired and whose type has an active webhook, to p.Worker until
// p.LeaseExpiry. They come back in the order they became due.
func (s *Store) ClaimEffects(ctx context.Context, p store.ClaimParams) ([]store.Effect, error) {
	var claimed []store.Effect
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		now := toMicros(p.Now)
		rows, err := tx.QueryContext(ctx, sqlClaimEffects,
			p.Worker, toMicros(p.LeaseExpiry), now, now, pageLimit(p.Limit))
		if err != nil {
			return err
		}
		defer rows.Close()
		claimed, err = collectEffects(rows)
		return err
	})
	if err != nil {
		return nil, mapErr("claim effects", err)
	}
	return claimed, nil
}

// collectEffects scans RETURNING rows, whose order SQLite does not define, into due order.
func collectEffects(rows *sql.Rows) ([]store.Effect, error) {
	type row struct {
		e   store.Effect
		rid int64
	}
	var rs []row
	for rows.Next() {
		e, rid, err := scanEffectRID(rows)
		if err != nil {
			return nil, err
		}
		rs = append(rs, row{e, rid})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(rs, func(a, b row) int {
		if c := a.e.NextAttemptAt.Compare(b.e.NextAttemptAt); c != 0 {
			return c
		}
		return cmp.Compare(a.rid, b.rid)
	})
	out := make([]store.Effect, len(rs))
	for i, r := range rs {
		out[i] = r.e
	}
	return out, nil
}

// CompleteEffect records one attempt of a claimed effect and moves it to p.Status. When
// p.Status is delivered and p.Route is set, the routed input is executed in the same
// transaction and its outcome (or, on an idempotent replay, the earlier outcome) stored
// on the attempt. Errors: store.ErrNotFound, store.ErrLeaseLost when p.Worker no longer
// holds the claim or the effect is no longer pending (nothing is written then), the
// Route's errors as Execute returns them.
func (s *Store) CompleteEffect(ctx context.Context, p store.CompleteEffectParams) error {
	switch p.Status {
	case store.EffectDelivered, store.EffectPending, store.EffectDead:
	default:
		return fmt.Errorf("sqlite: complete effect: invalid status %q", p.Status)
	}
	var sg signals
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		sg, err = completeEffect(ctx, tx, p)
		return err
	})
	if err != nil {
		return mapErr("complete effect", err)
	}
	s.notify.send(sg)
	return nil
}

// CompleteEffects records ps as CompleteEffect would; the deliveries with a routed
// input of distinct instances share one write request (store.CompleteRouted,
// deliverBatch).
func (s *Store) CompleteEffects(ctx context.Context, ps []store.CompleteEffectParams) []error {
	return store.CompleteRouted(ps,
		func(batch []store.CompleteEffectParams) ([]error, error) {
			return completeBatch(ctx, s, batch, deliverBatch)
		},
		func(p store.CompleteEffectParams) error { return s.CompleteEffect(ctx, p) })
}

// deliverBatch records ps, deliveries with a routed input of distinct instances,
// inside tx (routedBatch).
func deliverBatch(ctx context.Context, tx *wtx, ps []store.CompleteEffectParams) ([]error, signals, error) {
	items := make([]routed, len(ps))
	for k, p := range ps {
		items[k] = routed{id: p.EffectID, worker: p.Worker, route: *p.Route}
	}
	return routedBatch(ctx, tx, "effect", items, func(inputs []*store.InputRecord) error {
		var attempts, effects [][]any
		for k, in := range inputs {
			if in != nil {
				a, e := effectCompletion(ps[k], in.Outcome)
				attempts = append(attempts, a)
				effects = append(effects, e)
			}
		}
		if err := attemptInsert.exec(ctx, tx, attempts); err != nil {
			return err
		}
		return effectUpdate.exec(ctx, tx, effects)
	})
}

func completeEffect(ctx context.Context, tx *wtx, p store.CompleteEffectParams) (signals, error) {
	outcome, sg, err := completeClaimed(ctx, tx, "effect", p.EffectID, p.Worker, p.Routed())
	if err != nil {
		return sg, err
	}
	a, u := effectCompletion(p, outcome)
	if _, err := tx.ExecContext(ctx, attemptInsert.one(), a...); err != nil {
		return sg, fmt.Errorf("insert attempt: %w", err)
	}
	if _, err := tx.ExecContext(ctx, effectUpdate.one(), u...); err != nil {
		return sg, fmt.Errorf("update effect: %w", err)
	}
	return sg, nil
}

// effectCompletion is the attempt row (the values of attemptInsert) and the effect row
// (of effectUpdate) that record p, whose routed input, if any, had outcome.
func effectCompletion(p store.CompleteEffectParams, outcome string) (attempt, effect []any) {
	now := nowOr(p.Now)
	var next any // NULL keeps the effect's own
	if !p.NextAttemptAt.IsZero() {
		next = toMicros(p.NextAttemptAt)
	}
	var delivered *time.Time
	if p.Status == store.EffectDelivered {
		delivered = &now
	}
	a := p.Attempt
	attempt = []any{p.EffectID, toMicros(nowOr(a.StartedAt)), a.Duration.Microseconds(), a.StatusCode, a.Error,
		a.Response, outcome}
	effect = []any{p.EffectID, p.Status, next, a.Error, nullMicros(delivered), toMicros(now)}
	return attempt, effect
}

// The writes that record an attempt: its row, numbered after the effect's earlier
// ones, and the effect's next state. No guard on the effect row: the caller has checked
// the claim in the same transaction.
var (
	attemptInsert = newRowWrite(`WITH v(effect_id, started_at, duration_us, status_code, error, response, routed_outcome) AS (`, 7, `)
		 INSERT INTO effect_attempts (effect_id, number, started_at, duration_us, status_code, error, response, routed_outcome)
		 SELECT v.effect_id, coalesce((SELECT max(a.number) FROM effect_attempts a WHERE a.effect_id = v.effect_id), 0) + 1,
		        v.started_at, v.duration_us, v.status_code, v.error, v.response, v.routed_outcome
		   FROM v`)
	effectUpdate = newRowWrite(`WITH v(id, status, next_attempt_at, last_error, delivered_at, updated_at) AS (`, 6, `)
		 UPDATE effects SET status = v.status, attempts = attempts + 1,
		        next_attempt_at = coalesce(v.next_attempt_at, effects.next_attempt_at),
		        last_error = v.last_error, delivered_at = v.delivered_at, locked_by = '', locked_until = NULL,
		        updated_at = v.updated_at
		   FROM v WHERE effects.id = v.id`)
)

// GetEffect returns an effect with its attempts in order; store.ErrNotFound when absent.
func (s *Store) GetEffect(ctx context.Context, id string) (store.Effect, []store.Attempt, error) {
	e, err := scanEffect(s.r.QueryRowContext(ctx, sqlEffectByID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Effect{}, nil, fmt.Errorf("sqlite: get effect %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Effect{}, nil, mapErr("get effect", err)
	}
	rows, err := s.r.QueryContext(ctx,
		`SELECT effect_id, number, started_at, duration_us, status_code, error, response, routed_outcome
		 FROM effect_attempts WHERE effect_id = ? ORDER BY number`, id)
	if err != nil {
		return store.Effect{}, nil, mapErr("get effect", err)
	}
	defer rows.Close()
	attempts := []store.Attempt{}
	for rows.Next() {
		var a store.Attempt
		var started, dur int64
		if err := rows.Scan(&a.EffectID, &a.Number, &started, &dur, &a.StatusCode, &a.Error, &a.Response,
			&a.RoutedOutcome); err != nil {
			return store.Effect{}, nil, mapErr("get effect", err)
		}
		a.StartedAt, a.Duration = fromMicros(started), time.Duration(dur)*time.Microsecond
		attempts = append(attempts, a)
	}
	if err := rows.Err(); err != nil {
		return store.Effect{}, nil, mapErr("get effect", err)
	}
	return e, attempts, nil
}

// ListEffects pages effects filtered by status, workflow type and id, oldest first.
// store.ErrInvalidCursor for a cursor this store did not make.
func (s *Store) ListEffects(ctx context.Context, p store.ListEffectsParams) (store.Page[store.Effect], error) {
	var f filter
	f.eq("status", p.Status)
	f.eq("workflow_type", p.WorkflowType)
	f.eq("workflow_id", p.WorkflowID)
	return page(ctx, s.r, "list effects", effectCols, "effects", f, p.Cursor, p.Limit, scanEffectRID)
}

// RetryEffect puts a dead effect back to pending, due now, with a fresh attempt budget.
// store.ErrNotFound when absent, store.ErrWrongStatus when it is not dead.
func (s *Store) RetryEffect(ctx context.Context, id string, now time.Time) (store.Effect, error) {
	now = nowOr(now)
	var e store.Effect
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		e, err = scanEffect(tx.QueryRowContext(ctx,
			`UPDATE effects SET status = 'pending', attempts = 0, next_attempt_at = ?, locked_by = '',
			        locked_until = NULL, updated_at = ?
			 WHERE id = ? AND status = 'dead' RETURNING `+effectCols,
			toMicros(now), toMicros(now), id))
		if errors.Is(err, sql.ErrNoRows) {
			return statusError(ctx, tx, "effects", id)
		}
		return err
	})
	if err != nil {
		return store.Effect{}, mapErr("retry effect", err)
	}
	s.notify.send(signals{effects: true})
	return e, nil
}

// statusError explains why a status-guarded update of id in table matched no row.
func statusError(ctx context.Context, tx *wtx, table, id string) error {
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM `+table+` WHERE id = ?`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s %s: %w", table, id, store.ErrNotFound)
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%s %s is %s: %w", table, id, status, store.ErrWrongStatus)
}
