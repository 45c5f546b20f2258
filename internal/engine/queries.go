package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// MaxPageSize bounds every list's limit.
const MaxPageSize = 500

// Page is one page of a list; its JSON is the API's list body.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func checkLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return 50, nil
	case limit < 0 || limit > MaxPageSize:
		return 0, fmt.Errorf("%w: limit must be between 1 and %d", ErrInvalidArgument, MaxPageSize)
	}
	return limit, nil
}

func mapPage[S, T any](p store.Page[S], f func(S) T) Page[T] {
	out := Page[T]{Items: make([]T, 0, len(p.Items)), NextCursor: p.Next}
	for _, s := range p.Items {
		out.Items = append(out.Items, f(s))
	}
	return out
}

func notFound(err error, typ, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s/%s", ErrInstanceNotFound, typ, id)
	}
	return err
}

// GetWorkflow returns an instance; with atVersion > 0 its state is replayed from the
// history up to that version. Errors: ErrInstanceNotFound, ErrInvalidArgument.
func (e *Engine) GetWorkflow(ctx context.Context, typ, id string, atVersion int64) (WorkflowView, error) {
	if err := ValidateID(id); err != nil {
		return WorkflowView{}, err
	}
	in, err := e.store.GetInstance(ctx, typ, id)
	if err != nil {
		return WorkflowView{}, notFound(err, typ, id)
	}
	if atVersion < 0 || atVersion > in.Version {
		return WorkflowView{}, fmt.Errorf("%w: at_version must be between 1 and %d", ErrInvalidArgument, in.Version)
	}
	if atVersion == 0 || atVersion == in.Version {
		return *workflowView(&in), nil
	}
	def, err := e.definition(ctx, typ, in.DefinitionVersion)
	if err != nil {
		return WorkflowView{}, err
	}
	state, last, err := e.replay(ctx, def.InitialState(), typ, id, atVersion)
	if err != nil {
		return WorkflowView{}, err
	}
	v := *workflowView(&in)
	v.State = state
	v.Version = atVersion
	v.UpdatedAt = last
	v.Status = store.StatusRunning
	v.CompletedAt = nil
	if end := def.EndStatus(state.Name); end != "" {
		v.Status = end // workflow.EndCompleted and EndFailed are the store's statuses
		v.CompletedAt = &last
	}
	return v, nil
}

// Replay folds the history of an instance from its definition's initial state with
// workflow.Evolve. Tests use it to check that the cached snapshot equals the replay.
func (e *Engine) Replay(ctx context.Context, typ, id string) (workflow.State, error) {
	in, err := e.store.GetInstance(ctx, typ, id)
	if err != nil {
		return workflow.State{}, notFound(err, typ, id)
	}
	def, err := e.definition(ctx, typ, in.DefinitionVersion)
	if err != nil {
		return workflow.State{}, err
	}
	s, _, err := e.replay(ctx, def.InitialState(), typ, id, in.Version)
	return s, err
}

func (e *Engine) replay(ctx context.Context, s workflow.State, typ, id string, upTo int64) (workflow.State, time.Time, error) {
	var last time.Time
	var after int64
	for after < upTo {
		evs, err := e.store.ListEvents(ctx, typ, id, after, MaxPageSize)
		if err != nil {
			return s, last, fmt.Errorf("list events: %w", err)
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			if ev.Seq > upTo {
				return s, last, nil
			}
			s, err = workflow.Evolve(s, workflow.Event{Type: ev.Type, From: ev.From, To: ev.To, Data: ev.Data, InputType: ev.InputType})
			if err != nil {
				return s, last, fmt.Errorf("replay event %d: %w", ev.Seq, err)
			}
			last = ev.RecordedAt
			after = ev.Seq
		}
	}
	return s, last, nil
}

// ListWorkflows pages instances matching the filters. Errors: ErrInvalidArgument,
// store.ErrInvalidCursor.
func (e *Engine) ListWorkflows(ctx context.Context, p store.ListInstancesParams) (Page[WorkflowView], error) {
	var err error
	if p.Limit, err = checkLimit(p.Limit); err != nil {
		return Page[WorkflowView]{}, err
	}
	switch p.Status {
	case "", store.StatusRunning, store.StatusCompleted, store.StatusFailed, store.StatusTerminated:
	default:
		return Page[WorkflowView]{}, fmt.Errorf("%w: status must be running, completed, failed or terminated", ErrInvalidArgument)
	}
	page, err := e.store.ListInstances(ctx, p)
	if err != nil {
		return Page[WorkflowView]{}, err
	}
	return mapPage(page, func(in store.Instance) WorkflowView { return *workflowView(&in) }), nil
}

// CountWorkflows counts the instances of each status, of type typ when it is not empty,
// created in [after, before) (a zero time does not bound). Each count reads at most
// Config.CountCap+1 instances: one over it is reported as the cap, with Capped set.
func (e *Engine) CountWorkflows(ctx context.Context, typ string, after, before time.Time) (WorkflowCountsView, error) {
	c, err := e.store.CountInstances(ctx, store.CountInstancesParams{Type: typ, CreatedAfter: after,
		CreatedBefore: before, Limit: int(e.cap) + 1})
	if err != nil {
		return WorkflowCountsView{}, fmt.Errorf("count workflows: %w", err)
	}
	v := WorkflowCountsView{Cap: e.cap}
	capped := func(n int64) int64 {
		if n > e.cap {
			v.Capped = true
			return e.cap
		}
		return n
	}
	v.Counts = StatusCountsView{Running: capped(c.Running), Completed: capped(c.Completed),
		Failed: capped(c.Failed), Terminated: capped(c.Terminated)}
	return v, nil
}

// ListEvents returns up to limit events of an instance after seq, as a page whose
// cursor is the last seq. Errors: ErrInstanceNotFound, ErrInvalidArgument.
func (e *Engine) ListEvents(ctx context.Context, typ, id string, after int64, limit int) (Page[EventView], error) {
	var err error
	if limit, err = checkLimit(limit); err != nil {
		return Page[EventView]{}, err
	}
	if after < 0 {
		return Page[EventView]{}, fmt.Errorf("%w: after must not be negative", ErrInvalidArgument)
	}
	if err := ValidateID(id); err != nil {
		return Page[EventView]{}, err
	}
	in, err := e.store.GetInstance(ctx, typ, id)
	if err != nil {
		return Page[EventView]{}, notFound(err, typ, id)
	}
	// Events are read as the store's lists are (sqlstore.MaxPageBytes): a chunk first,
	// then as many as fit in what is left of maxPageBytes at the largest size seen.
	out := Page[EventView]{Items: make([]EventView, 0, min(limit, eventChunk))}
	total, largest := 0, 1
	want := min(limit, eventChunk)
	for {
		evs, err := e.store.ListEvents(ctx, typ, id, after, want)
		if err != nil {
			return Page[EventView]{}, fmt.Errorf("list events: %w", err)
		}
		for _, ev := range evs {
			out.Items = append(out.Items, eventView(ev))
			after = ev.Seq
			total += len(ev.Data)
			largest = max(largest, len(ev.Data))
		}
		if len(evs) < want || after >= in.Version {
			return out, nil
		}
		if len(out.Items) == limit || total >= maxPageBytes {
			out.NextCursor = fmt.Sprint(after)
			return out, nil
		}
		want = min(limit-len(out.Items), max(1, (maxPageBytes-total)/largest))
	}
}

// eventChunk is how many events a page of the history reads first.
const eventChunk = 16

// ListInputs pages every input an instance received and its outcome.
// Errors: ErrInvalidArgument, store.ErrInvalidCursor.
func (e *Engine) ListInputs(ctx context.Context, typ, id, cursor string, limit int) (Page[InputView], error) {
	var err error
	if limit, err = checkLimit(limit); err != nil {
		return Page[InputView]{}, err
	}
	if err := ValidateID(id); err != nil {
		return Page[InputView]{}, err
	}
	page, err := e.store.ListInputs(ctx, typ, id, cursor, limit)
	if err != nil {
		return Page[InputView]{}, err
	}
	return mapPage(page, inputView), nil
}
