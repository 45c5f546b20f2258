package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// Terminate records the termination of an instance. Its input type and event type are
// spelled so that no declared input (names match ^[a-z][a-z0-9_]*$) or event can be
// mistaken for them.
const (
	TerminateInput = "$terminate"
	TerminateEvent = "Terminated"
)

// MaxReasonBytes bounds a termination reason.
const MaxReasonBytes = 1 << 10

// Terminate ends a running instance from outside with status terminated: one event
// (TerminateEvent, staying in the current state, its data {} so the state is unchanged;
// the reason is the input's data), every pending timer and effect of the instance
// cancelled and its unique key freed, all in one transaction, which also emits what
// its ending owes: the parent's on_failed input, the termination of its children
// (endingEffects). An instance that has
// already ended answers already_completed and changes nothing. opts.IdempotencyKey
// replays the first answer as Execute does; opts.Source and ExpectedVersion apply.
//
// Errors: ErrInvalidID, ErrInstanceNotFound, ErrInvalidArgument (reason too long),
// store.ErrVersionMismatch, store.ErrIdempotencyMismatch and store errors.
func (e *Engine) Terminate(ctx context.Context, typ, id, reason string, opts ExecuteOptions) (Outcome, error) {
	if err := ValidateID(id); err != nil {
		return Outcome{}, err
	}
	if len(reason) > MaxReasonBytes {
		return Outcome{}, fmt.Errorf("%w: reason is longer than %d bytes", ErrInvalidArgument, MaxReasonBytes)
	}
	data, err := json.Marshal(map[string]string{"reason": reason})
	if err != nil {
		return Outcome{}, err
	}
	in := workflow.Input{Type: TerminateInput, Data: data}
	if opts.Source == "" {
		opts.Source = store.SourceAPI
	}
	var own lastAnswer
	start := time.Now()
	res, err := e.store.Execute(ctx, store.ExecuteParams{
		WorkflowType:    typ,
		WorkflowID:      id,
		IdempotencyKey:  opts.IdempotencyKey,
		RequestHash:     requestHash(in, opts.IdempotencyKey),
		ExpectedVersion: opts.ExpectedVersion,
		CommittedFunc:   e.committed,
		Decide: func(_ context.Context, cur *store.Instance, stored *store.Definition) (*store.Write, error) {
			w, res, err := e.terminate(typ, id, in, opts, cur, stored)
			if err == nil {
				own.set(w.Input.ID, res)
			}
			return w, err
		},
	})
	return e.outcome(ctx, res, err, &own, typ, TerminateInput, start, true)
}

// terminate decides a termination against the locked instance cur, pinned to the
// definition stored; it returns the write and the answer.
func (e *Engine) terminate(typ, id string, in workflow.Input, opts ExecuteOptions, cur *store.Instance, stored *store.Definition) (*store.Write, *Result, error) {
	if cur == nil {
		return nil, nil, fmt.Errorf("%w: %s/%s", ErrInstanceNotFound, typ, id)
	}
	now := e.Now()
	rec := e.inputRecord(typ, id, in, opts, now)
	w := &store.Write{}
	if store.Ended(cur.Status) {
		rec.Outcome = store.OutcomeAlreadyCompleted
		rec.Version = cur.Version
		return e.finish(w, rec, Result{Outcome: rec.Outcome, Workflow: workflowView(cur)})
	}
	next := *cur
	next.Version++
	next.Status = store.StatusTerminated
	next.UpdatedAt = now
	next.CompletedAt = &now
	ev := store.Event{
		WorkflowType: typ,
		WorkflowID:   id,
		Seq:          next.Version,
		Type:         TerminateEvent,
		From:         cur.StateName,
		To:           cur.StateName,
		Data:         json.RawMessage(`{}`),
		InputType:    in.Type,
		InputID:      rec.ID,
		RecordedAt:   now,
	}
	w.Instance = &next
	w.Events = []store.Event{ev}
	w.CancelEffects = store.CancelAll
	w.CancelAllTimers = true
	rec.Outcome = store.OutcomeAccepted
	rec.Version = next.Version
	var def *workflow.Definition
	if stored != nil {
		var err error
		if def, err = e.compiled(*stored); err != nil {
			return nil, nil, err
		}
	}
	res := Result{
		Outcome:  rec.Outcome,
		Workflow: workflowView(&next),
		Events:   []EventView{eventView(ev)},
		Effects:  []EffectRef{},
	}
	// The ending's own effects are written after the cancels: its parent hears of it,
	// its children are terminated.
	if err := e.addEndingEffects(w, &res, def, &next, opts.ChainDepth, now); err != nil {
		return nil, nil, err
	}
	return e.finish(w, rec, res)
}
