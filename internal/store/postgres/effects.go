package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/store"
)

const effectColumns = `id, workflow_type, workflow_id, seq, name, payload, status, attempts, next_attempt_at,
    locked_by, locked_until, last_error, created_at, updated_at, delivered_at`

// scanEffect scans effectColumns, preceded by the row's rid when rid is not nil.
func scanEffect(row pgx.Row, rid *int64) (store.Effect, error) {
	var e store.Effect
	var payload []byte
	dest := []any{&e.ID, &e.WorkflowType, &e.WorkflowID, &e.Seq, &e.Name, &payload, &e.Status,
		&e.Attempts, &e.NextAttemptAt, &e.LockedBy, &e.LockedUntil, &e.LastError, &e.CreatedAt,
		&e.UpdatedAt, &e.DeliveredAt}
	if rid != nil {
		dest = append([]any{rid}, dest...)
	}
	if err := row.Scan(dest...); err != nil {
		return store.Effect{}, err
	}
	e.Payload = rawJSON(payload)
	e.NextAttemptAt = e.NextAttemptAt.UTC()
	e.LockedUntil = utcPtr(e.LockedUntil)
	e.CreatedAt = e.CreatedAt.UTC()
	e.UpdatedAt = e.UpdatedAt.UTC()
	e.DeliveredAt = utcPtr(e.DeliveredAt)
	return e, nil
}

func queueInsertEffect(b *pgx.Batch, e store.Effect) error {
	payload, err := jsonParam(e.Payload)
	if err != nil {
		return fmt.Errorf("effect %s payload: %w", e.Name, err)
	}
	b.Queue(`INSERT INTO effects (id, workflow_type, workflow_id, seq, name, payload, status, attempts,
    next_attempt_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10)`,
		e.ID, e.WorkflowType, e.WorkflowID, e.Seq, e.Name, payload, e.Status,
		e.NextAttemptAt, e.CreatedAt, e.UpdatedAt)
	return nil
}

// ClaimEffects leases up to p.Limit (50 when <= 0) due pending effects whose type has an
// active endpoint and whose lease is free or expired, earliest due first. Rows another
// worker is claiming at the same moment are skipped, not waited for.
func (s *Store) ClaimEffects(ctx context.Context, p store.ClaimParams) ([]store.Effect, error) {
	if p.Worker == "" {
		return nil, errors.New("postgres: claim effects: empty worker")
	}
	rows, err := s.pool.Query(ctx, `
WITH due AS (
    SELECT f.id FROM effects f
    WHERE f.status = 'pending' AND f.next_attempt_at <= $3
      AND (f.locked_until IS NULL OR f.locked_until < $3)
      AND EXISTS (SELECT 1 FROM webhooks w WHERE w.workflow_type = f.workflow_type AND w.status = 'active')
    ORDER BY f.next_attempt_at
    LIMIT $4
    FOR UPDATE OF f SKIP LOCKED
)
UPDATE effects e SET locked_by = $1, locked_until = $2
FROM due WHERE e.id = due.id
RETURNING `+prefixed("e.", effectColumns),
		p.Worker, p.LeaseExpiry, p.Now, pageLimit(p.Limit))
	if err != nil {
		return nil, mapErr("claim effects", err)
	}
	effects, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Effect, error) {
		return scanEffect(row, nil)
	})
	if err != nil {
		return nil, mapErr("claim effects", err)
	}
	slices.SortStableFunc(effects, func(a, b store.Effect) int { return a.NextAttemptAt.Compare(b.NextAttemptAt) })
	if effects == nil {
		effects = []store.Effect{}
	}
	return effects, nil
}

// CompleteEffect records an attempt of a claimed effect and sets its next status, and,
// when p.Route is set and the effect was delivered, executes the routed input in the
// same transaction and stores its outcome on the attempt. It returns store.ErrLeaseLost
// (changing nothing) when p.Worker no longer holds the claim or the effect is no longer
// pending, store.ErrNotFound when it does not exist, and an error of p.Route.Decide
// unchanged.
func (s *Store) CompleteEffect(ctx context.Context, p store.CompleteEffectParams) error {
	switch p.Status {
	case store.EffectDelivered, store.EffectPending, store.EffectDead:
	default:
		return fmt.Errorf("postgres: complete effect: invalid status %q", p.Status)
	}
	err := s.withTx(ctx, func(tx *batchTx) error {
		return completeClaimed(ctx, tx, "effects", p.EffectID, p.Worker, p.Routed(), func(b *pgx.Batch, outcome string) {
			a, e := effectCompletion(p, outcome)
			b.Queue(attemptInsert.one, a...)
			b.Queue(effectUpdate.one, e...)
		})
	})
	return mapErr("complete effect", err)
}

// CompleteEffects records ps as CompleteEffect would; the deliveries with a routed
// input of distinct instances share one transaction (store.CompleteRouted,
// deliverBatch).
func (s *Store) CompleteEffects(ctx context.Context, ps []store.CompleteEffectParams) []error {
	return store.CompleteRouted(ps,
		func(batch []store.CompleteEffectParams) ([]error, error) { return s.deliverBatch(ctx, batch) },
		func(p store.CompleteEffectParams) error { return s.CompleteEffect(ctx, p) })
}

// deliverBatch records deliveries with a routed input, of distinct instances, in one
// transaction (routedBatch): errs[k] is ps[k]'s. When it returns an error nothing was
// committed.
func (s *Store) deliverBatch(ctx context.Context, ps []store.CompleteEffectParams) (errs []error, err error) {
	items := make([]routed, len(ps))
	for k, p := range ps {
		items[k] = routed{id: p.EffectID, worker: p.Worker, route: *p.Route}
	}
	return s.routedBatch(ctx, "effect", items, func(b *pgx.Batch, inputs []*store.InputRecord) {
		var attempts, effects [][]any
		for k, in := range inputs {
			if in != nil {
				a, e := effectCompletion(ps[k], in.Outcome)
				attempts = append(attempts, a)
				effects = append(effects, e)
			}
		}
		attemptInsert.queueMany(b, attempts)
		effectUpdate.queueMany(b, effects)
	})
}

// effectCompletion is the attempt row (the values of attemptInsert) and the effect row
// (of effectUpdate) that record p, whose routed input, if any, had outcome.
func effectCompletion(p store.CompleteEffectParams, outcome string) (attempt, effect []any) {
	now := nowOr(p.Now)
	next := p.NextAttemptAt
	if next.IsZero() {
		next = now
	}
	var deliveredAt *time.Time
	if p.Status == store.EffectDelivered {
		deliveredAt = &now
	}
	a := p.Attempt
	attempt = []any{p.EffectID, nowOr(a.StartedAt), int64(a.Duration), a.StatusCode, cleanText(a.Error),
		[]byte(a.Response), outcome}
	effect = []any{p.EffectID, p.Status, next, cleanText(a.Error), deliveredAt, now}
	return attempt, effect
}

// The writes that record an attempt: its row, numbered after the effect's earlier
// ones, and the effect's next state. No guard on the effect row: the caller holds it,
// locked, and has checked the claim.
var (
	attemptInsert = newRowWrite(`WITH v (effect_id, started_at, duration_ns, status_code, error, response, routed_outcome) AS (`,
		[]string{"text", "timestamptz", "bigint", "integer", "text", "bytea", "text"}, `)
INSERT INTO effect_attempts
    (effect_id, number, started_at, duration_ns, status_code, error, response, routed_outcome)
SELECT v.effect_id, coalesce((SELECT max(a.number) FROM effect_attempts a WHERE a.effect_id = v.effect_id), 0) + 1,
    v.started_at, v.duration_ns, v.status_code, v.error, v.response, v.routed_outcome
FROM v`)
	effectUpdate = newRowWrite(`WITH v (id, status, next_attempt_at, last_error, delivered_at, updated_at) AS (`,
		[]string{"text", "text", "timestamptz", "text", "timestamptz", "timestamptz"}, `)
UPDATE effects e SET status = v.status, attempts = e.attempts + 1, next_attempt_at = v.next_attempt_at,
    last_error = v.last_error, delivered_at = v.delivered_at, locked_by = '', locked_until = NULL,
    updated_at = v.updated_at
FROM v WHERE e.id = v.id`)
)

// GetEffect returns an effect with its attempts, oldest first; store.ErrNotFound when
// absent.
func (s *Store) GetEffect(ctx context.Context, id string) (store.Effect, []store.Attempt, error) {
	var e store.Effect
	attempts := []store.Attempt{}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+effectColumns+` FROM effects WHERE id = $1`, id).QueryRow(func(row pgx.Row) error {
		var err error
		e, err = scanEffect(row, nil)
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
			a.StartedAt = a.StartedAt.UTC()
			a.Duration = time.Duration(dur)
			a.Response = string(response)
			attempts = append(attempts, a)
		}
		return rows.Err()
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return store.Effect{}, nil, mapErr("get effect", err)
	}
	return e, attempts, nil
}

// ListEffects pages effects matching the filters, oldest first;
// store.ErrInvalidCursor when p.Cursor cannot be decoded.
func (s *Store) ListEffects(ctx context.Context, p store.ListEffectsParams) (store.Page[store.Effect], error) {
	after, err := decodeCursor(p.Cursor)
	if err != nil {
		return store.Page[store.Effect]{}, mapErr("list effects", err)
	}
	var f filters
	f.add("rid > ?", after)
	f.addStatus(p.Status, store.EffectPending, store.EffectDelivered, store.EffectDead)
	f.addIf("workflow_type = ?", p.WorkflowType)
	f.addIf("workflow_id = ?", p.WorkflowID)
	limit := pageLimit(p.Limit)
	query := `SELECT rid, ` + effectColumns + ` FROM effects` + f.where() +
		` ORDER BY rid LIMIT ` + f.next(limit+1)
	page, err := listPage(ctx, s, query, f.args, limit, scanEffect)
	if err != nil {
		return store.Page[store.Effect]{}, mapErr("list effects", err)
	}
	return page, nil
}

// RetryEffect puts a dead effect back to pending, due now, with a fresh attempt budget
// and wakes the effect workers. It returns store.ErrWrongStatus when the effect is not
// dead and store.ErrNotFound when it does not exist.
func (s *Store) RetryEffect(ctx context.Context, id string, now time.Time) (store.Effect, error) {
	now = nowOr(now)
	var e store.Effect
	err := s.withTx(ctx, func(tx *batchTx) error {
		var err error
		e, err = scanEffect(tx.QueryRow(ctx, `UPDATE effects SET status = 'pending', attempts = 0,
    next_attempt_at = $2, locked_by = '', locked_until = NULL, updated_at = $2
WHERE id = $1 AND status = 'dead'
RETURNING `+effectColumns, id, now), nil)
		if errors.Is(err, pgx.ErrNoRows) {
			return wrongStatusOrNotFound(ctx, tx, `SELECT status FROM effects WHERE id = $1`, id, "effect")
		}
		if err != nil {
			return err
		}
		tx.n.effects = true
		return nil
	})
	if err != nil {
		return store.Effect{}, mapErr("retry effect", err)
	}
	return e, nil
}

// wrongStatusOrNotFound is the error of a status-guarded update that matched no row:
// store.ErrNotFound when the row does not exist (query selects its status by $1), else
// store.ErrWrongStatus naming the status.
func wrongStatusOrNotFound(ctx context.Context, tx *batchTx, query, id, what string) error {
	var status string
	err := tx.QueryRow(ctx, query, id).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s is %s", store.ErrWrongStatus, what, status)
}
