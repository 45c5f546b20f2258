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

const timerColumns = `id, workflow_type, workflow_id, key, fire_at, input_type, input_data, status, attempts,
    next_attempt_at, locked_by, locked_until, last_error, outcome, created_at, updated_at, fired_at`

// scanTimer scans timerColumns, preceded by the row's rid when rid is not nil.
func scanTimer(row pgx.Row, rid *int64) (store.Timer, error) {
	var t store.Timer
	var data []byte
	dest := []any{&t.ID, &t.WorkflowType, &t.WorkflowID, &t.Key, &t.FireAt, &t.InputType, &data,
		&t.Status, &t.Attempts, &t.NextAttemptAt, &t.LockedBy, &t.LockedUntil, &t.LastError,
		&t.Outcome, &t.CreatedAt, &t.UpdatedAt, &t.FiredAt}
	if rid != nil {
		dest = append([]any{rid}, dest...)
	}
	if err := row.Scan(dest...); err != nil {
		return store.Timer{}, err
	}
	t.InputData = rawJSON(data)
	t.FireAt = t.FireAt.UTC()
	t.NextAttemptAt = t.NextAttemptAt.UTC()
	t.LockedUntil = utcPtr(t.LockedUntil)
	t.CreatedAt = t.CreatedAt.UTC()
	t.UpdatedAt = t.UpdatedAt.UTC()
	t.FiredAt = utcPtr(t.FiredAt)
	return t, nil
}

func queueInsertTimer(b *pgx.Batch, t store.Timer) error {
	data, err := jsonParam(t.InputData)
	if err != nil {
		return fmt.Errorf("timer %s input data: %w", t.Key, err)
	}
	b.Queue(`INSERT INTO timers (id, workflow_type, workflow_id, key, fire_at, input_type, input_data,
    status, attempts, next_attempt_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11)`,
		t.ID, t.WorkflowType, t.WorkflowID, t.Key, t.FireAt, t.InputType, data,
		t.Status, t.NextAttemptAt, t.CreatedAt, t.UpdatedAt)
	return nil
}

// ScheduleTimer stores a pending timer outside any decision (a delayed input), replacing
// a pending timer with the same key on the instance, and wakes the timer workers. It
// locks the instance like Execute, so it never races a decision scheduling the same key.
// Missing ID, NextAttemptAt (FireAt) and times are filled in.
func (s *Store) ScheduleTimer(ctx context.Context, t store.Timer) (store.Timer, error) {
	if t.ID == "" {
		t.ID = newID()
	}
	t.Status = store.TimerPending
	t.Attempts = 0
	t.LockedBy, t.LockedUntil, t.FiredAt = "", nil, nil
	t.FireAt = t.FireAt.UTC()
	t.NextAttemptAt = nowOr(nowOrZero(t.NextAttemptAt, t.FireAt))
	t.CreatedAt = nowOr(t.CreatedAt)
	t.UpdatedAt = nowOr(nowOrZero(t.UpdatedAt, t.CreatedAt))
	err := s.withTx(ctx, func(tx *batchTx) error {
		if _, err := lockInstance(ctx, tx, t.WorkflowType, t.WorkflowID, ""); err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`UPDATE timers SET status = 'cancelled', locked_by = '', locked_until = NULL, updated_at = $4
WHERE workflow_type = $1 AND workflow_id = $2 AND key = $3 AND status = 'pending'`,
			t.WorkflowType, t.WorkflowID, t.Key, t.UpdatedAt)
		if err := queueInsertTimer(b, t); err != nil {
			return err
		}
		tx.n.timers = true
		tx.Hold(b) // sent with the COMMIT
		return nil
	})
	if err != nil {
		return store.Timer{}, mapErr("schedule timer", err)
	}
	return t, nil
}

// ClaimTimers leases up to p.Limit (50 when <= 0) pending timers due by p.Due() whose
// lease is free or expired, earliest due first. Rows another worker is claiming at the
// same moment are skipped, not waited for.
func (s *Store) ClaimTimers(ctx context.Context, p store.ClaimParams) ([]store.Timer, error) {
	if p.Worker == "" {
		return nil, errors.New("postgres: claim timers: empty worker")
	}
	rows, err := s.pool.Query(ctx, `
WITH due AS (
    SELECT id FROM timers
    WHERE status = 'pending' AND next_attempt_at <= $5
      AND (locked_until IS NULL OR locked_until < $3)
    ORDER BY next_attempt_at
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
UPDATE timers t SET locked_by = $1, locked_until = $2
FROM due WHERE t.id = due.id
RETURNING `+prefixed("t.", timerColumns),
		p.Worker, p.LeaseExpiry, p.Now, pageLimit(p.Limit), p.Due())
	if err != nil {
		return nil, mapErr("claim timers", err)
	}
	timers, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Timer, error) {
		return scanTimer(row, nil)
	})
	if err != nil {
		return nil, mapErr("claim timers", err)
	}
	slices.SortStableFunc(timers, func(a, b store.Timer) int { return a.NextAttemptAt.Compare(b.NextAttemptAt) })
	if timers == nil {
		timers = []store.Timer{}
	}
	return timers, nil
}

// CompleteTimer records the firing of a claimed timer. When p.Route is set and the
// timer fired, the routed input is executed in the same transaction before the timer is
// marked fired (so a timer whose input re-arms its own key ends fired while the new one
// stays pending), and its outcome is stored on the timer. It returns store.ErrLeaseLost
// (executing and changing nothing) when p.Worker no longer holds the claim or the timer
// is no longer pending, store.ErrNotFound when it does not exist, and an error of
// p.Route.Decide unchanged.
func (s *Store) CompleteTimer(ctx context.Context, p store.CompleteTimerParams) error {
	switch p.Status {
	case store.TimerFired, store.TimerPending, store.TimerDead:
	default:
		return fmt.Errorf("postgres: complete timer: invalid status %q", p.Status)
	}
	err := s.withTx(ctx, func(tx *batchTx) error {
		return completeClaimed(ctx, tx, "timers", p.TimerID, p.Worker, p.Routed(), func(b *pgx.Batch, outcome string) {
			b.Queue(timerUpdate.one, timerCompletion(p, outcome)...)
		})
	})
	return mapErr("complete timer", err)
}

// CompleteTimers records ps as CompleteTimer would; the firings (fired, with a Route)
// of distinct instances share one transaction (store.CompleteRouted, fireBatch).
func (s *Store) CompleteTimers(ctx context.Context, ps []store.CompleteTimerParams) []error {
	return store.CompleteRouted(ps,
		func(batch []store.CompleteTimerParams) ([]error, error) { return s.fireBatch(ctx, batch) },
		func(p store.CompleteTimerParams) error { return s.CompleteTimer(ctx, p) })
}

// fireBatch records firings of distinct instances in one transaction (routedBatch):
// errs[k] is ps[k]'s. When it returns an error nothing was committed.
func (s *Store) fireBatch(ctx context.Context, ps []store.CompleteTimerParams) (errs []error, err error) {
	items := make([]routed, len(ps))
	for k, p := range ps {
		items[k] = routed{id: p.TimerID, worker: p.Worker, route: *p.Route}
	}
	return s.routedBatch(ctx, "timer", items, func(b *pgx.Batch, inputs []*store.InputRecord) {
		var rows [][]any
		for k, in := range inputs {
			if in != nil {
				rows = append(rows, timerCompletion(ps[k], in.Outcome))
			}
		}
		timerUpdate.queueMany(b, rows)
	})
}

// timerCompletion is the row of timerUpdate that records p, whose routed input, if any,
// had outcome: recorded at p.Now (or now), next attempt at p.NextAttemptAt (or then).
func timerCompletion(p store.CompleteTimerParams, outcome string) []any {
	now := nowOr(p.Now)
	next := p.NextAttemptAt
	if next.IsZero() {
		next = now
	}
	var firedAt *time.Time
	if p.Status == store.TimerFired {
		firedAt = &now
	}
	return []any{p.TimerID, p.Status, next, cleanText(p.Error), outcome, firedAt, now}
}

// timerUpdate records a timer's completion. No guard on the row: the caller holds it,
// locked, and has checked the claim; and a firing's route may just have cancelled this
// very row by re-arming or cancelling its key, and the firing still has to be recorded.
var timerUpdate = newRowWrite(`WITH v (id, status, next_attempt_at, last_error, outcome, fired_at, updated_at) AS (`,
	[]string{"text", "text", "timestamptz", "text", "text", "timestamptz", "timestamptz"}, `)
UPDATE timers t SET status = v.status, attempts = t.attempts + 1, next_attempt_at = v.next_attempt_at,
    last_error = v.last_error, outcome = v.outcome, fired_at = v.fired_at, locked_by = '',
    locked_until = NULL, updated_at = v.updated_at
FROM v WHERE t.id = v.id`)

// NextTimerAt returns the earliest time a pending timer can be claimed: the later of its
// NextAttemptAt and its lease end. ok is false when there is none.
func (s *Store) NextTimerAt(ctx context.Context) (time.Time, bool, error) {
	var at *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT min(greatest(next_attempt_at, coalesce(locked_until, next_attempt_at))) FROM timers WHERE status = 'pending'`).
		Scan(&at); err != nil {
		return time.Time{}, false, mapErr("next timer", err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return at.UTC(), true, nil
}

// GetTimer returns one timer; store.ErrNotFound when absent.
func (s *Store) GetTimer(ctx context.Context, id string) (store.Timer, error) {
	t, err := scanTimer(s.pool.QueryRow(ctx, `SELECT `+timerColumns+` FROM timers WHERE id = $1`, id), nil)
	if err != nil {
		return store.Timer{}, mapErr("get timer", err)
	}
	return t, nil
}

// ListTimers pages timers matching the filters, oldest first;
// store.ErrInvalidCursor when p.Cursor cannot be decoded.
func (s *Store) ListTimers(ctx context.Context, p store.ListTimersParams) (store.Page[store.Timer], error) {
	after, err := decodeCursor(p.Cursor)
	if err != nil {
		return store.Page[store.Timer]{}, mapErr("list timers", err)
	}
	var f filters
	f.add("rid > ?", after)
	f.addStatus(p.Status, store.TimerPending, store.TimerFired, store.TimerCancelled, store.TimerDead)
	f.addIf("workflow_type = ?", p.WorkflowType)
	f.addIf("workflow_id = ?", p.WorkflowID)
	limit := pageLimit(p.Limit)
	query := `SELECT rid, ` + timerColumns + ` FROM timers` + f.where() +
		` ORDER BY rid LIMIT ` + f.next(limit+1)
	page, err := listPage(ctx, s, query, f.args, limit, scanTimer)
	if err != nil {
		return store.Page[store.Timer]{}, mapErr("list timers", err)
	}
	return page, nil
}

// CancelTimer cancels a pending timer. It returns store.ErrWrongStatus when the timer is
// not pending and store.ErrNotFound when it does not exist.
func (s *Store) CancelTimer(ctx context.Context, id string, now time.Time) (store.Timer, error) {
	now = nowOr(now)
	var t store.Timer
	err := s.withTx(ctx, func(tx *batchTx) error {
		var err error
		t, err = scanTimer(tx.QueryRow(ctx, `UPDATE timers SET status = 'cancelled', locked_by = '',
    locked_until = NULL, updated_at = $2
WHERE id = $1 AND status = 'pending'
RETURNING `+timerColumns, id, now), nil)
		if errors.Is(err, pgx.ErrNoRows) {
			return wrongStatusOrNotFound(ctx, tx, `SELECT status FROM timers WHERE id = $1`, id, "timer")
		}
		return err
	})
	if err != nil {
		return store.Timer{}, mapErr("cancel timer", err)
	}
	return t, nil
}

// RetryTimer puts a dead timer back to pending, due now, with a fresh attempt budget and
// wakes the timer workers. It returns store.ErrWrongStatus when the timer is not dead or
// when another pending timer of the instance has taken its key meanwhile, and
// store.ErrNotFound when it does not exist.
func (s *Store) RetryTimer(ctx context.Context, id string, now time.Time) (store.Timer, error) {
	now = nowOr(now)
	var t store.Timer
	err := s.withTx(ctx, func(tx *batchTx) error {
		// Lock the instance first, as Execute and ScheduleTimer do before they schedule a
		// key, so a decision scheduling this key concurrently cannot collide with it.
		var typ, wid string
		err := tx.QueryRow(ctx, `SELECT workflow_type, workflow_id FROM timers WHERE id = $1`, id).Scan(&typ, &wid)
		if err != nil {
			return err
		}
		if _, err := lockInstance(ctx, tx, typ, wid, ""); err != nil {
			return err
		}
		t, err = scanTimer(tx.QueryRow(ctx, `UPDATE timers SET status = 'pending', attempts = 0,
    next_attempt_at = $2, locked_by = '', locked_until = NULL, updated_at = $2
WHERE id = $1 AND status = 'dead'
RETURNING `+timerColumns, id, now), nil)
		if errors.Is(err, pgx.ErrNoRows) {
			return wrongStatusOrNotFound(ctx, tx, `SELECT status FROM timers WHERE id = $1`, id, "timer")
		}
		if isUniqueViolation(err, "timers_pending_key") {
			return fmt.Errorf("%w: another pending timer of the instance has the same key", store.ErrWrongStatus)
		}
		if err != nil {
			return err
		}
		tx.n.timers = true
		return nil
	})
	if err != nil {
		return store.Timer{}, mapErr("retry timer", err)
	}
	return t, nil
}
