package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

const timerCols = `rid, id, workflow_type, workflow_id, key, fire_at, input_type, input_data, status, attempts,
	next_attempt_at, locked_by, locked_until, last_error, outcome, created_at, updated_at, fired_at`

// Statements of timer scheduling, claims and completions, prepared on the writer
// (statements.go) with the one-key form of cancelTimerKeysSQL.
const (
	sqlInsertTimer = `INSERT INTO timers (id, workflow_type, workflow_id, key, fire_at, input_type, input_data, status, attempts,
		                     next_attempt_at, created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`
	sqlClaimTimers = `UPDATE timers SET locked_by = ?, locked_until = ?
			 WHERE rid IN (
			   SELECT rid FROM timers
			   WHERE status = 'pending' AND next_attempt_at <= ?
			     AND (locked_until IS NULL OR locked_until <= ?)
			   ORDER BY next_attempt_at, rid
			   LIMIT ?)
			 RETURNING ` + timerCols
	sqlTimerByID = `SELECT ` + timerCols + ` FROM timers WHERE id = ?`
)

// cancelTimerKeysSQL cancels the pending timers with n keys of one instance.
func cancelTimerKeysSQL(n int) string {
	return `UPDATE timers SET status = 'cancelled', locked_by = '', locked_until = NULL, updated_at = ?
		 WHERE workflow_type = ? AND workflow_id = ? AND status = 'pending'
		   AND key IN (?` + strings.Repeat(", ?", n-1) + `)`
}

func scanTimerRID(sc scanner) (store.Timer, int64, error) {
	var t store.Timer
	var rid, fire, next, created, updated int64
	var data sql.NullString
	var lockedUntil, fired sql.NullInt64
	if err := sc.Scan(&rid, &t.ID, &t.WorkflowType, &t.WorkflowID, &t.Key, &fire, &t.InputType, &data, &t.Status,
		&t.Attempts, &next, &t.LockedBy, &lockedUntil, &t.LastError, &t.Outcome, &created, &updated,
		&fired); err != nil {
		return store.Timer{}, 0, err
	}
	t.InputData = fromJSONText(data)
	t.FireAt, t.NextAttemptAt = fromMicros(fire), fromMicros(next)
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(updated)
	t.LockedUntil, t.FiredAt = fromNullMicros(lockedUntil), fromNullMicros(fired)
	return t, rid, nil
}

func scanTimer(sc scanner) (store.Timer, error) {
	t, _, err := scanTimerRID(sc)
	return t, err
}

// cancelTimerKeys cancels the instance's pending timers with the given keys.
func cancelTimerKeys(ctx context.Context, tx *wtx, typ, id string, keys []string, now time.Time) error {
	args := []any{toMicros(now), typ, id}
	for _, k := range keys {
		args = append(args, k)
	}
	_, err := tx.ExecContext(ctx, cancelTimerKeysSQL(len(keys)), args...)
	if err != nil {
		return fmt.Errorf("cancel timers: %w", err)
	}
	return nil
}

// insertTimer replaces the instance's pending timer with t's key, if any, by t.
func insertTimer(ctx context.Context, tx *wtx, t *store.Timer) error {
	if err := cancelTimerKeys(ctx, tx, t.WorkflowType, t.WorkflowID, []string{t.Key}, t.CreatedAt); err != nil {
		return err
	}
	data, err := jsonText(t.InputData)
	if err != nil {
		return fmt.Errorf("timer %s input data: %w", t.Key, err)
	}
	if _, err := tx.ExecContext(ctx, sqlInsertTimer,
		t.ID, t.WorkflowType, t.WorkflowID, t.Key, toMicros(t.FireAt), t.InputType, data,
		toMicros(t.NextAttemptAt), toMicros(t.CreatedAt), toMicros(t.UpdatedAt)); err != nil {
		return fmt.Errorf("insert timer %s: %w", t.Key, err)
	}
	t.InputData = fromJSONText(data)
	return nil
}

// ScheduleTimer stores t as a pending timer due at t.FireAt, replacing (cancelling) a
// pending timer with the same key on the instance, which need not exist yet. An empty
// ID or CreatedAt is filled in.
func (s *Store) ScheduleTimer(ctx context.Context, t store.Timer) (store.Timer, error) {
	if t.Key == "" {
		return store.Timer{}, errors.New("sqlite: schedule timer: empty key")
	}
	prepareTimer(&t, time.Time{})
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error { return insertTimer(ctx, tx, &t) })
	if err != nil {
		return store.Timer{}, mapErr("schedule timer", err)
	}
	s.notify.send(signals{timers: true})
	return t, nil
}

// ClaimTimers leases up to p.Limit (default 50) pending timers due by p.Due() whose lease
// is free or expired to p.Worker until p.LeaseExpiry, in the order they became due.
func (s *Store) ClaimTimers(ctx context.Context, p store.ClaimParams) ([]store.Timer, error) {
	var claimed []store.Timer
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		rows, err := tx.QueryContext(ctx, sqlClaimTimers,
			p.Worker, toMicros(p.LeaseExpiry), toMicros(p.Due()), toMicros(p.Now), pageLimit(p.Limit))
		if err != nil {
			return err
		}
		defer rows.Close()
		type row struct {
			t   store.Timer
			rid int64
		}
		var rs []row
		for rows.Next() {
			t, rid, err := scanTimerRID(rows)
			if err != nil {
				return err
			}
			rs = append(rs, row{t, rid})
		}
		if err := rows.Err(); err != nil {
			return err
		}
		slices.SortFunc(rs, func(a, b row) int {
			if c := a.t.NextAttemptAt.Compare(b.t.NextAttemptAt); c != 0 {
				return c
			}
			return cmp.Compare(a.rid, b.rid)
		})
		for _, r := range rs {
			claimed = append(claimed, r.t)
		}
		return nil
	})
	if err != nil {
		return nil, mapErr("claim timers", err)
	}
	return claimed, nil
}

// CompleteTimer records the firing of a claimed timer. With p.Status fired and p.Route
// set, the timer's input is executed first in the same transaction, so a Route that
// schedules the timer's own key again leaves the new timer pending while this one ends
// fired. Errors: store.ErrNotFound, store.ErrLeaseLost when p.Worker no longer holds the
// claim or the timer is no longer pending (cancelled or replaced; nothing is executed
// then), the Route's errors as Execute returns them.
func (s *Store) CompleteTimer(ctx context.Context, p store.CompleteTimerParams) error {
	switch p.Status {
	case store.TimerFired, store.TimerPending, store.TimerDead:
	default:
		return fmt.Errorf("sqlite: complete timer: invalid status %q", p.Status)
	}
	var sg signals
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		sg, err = completeTimer(ctx, tx, p)
		return err
	})
	if err != nil {
		return mapErr("complete timer", err)
	}
	s.notify.send(sg)
	return nil
}

// checkClaim fails with store.ErrLeaseLost unless the claimed row id of kind ("effect"
// or "timer"), found with status and lockedBy, is still worker's pending claim.
func checkClaim(kind, id, worker, status, lockedBy string) error {
	if status != store.TimerPending || lockedBy != worker || worker == "" { // pending is one word for both
		return fmt.Errorf("%s %s held by %q in status %s: %w", kind, id, lockedBy, status, store.ErrLeaseLost)
	}
	return nil
}

func completeTimer(ctx context.Context, tx *wtx, p store.CompleteTimerParams) (signals, error) {
	outcome, sg, err := completeClaimed(ctx, tx, "timer", p.TimerID, p.Worker, p.Routed())
	if err != nil {
		return sg, err
	}
	if _, err := tx.ExecContext(ctx, timerUpdate.one(), timerCompletion(p, outcome)...); err != nil {
		return sg, fmt.Errorf("update timer: %w", err)
	}
	if p.Status == store.TimerPending {
		sg.timers = true // rescheduled: sleeping workers must recompute their next wake-up
	}
	return sg, nil
}

// timerCompletion is the row of timerUpdate that records p, whose routed input, if any,
// had outcome.
func timerCompletion(p store.CompleteTimerParams, outcome string) []any {
	now := nowOr(p.Now)
	var next any // NULL keeps the timer's own
	if !p.NextAttemptAt.IsZero() {
		next = toMicros(p.NextAttemptAt)
	}
	var fired *time.Time
	if p.Status == store.TimerFired {
		fired = &now
	}
	return []any{p.TimerID, p.Status, next, p.Error, outcome, nullMicros(fired), toMicros(now)}
}

// timerUpdate records a timer's completion. No status guard: the caller has checked
// the claim in the same transaction, and a firing's route may just have cancelled this
// very row by re-arming or cancelling its key, and the firing still has to be recorded.
var timerUpdate = newRowWrite(`WITH v(id, status, next_attempt_at, last_error, outcome, fired_at, updated_at) AS (`, 7, `)
		 UPDATE timers SET status = v.status, attempts = attempts + 1,
		        next_attempt_at = coalesce(v.next_attempt_at, timers.next_attempt_at),
		        last_error = v.last_error, outcome = v.outcome, fired_at = v.fired_at,
		        locked_by = '', locked_until = NULL, updated_at = v.updated_at
		   FROM v WHERE timers.id = v.id`)

// NextTimerAt returns the earliest time a pending timer becomes claimable: its
// NextAttemptAt, or the end of its lease when that is later. ok is false when no timer
// is pending.
func (s *Store) NextTimerAt(ctx context.Context) (time.Time, bool, error) {
	var at sql.NullInt64
	err := s.r.QueryRowContext(ctx,
		`SELECT MIN(MAX(next_attempt_at, COALESCE(locked_until, 0))) FROM timers WHERE status = 'pending'`).Scan(&at)
	if err != nil {
		return time.Time{}, false, mapErr("next timer", err)
	}
	if !at.Valid {
		return time.Time{}, false, nil
	}
	return fromMicros(at.Int64), true, nil
}

// GetTimer returns one timer; store.ErrNotFound when absent.
func (s *Store) GetTimer(ctx context.Context, id string) (store.Timer, error) {
	t, err := scanTimer(s.r.QueryRowContext(ctx, sqlTimerByID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Timer{}, fmt.Errorf("sqlite: get timer %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Timer{}, mapErr("get timer", err)
	}
	return t, nil
}

// ListTimers pages timers filtered by status, workflow type and id, oldest first.
// store.ErrInvalidCursor for a cursor this store did not make.
func (s *Store) ListTimers(ctx context.Context, p store.ListTimersParams) (store.Page[store.Timer], error) {
	var f filter
	f.eq("status", p.Status)
	f.eq("workflow_type", p.WorkflowType)
	f.eq("workflow_id", p.WorkflowID)
	return page(ctx, s.r, "list timers", timerCols, "timers", f, p.Cursor, p.Limit, scanTimerRID)
}

// CancelTimer cancels a pending timer. store.ErrNotFound when absent,
// store.ErrWrongStatus when it is not pending.
func (s *Store) CancelTimer(ctx context.Context, id string, now time.Time) (store.Timer, error) {
	return s.setTimer(ctx, "cancel timer", id, store.TimerPending,
		`status = 'cancelled', locked_by = '', locked_until = NULL, updated_at = ?`, false, toMicros(nowOr(now)))
}

// RetryTimer puts a dead timer back to pending, due now, with a fresh attempt budget.
// store.ErrNotFound when absent, store.ErrWrongStatus when it is not dead.
func (s *Store) RetryTimer(ctx context.Context, id string, now time.Time) (store.Timer, error) {
	n := toMicros(nowOr(now))
	return s.setTimer(ctx, "retry timer", id, store.TimerDead,
		`status = 'pending', attempts = 0, next_attempt_at = ?, locked_by = '', locked_until = NULL, updated_at = ?`,
		true, n, n)
}

// setTimer applies set to timer id if it is in status from.
func (s *Store) setTimer(ctx context.Context, op, id, from, set string, wake bool, args ...any) (store.Timer, error) {
	var t store.Timer
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		t, err = scanTimer(tx.QueryRowContext(ctx,
			`UPDATE timers SET `+set+` WHERE id = ? AND status = ? RETURNING `+timerCols,
			append(args, id, from)...))
		if errors.Is(err, sql.ErrNoRows) {
			return statusError(ctx, tx, "timers", id)
		}
		return err
	})
	if isUniqueViolation(err) {
		// A dead timer's key was scheduled again meanwhile; the newer timer wins.
		return store.Timer{}, fmt.Errorf("sqlite: %s: key has a newer pending timer: %w", op, store.ErrWrongStatus)
	}
	if err != nil {
		return store.Timer{}, mapErr(op, err)
	}
	if wake {
		s.notify.send(signals{timers: true})
	}
	return t, nil
}
