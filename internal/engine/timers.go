package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

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
	tv, _, err := e.ScheduleInputWithKey(ctx, typ, id, "", in, fireAt)
	return tv, err
}

// delayedTimerNamespace names the timer ids derived from a client's idempotency key.
var delayedTimerNamespace = uuid.MustParse("60b58104-eb24-44af-9577-22987e792714")

// ScheduleInputWithKey is ScheduleInput with a client's idempotency key (none when
// key is empty). The timer then has the key DelayedKeyPrefix+key and an id derived from
// (typ, id, key), so a retry finds the timer the first request scheduled, whatever
// became of it since (pending, fired, cancelled), and returns it with replayed set
// instead of scheduling the input again; the same key with another input is
// store.ErrIdempotencyMismatch. Other errors are those of ScheduleInput.
func (e *Engine) ScheduleInputWithKey(ctx context.Context, typ, id, key string, in workflow.Input, fireAt time.Time) (tv TimerView, replayed bool, err error) {
	if err := ValidateID(id); err != nil {
		return TimerView{}, false, err
	}
	version := 0
	cur, err := e.store.GetInstance(ctx, typ, id)
	switch {
	case err == nil:
		version = cur.DefinitionVersion
	case !errors.Is(err, store.ErrNotFound):
		return TimerView{}, false, fmt.Errorf("get instance: %w", err)
	}
	def, err := e.definition(ctx, typ, version)
	if err != nil {
		return TimerView{}, false, err
	}
	if len(in.Data) == 0 || string(in.Data) == "null" {
		in.Data = []byte(`{}`)
	} else if in.Data, err = compactJSON(in.Data); err != nil {
		return TimerView{}, false, fmt.Errorf("%w: data is not JSON", workflow.ErrInvalidInput)
	}
	if err := def.ValidateInput(in); err != nil {
		return TimerView{}, false, err
	}
	timerKey := e.newID()
	if key != "" {
		timerKey = key
	}
	t := e.timerRecord(typ, id, DelayedKeyPrefix+timerKey, fireAt.UTC().Truncate(time.Microsecond), in, e.Now())
	if key != "" {
		t.ID = uuid.NewSHA1(delayedTimerNamespace, []byte(typ+"\x00"+id+"\x00"+key)).String()
		if tv, ok, err := e.scheduledBefore(ctx, t); ok || err != nil {
			return tv, ok, err
		}
	}
	saved, err := e.store.ScheduleTimer(ctx, t)
	if err != nil {
		if key != "" { // a concurrent retry may have stored it first
			if tv, ok, err := e.scheduledBefore(ctx, t); ok || err != nil {
				return tv, ok, err
			}
		}
		return TimerView{}, false, fmt.Errorf("schedule timer: %w", err)
	}
	return timerView(saved), false, nil
}

// scheduledBefore returns the timer with t's id if an earlier request stored it (ok),
// or store.ErrIdempotencyMismatch when that timer carries another input.
func (e *Engine) scheduledBefore(ctx context.Context, t store.Timer) (tv TimerView, ok bool, err error) {
	prev, err := e.store.GetTimer(ctx, t.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return TimerView{}, false, nil
	case err != nil:
		return TimerView{}, false, fmt.Errorf("get timer: %w", err)
	case prev.InputType != t.InputType || !bytes.Equal(prev.InputData, t.InputData):
		return TimerView{}, false, fmt.Errorf("%w: the Idempotency-Key scheduled another input on this workflow", store.ErrIdempotencyMismatch)
	}
	return timerView(prev), true, nil
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

// CancelTimer cancels a pending timer or discards a dead one; it stays listed as
// cancelled. Errors: ErrTimerNotFound, store.ErrWrongStatus when it has fired or is
// cancelled already.
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
