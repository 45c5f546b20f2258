package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// ErrTimerNotFound: no timer has the requested id.
var ErrTimerNotFound = errors.New("timer not found")

// DelayedKeyPrefix starts the key of every timer made by ScheduleInput, so they never
// replace a definition's keyed timers.
const DelayedKeyPrefix = "deliver:"

// ScheduleInput stores in as a durable timer on (typ, id) that executes it at fireAt
// (at once if fireAt has passed). The instance need not exist; the input is validated
// now against the definition the instance is pinned to (the latest for a new one) and
// decided when the timer fires. Errors: ErrInvalidID, ErrTypeNotFound,
// workflow.ErrUnknownInput and workflow.ErrInvalidInput (as *workflow.ValidationError).
func (e *Engine) ScheduleInput(ctx context.Context, typ, id string, in workflow.Input, fireAt time.Time) (TimerView, error) {
	return e.ScheduleInputWithKey(ctx, typ, id, "", in, fireAt)
}

// ScheduleInputWithKey is ScheduleInput with the timer key DelayedKeyPrefix+key (a
// generated key when key is empty): scheduling the same key again on the instance
// replaces the pending timer instead of adding another, which makes a client's retry
// (same Idempotency-Key) safe. Errors are those of ScheduleInput.
func (e *Engine) ScheduleInputWithKey(ctx context.Context, typ, id, key string, in workflow.Input, fireAt time.Time) (TimerView, error) {
	if key == "" {
		key = e.newID()
	}
	if err := ValidateID(id); err != nil {
		return TimerView{}, err
	}
	version := 0
	cur, err := e.store.GetInstance(ctx, typ, id)
	switch {
	case err == nil:
		version = cur.DefinitionVersion
	case !errors.Is(err, store.ErrNotFound):
		return TimerView{}, fmt.Errorf("get instance: %w", err)
	}
	def, err := e.definition(ctx, typ, version)
	if err != nil {
		return TimerView{}, err
	}
	if len(in.Data) == 0 || string(in.Data) == "null" {
		in.Data = []byte(`{}`)
	} else if in.Data, err = compactJSON(in.Data); err != nil {
		return TimerView{}, fmt.Errorf("%w: data is not JSON", workflow.ErrInvalidInput)
	}
	if err := def.ValidateInput(in); err != nil {
		return TimerView{}, err
	}
	now := e.Now()
	t := e.timerRecord(typ, id, DelayedKeyPrefix+key, fireAt.UTC().Truncate(time.Microsecond), in, now)
	saved, err := e.store.ScheduleTimer(ctx, t)
	if err != nil {
		return TimerView{}, fmt.Errorf("schedule timer: %w", err)
	}
	return timerView(saved), nil
}

// ListTimers pages timers filtered by status, workflow type and id, oldest first.
// Errors: ErrInvalidArgument (limit, status), store.ErrInvalidCursor.
func (e *Engine) ListTimers(ctx context.Context, p store.ListTimersParams) (Page[TimerView], error) {
	var err error
	if p.Limit, err = checkLimit(p.Limit); err != nil {
		return Page[TimerView]{}, err
	}
	switch p.Status {
	case "", store.TimerPending, store.TimerFired, store.TimerCancelled, store.TimerDead:
	default:
		return Page[TimerView]{}, fmt.Errorf("%w: status must be pending, fired, cancelled or dead", ErrInvalidArgument)
	}
	page, err := e.store.ListTimers(ctx, p)
	if err != nil {
		return Page[TimerView]{}, fmt.Errorf("list timers: %w", err)
	}
	return mapPage(page, timerView), nil
}

// GetTimer returns one timer. Errors: ErrTimerNotFound.
func (e *Engine) GetTimer(ctx context.Context, id string) (TimerView, error) {
	t, err := e.store.GetTimer(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return TimerView{}, fmt.Errorf("%w: %q", ErrTimerNotFound, id)
	}
	if err != nil {
		return TimerView{}, fmt.Errorf("get timer: %w", err)
	}
	return timerView(t), nil
}

// CancelTimer cancels a pending timer; it stays listed as cancelled. Errors:
// ErrTimerNotFound, store.ErrWrongStatus when it is not pending.
func (e *Engine) CancelTimer(ctx context.Context, id string) (TimerView, error) {
	t, err := e.store.CancelTimer(ctx, id, e.Now())
	if errors.Is(err, store.ErrNotFound) {
		return TimerView{}, fmt.Errorf("%w: %q", ErrTimerNotFound, id)
	}
	if err != nil {
		return TimerView{}, fmt.Errorf("cancel timer: %w", err)
	}
	e.log.Info("timer cancelled by operator", "timer_id", id, "workflow_type", t.WorkflowType,
		"workflow_id", t.WorkflowID, "key", t.Key)
	return timerView(t), nil
}

// RetryTimer puts a dead timer back to pending, due now, with a fresh attempt budget.
// Errors: ErrTimerNotFound, store.ErrWrongStatus when it is not dead (or a newer timer
// with its key is pending).
func (e *Engine) RetryTimer(ctx context.Context, id string) (TimerView, error) {
	t, err := e.store.RetryTimer(ctx, id, e.Now())
	if errors.Is(err, store.ErrNotFound) {
		return TimerView{}, fmt.Errorf("%w: %q", ErrTimerNotFound, id)
	}
	if err != nil {
		return TimerView{}, fmt.Errorf("retry timer: %w", err)
	}
	e.log.Info("timer retried by operator", "timer_id", id, "workflow_type", t.WorkflowType,
		"workflow_id", t.WorkflowID, "key", t.Key)
	return timerView(t), nil
}
