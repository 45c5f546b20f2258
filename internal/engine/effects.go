package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/ironflow/ironflow/internal/store"
)

// ErrEffectNotFound: no effect has the requested id.
var ErrEffectNotFound = errors.New("effect not found")

// ListEffects pages effects filtered by status, workflow type and id, oldest first.
// Errors: ErrInvalidArgument (limit, status), store.ErrInvalidCursor.
func (e *Engine) ListEffects(ctx context.Context, p store.ListEffectsParams) (Page[EffectView], error) {
	var err error
	if p.Limit, err = checkLimit(p.Limit); err != nil {
		return Page[EffectView]{}, err
	}
	switch p.Status {
	case "", store.EffectPending, store.EffectDelivered, store.EffectDead, store.EffectCancelled:
	default:
		return Page[EffectView]{}, fmt.Errorf("%w: status must be pending, delivered, dead or cancelled", ErrInvalidArgument)
	}
	page, err := e.store.ListEffects(ctx, p)
	if err != nil {
		return Page[EffectView]{}, fmt.Errorf("list effects: %w", err)
	}
	return mapPage(page, effectView), nil
}

// GetEffect returns an effect with its attempt log. Errors: ErrEffectNotFound.
func (e *Engine) GetEffect(ctx context.Context, id string) (EffectView, error) {
	ef, attempts, err := e.store.GetEffect(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return EffectView{}, fmt.Errorf("%w: %q", ErrEffectNotFound, id)
	}
	if err != nil {
		return EffectView{}, fmt.Errorf("get effect: %w", err)
	}
	v := effectView(ef)
	v.AttemptLog = make([]AttemptView, 0, len(attempts))
	for _, a := range attempts {
		v.AttemptLog = append(v.AttemptLog, attemptView(a))
	}
	return v, nil
}

// RetryEffect puts a dead effect back to pending, due now, with a fresh attempt budget.
// Errors: ErrEffectNotFound, store.ErrWrongStatus when the effect is not dead.
func (e *Engine) RetryEffect(ctx context.Context, id string) (EffectView, error) {
	ef, err := e.store.RetryEffect(ctx, id, e.Now())
	if errors.Is(err, store.ErrNotFound) {
		return EffectView{}, fmt.Errorf("%w: %q", ErrEffectNotFound, id)
	}
	if err != nil {
		return EffectView{}, fmt.Errorf("retry effect: %w", err)
	}
	e.log.Info("effect retried by operator", "effect_id", id, "workflow_type", ef.WorkflowType,
		"workflow_id", ef.WorkflowID)
	return effectView(ef), nil
}

// CancelEffect discards a pending or dead effect: it is never delivered (an answer
// already in flight is recorded, never routed) and stays listed as cancelled. Errors:
// ErrEffectNotFound, store.ErrWrongStatus when it is delivered or cancelled already.
func (e *Engine) CancelEffect(ctx context.Context, id string) (EffectView, error) {
	ef, err := e.store.CancelEffect(ctx, id, e.Now())
	if errors.Is(err, store.ErrNotFound) {
		return EffectView{}, fmt.Errorf("%w: %q", ErrEffectNotFound, id)
	}
	if err != nil {
		return EffectView{}, fmt.Errorf("cancel effect: %w", err)
	}
	e.log.Info("effect cancelled by operator", "effect_id", id, "workflow_type", ef.WorkflowType,
		"workflow_id", ef.WorkflowID, "name", ef.Name)
	return effectView(ef), nil
}
