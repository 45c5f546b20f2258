package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// ExecuteOptions are the per-request knobs of an input.
type ExecuteOptions struct {
	// IdempotencyKey: the same key on the same instance returns the first outcome again.
	IdempotencyKey string
	// ExpectedVersion: store.ErrVersionMismatch unless the instance is at exactly this
	// version (0: it must not exist yet).
	ExpectedVersion *int64
	// DryRun decides without committing anything.
	DryRun bool
	// Source records where the input came from (store.SourceAPI by default).
	Source string
	// ChainDepth is how many routed answers led to this input (0 for an input from the
	// API or a timer); the effects its decision emits carry it (store.Effect.ChainDepth).
	ChainDepth int
	// Parent, when set, is recorded on the instance this input creates as its parent
	// (the input of a send with child); an existing instance is left as it is.
	Parent *Parent
}

// Parent names the parent of a child instance and how the child answers to it.
type Parent struct {
	Type string
	ID   string
	Link store.ChildLink
}

// Outcome is the decision on one input as it was recorded.
type Outcome struct {
	// Outcome is store.OutcomeAccepted, OutcomeRejected or OutcomeAlreadyCompleted.
	Outcome string
	// Body is the response body. An idempotent replay returns it byte for byte: the
	// input record keeps it without the state data and the events' data, which a
	// replay reads back from the history (storedAnswer).
	Body json.RawMessage
	// Replayed is true when an earlier input with the same idempotency key answered.
	Replayed bool
	// Write is what was (or, on a dry run, would have been) committed; nil on a replay.
	Write *store.Write
	// Version is the instance's version after the decision, as Body's workflow.version
	// says (the ETag of the answer), or 0 when Body has no workflow: the instance does
	// not exist.
	Version int64
}

// Execute decides one input for the instance (typ, id) and commits the result.
//
// Errors: ErrInvalidID, ErrTypeNotFound, workflow.ErrUnknownInput,
// workflow.ErrInvalidInput and workflow.ErrEvaluation (as *workflow.ValidationError),
// store.ErrVersionMismatch, store.ErrIdempotencyMismatch, store.ErrUniqueKeyConflict,
// and store errors.
func (e *Engine) Execute(ctx context.Context, typ, id string, in workflow.Input, opts ExecuteOptions) (Outcome, error) {
	var own lastAnswer
	p, err := e.params(ctx, typ, id, in, opts, &own)
	if err != nil {
		return Outcome{}, err
	}
	start := time.Now()
	res, err := e.store.Execute(ctx, p)
	return e.outcome(ctx, res, err, &own, typ, in.Type, start, !opts.DryRun)
}

// outcome turns what the store recorded for an input (of type inputType) into its
// Outcome, with the answer, and observes the decision when observed is set and it was
// not a replay.
func (e *Engine) outcome(ctx context.Context, res store.ExecuteResult, err error, own *lastAnswer, typ, inputType string, start time.Time, observed bool) (Outcome, error) {
	if err != nil {
		return Outcome{}, err
	}
	body, err := e.answer(ctx, res, own)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Outcome: res.Input.Outcome, Body: body, Replayed: res.Replayed, Write: res.Write, Version: res.Input.Version}
	if e.observe != nil && !res.Replayed && observed {
		e.observe(typ, inputType, out.Outcome, time.Since(start))
	}
	return out, nil
}

// Params builds the store parameters that decide and record one input. The outbox and
// timer workers pass them as the Route of a completion, so a routed input is decided in
// the same transaction that completes the effect or timer. Errors: ErrInvalidID.
func (e *Engine) Params(typ, id string, in workflow.Input, opts ExecuteOptions) (store.ExecuteParams, error) {
	return e.params(nil, typ, id, in, opts, nil)
}

// params is Params for a request whose context is reqCtx (nil for none): the decision
// is abandoned when either reqCtx or the context the store decides under ends, since
// a store may decide under a context of its own that outlives the request. own, if not
// nil, is given the answer of each decision.
func (e *Engine) params(reqCtx context.Context, typ, id string, in workflow.Input, opts ExecuteOptions, own *lastAnswer) (store.ExecuteParams, error) {
	if err := ValidateID(id); err != nil {
		return store.ExecuteParams{}, err
	}
	if len(in.Data) == 0 || string(in.Data) == "null" {
		in.Data = json.RawMessage(`{}`)
	} else {
		data, err := compactJSON(in.Data)
		if err != nil {
			return store.ExecuteParams{}, fmt.Errorf("%w: data is not JSON", workflow.ErrInvalidInput)
		}
		in.Data = data
	}
	if opts.Source == "" {
		opts.Source = store.SourceAPI
	}
	return store.ExecuteParams{
		WorkflowType:    typ,
		WorkflowID:      id,
		IdempotencyKey:  opts.IdempotencyKey,
		RequestHash:     requestHash(in, opts.IdempotencyKey),
		ExpectedVersion: opts.ExpectedVersion,
		DryRun:          opts.DryRun,
		CommittedFunc:   e.committed,
		Decide: func(ctx context.Context, cur *store.Instance, def *store.Definition) (*store.Write, error) {
			if reqCtx != nil && reqCtx.Done() != nil {
				var cancel context.CancelCauseFunc
				ctx, cancel = context.WithCancelCause(ctx)
				defer cancel(nil)
				stop := context.AfterFunc(reqCtx, func() { cancel(context.Cause(reqCtx)) })
				defer stop()
			}
			w, res, err := e.decide(ctx, typ, id, in, opts, cur, def)
			if err == nil && own != nil {
				own.set(w.Input.ID, res)
			}
			return w, err
		},
	}, nil
}

// committed reports an instance the committed write w ended to ObserveEndedFunc. A write
// that changes an instance is only decided for a running one, so an ended instance in
// it has just ended.
func (e *Engine) committed(w *store.Write) {
	if e.ended != nil && w.Instance != nil && store.Ended(w.Instance.Status) {
		e.ended(w.Instance.Type, w.Instance.Status)
	}
}

// requestHash is what tells a retry with idempotency key key from another request
// with the same key: a hash of in. An input without a key is never compared with
// another, and gets none.
func requestHash(in workflow.Input, key string) string {
	if key == "" {
		return ""
	}
	h := sha256.New()
	h.Write([]byte(in.Type))
	h.Write([]byte{0})
	h.Write(in.Data)
	return hex.EncodeToString(h.Sum(nil))
}

// inputRecord is the record of input in for typ/id, before its outcome is known.
func (e *Engine) inputRecord(typ, id string, in workflow.Input, opts ExecuteOptions, now time.Time) store.InputRecord {
	return store.InputRecord{
		ID:             e.newID(),
		WorkflowType:   typ,
		WorkflowID:     id,
		IdempotencyKey: opts.IdempotencyKey,
		RequestHash:    requestHash(in, opts.IdempotencyKey),
		Type:           in.Type,
		Data:           in.Data,
		Source:         opts.Source,
		CreatedAt:      now,
	}
}

// decide runs inside the store's transaction with the instance locked; stored is the
// definition the store read for it (pinned or latest), nil when the type has none. It
// does no I/O, so a decision never waits for a second database connection while its
// transaction holds one. Its expressions stop when ctx ends (an error wrapping
// ctx.Err()) or when they overrun the decision's time budget (ErrEvaluation). It
// returns the write and the answer (finish).
func (e *Engine) decide(ctx context.Context, typ, id string, in workflow.Input, opts ExecuteOptions, cur *store.Instance, stored *store.Definition) (*store.Write, *Result, error) {
	if stored == nil {
		return nil, nil, fmt.Errorf("%w: %q", ErrTypeNotFound, typ)
	}
	def, err := e.compiled(*stored)
	if err != nil {
		return nil, nil, err
	}
	version := stored.Version
	now := e.Now()
	rec := e.inputRecord(typ, id, in, opts, now)
	w := &store.Write{}

	if cur != nil && store.Ended(cur.Status) {
		// Decide never runs for a completed instance, so the input is checked here: an
		// undeclared or invalid input is still a 400/422, not already_completed. On the
		// other paths Decide checks it (once: the JSON Schema check is the costly part).
		if err := def.ValidateInput(in); err != nil {
			return nil, nil, err
		}
		rec.Outcome = store.OutcomeAlreadyCompleted
		rec.Version = cur.Version
		return e.finish(w, rec, Result{Outcome: rec.Outcome, Workflow: workflowView(cur)})
	}

	ref := workflow.Ref{Type: typ, ID: id}
	var (
		state workflow.State
		dec   workflow.Decision
	)
	budget, cancel := context.WithTimeoutCause(ctx, e.budget, errOverBudget)
	defer cancel()
	if cur == nil {
		state = def.InitialState()
		dec, err = workflow.DecideNewContext(budget, def, ref, in, now)
	} else {
		state = workflow.State{Name: cur.StateName, Data: cur.StateData}
		dec, err = workflow.DecideContext(budget, def, ref, state, in, now)
	}
	if err != nil {
		if ctx.Err() == nil && errors.Is(context.Cause(budget), errOverBudget) {
			return nil, nil, &workflow.ValidationError{Err: workflow.ErrEvaluation, Errors: []workflow.FieldError{{
				Path:    "",
				Message: fmt.Sprintf("the decision's expressions ran longer than its budget of %s", e.budget),
			}}}
		}
		return nil, nil, err
	}
	if !dec.Accepted {
		rec.Outcome = store.OutcomeRejected
		rec.Reason = dec.Reason
		if cur != nil {
			rec.Version = cur.Version
		}
		return e.finish(w, rec, Result{
			Outcome:   rec.Outcome,
			Rejection: &Rejection{Reason: dec.Reason, State: state.Name, Input: in.Type},
			Workflow:  workflowView(cur),
		})
	}

	next := store.Instance{Type: typ, ID: id, DefinitionVersion: version, CreatedAt: now, Status: store.StatusRunning}
	if cur != nil {
		next = *cur
	} else if key, ok, err := def.UniqueKey(ref, in, now); err != nil {
		return nil, nil, err
	} else if ok {
		next.UniqueKey = key
	}
	if cur == nil && opts.Parent != nil {
		next.ParentType, next.ParentID, next.Link = opts.Parent.Type, opts.Parent.ID, opts.Parent.Link
	}
	next.Version++
	next.StateName = dec.NewState.Name
	next.StateData = dec.NewState.Data
	next.UpdatedAt = now
	if dec.Completed {
		next.Status = store.StatusCompleted
		if dec.Failed {
			next.Status = store.StatusFailed
		}
		next.CompletedAt = &now
	}
	w.Instance = &next
	rec.Outcome = store.OutcomeAccepted
	rec.Version = next.Version

	ev := store.Event{
		WorkflowType: typ,
		WorkflowID:   id,
		Seq:          next.Version,
		Type:         dec.Event.Type,
		From:         dec.Event.From,
		To:           dec.Event.To,
		Data:         dec.Event.Data,
		InputType:    in.Type,
		InputID:      rec.ID,
		RecordedAt:   now,
	}
	w.Events = []store.Event{ev}
	res := Result{
		Outcome:  rec.Outcome,
		Workflow: workflowView(&next),
		Events:   []EventView{eventView(ev)},
		Effects:  []EffectRef{},
		Timers:   &TimerChanges{Scheduled: []TimerRef{}, Cancelled: []string{}},
	}
	for _, ef := range dec.Effects {
		se := store.Effect{
			ID:              e.newID(),
			WorkflowType:    typ,
			WorkflowID:      id,
			Seq:             ev.Seq,
			Name:            ef.Name,
			Key:             ef.Key,
			Payload:         ef.Payload,
			Status:          store.EffectPending,
			NextAttemptAt:   now,
			CreatedAt:       now,
			UpdatedAt:       now,
			ChainDepth:      opts.ChainDepth,
			MaxAttempts:     ef.Policy.MaxAttempts,
			InitialInterval: ef.Policy.InitialInterval,
			MaxInterval:     ef.Policy.MaxInterval,
			Timeout:         ef.Policy.Timeout,
			StateScoped:     ef.Policy.StateScoped,
			OnDead:          ef.OnDead,
			Item:            ef.Item,
			ItemIndex:       ef.Index,
		}
		if s := ef.Send; s != nil {
			se.SendType, se.SendID = s.WorkflowType, s.ID
			if c := s.Child; c != nil {
				se.SendChild = store.ChildLink{OnCompleted: c.OnCompleted, OnFailed: c.OnFailed, OnParentEnd: c.OnParentEnd}
			}
		}
		w.Effects = append(w.Effects, se)
		res.Effects = append(res.Effects, EffectRef{ID: se.ID, Name: se.Name, Key: se.Key})
	}
	if dec.LeavesState && def.ScopesEffectsToStates() {
		// Leaving the state cancels its undelivered state-scoped effects, before this
		// decision's own effects are written (the store applies cancels first).
		w.CancelEffects = store.CancelState
	}
	if dec.Completed {
		if def.HasChildren() && cur != nil {
			// An ending also cancels the sends of children that would end with it: a
			// child created after its parent's end would escape EndChildren.
			w.CancelEffects = store.CancelEnding
		}
		if err := e.addEndingEffects(w, &res, def, &next, opts.ChainDepth, now); err != nil {
			return nil, nil, err
		}
	}
	w.CancelTimerKeys = dec.CancelTimers
	res.Timers.Cancelled = append(res.Timers.Cancelled, dec.CancelTimers...)
	for _, t := range dec.Timers {
		st := e.timerRecord(typ, id, t.Key, t.FireAt.UTC().Truncate(time.Microsecond), t.Input, now)
		w.Timers = append(w.Timers, st)
		res.Timers.Scheduled = append(res.Timers.Scheduled, TimerRef{Key: st.Key, FireAt: st.FireAt})
	}
	return e.finish(w, rec, res)
}

// errOverBudget is the cause of a decision's context when its time budget ran out.
var errOverBudget = errors.New("decision over its time budget")

func (e *Engine) timerRecord(typ, id, key string, fireAt time.Time, in workflow.Input, now time.Time) store.Timer {
	data := in.Data
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	return store.Timer{
		ID:            e.newID(),
		WorkflowType:  typ,
		WorkflowID:    id,
		Key:           key,
		FireAt:        fireAt,
		InputType:     in.Type,
		InputData:     data,
		Status:        store.TimerPending,
		NextAttemptAt: fireAt,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
}

// finish completes w with its input record rec, which keeps the answer res as
// storedAnswer when rec has an idempotency key, and returns it with the answer.
func (e *Engine) finish(w *store.Write, rec store.InputRecord, res Result) (*store.Write, *Result, error) {
	if rec.IdempotencyKey != "" {
		stored, err := encodeStored(res)
		if err != nil {
			return nil, nil, err
		}
		rec.Response = stored
	}
	w.Input = rec
	return w, &res, nil
}

// IsInputError reports whether err means the input itself is bad (unknown type,
// invalid data, an expression that fails on it, an invalid id, an idempotency key
// already used for another input) rather than the system failing: the outbox and timer
// workers dead-letter such inputs instead of retrying.
func IsInputError(err error) bool {
	return errors.Is(err, store.ErrIdempotencyMismatch) ||
		errors.Is(err, workflow.ErrUnknownInput) ||
		errors.Is(err, workflow.ErrInvalidInput) ||
		errors.Is(err, workflow.ErrEvaluation) ||
		errors.Is(err, workflow.ErrTooLarge) ||
		errors.Is(err, ErrInvalidID) ||
		errors.Is(err, ErrTypeNotFound) ||
		errors.Is(err, store.ErrUniqueKeyConflict)
}
