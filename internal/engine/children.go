package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// The effects an ending owes its family. Their names start with '$', which no declared
// effect name can (names match ^[a-z][a-z0-9_]*$).
const (
	// ChildEndedEffect is the send a child emits as it ends: the parent's on_completed
	// or on_failed input, with the child's ending as its data.
	ChildEndedEffect = "$child_ended"
	// EndChildrenEffect is the effect a parent emits as it ends: its delivery
	// terminates the parent's running children whose link says terminate
	// (EndChildren).
	EndChildrenEffect = "$end_children"
	// ParentEndedReason is the reason of a child's termination by its parent's end.
	ParentEndedReason = "parent_ended"
)

// endChildrenPage is how many children one read of EndChildren pages.
const endChildrenPage = 100

// ChildEnding is the data of the input a child's ending sends its parent:
// {"child": {"workflow_type", "id", "status", "state"}}.
type ChildEnding struct {
	Child EndedChild `json:"child"`
}

// EndedChild describes a child as it ended.
type EndedChild struct {
	WorkflowType string         `json:"workflow_type"`
	ID           string         `json:"id"`
	Status       string         `json:"status"` // completed, failed or terminated
	State        workflow.State `json:"state"`
}

// addEndingEffects adds to w, and to its answer res, the effects owed by next, an
// instance w ends (def is its definition, nil when unknown): the answer to its parent
// (ChildEndedEffect, when its link names an input for this ending) and the termination
// of its children (EndChildrenEffect, when its definition can have children that end
// with it). Both are instance-scoped and carry depth, the chain depth of the input that
// ended it.
func (e *Engine) addEndingEffects(w *store.Write, res *Result, def *workflow.Definition, next *store.Instance, depth int, now time.Time) error {
	var out []store.Effect
	effect := func(name string, payload json.RawMessage, sendType, sendID string) store.Effect {
		return store.Effect{
			ID:            e.newID(),
			WorkflowType:  next.Type,
			WorkflowID:    next.ID,
			Seq:           next.Version,
			Name:          name,
			Payload:       payload,
			Status:        store.EffectPending,
			NextAttemptAt: now,
			CreatedAt:     now,
			UpdatedAt:     now,
			ChainDepth:    depth,
			SendType:      sendType,
			SendID:        sendID,
		}
	}
	if next.ParentType != "" {
		input := next.Link.OnFailed
		if next.Status == store.StatusCompleted {
			input = next.Link.OnCompleted
		}
		if input != "" {
			data, err := json.Marshal(ChildEnding{Child: EndedChild{WorkflowType: next.Type, ID: next.ID, Status: next.Status,
				State: workflow.State{Name: next.StateName, Data: next.StateData}}})
			if err != nil {
				return fmt.Errorf("encode the ending of %s/%s: %w", next.Type, next.ID, err)
			}
			payload, err := json.Marshal(workflow.Input{Type: input, Data: data})
			if err != nil {
				return fmt.Errorf("encode the ending of %s/%s: %w", next.Type, next.ID, err)
			}
			out = append(out, effect(ChildEndedEffect, payload, next.ParentType, next.ParentID))
		}
	}
	if def != nil && def.HasChildren() {
		// Sent to itself: a row with a send target is delivered by the engine and needs
		// no endpoint (the outbox tells this one by its name).
		out = append(out, effect(EndChildrenEffect, json.RawMessage(`{"reason":"`+ParentEndedReason+`"}`), next.Type, next.ID))
	}
	for _, se := range out {
		w.Effects = append(w.Effects, se)
		res.Effects = append(res.Effects, EffectRef{ID: se.ID, Name: se.Name})
	}
	return nil
}

// ParentEndedKey is the idempotency key of the termination of a child by the
// EndChildrenEffect effectID: each child is terminated once by it, however often the
// effect is attempted.
func ParentEndedKey(effectID string) string { return effectID + "/" + ParentEndedReason }

// EndChildren delivers ef, an EndChildrenEffect: it terminates, with reason
// parent_ended, every running child of ef's instance whose link says terminate, a page
// at a time, each termination keyed by ParentEndedKey. A child that ended meanwhile is
// left as it is. It returns how many it terminated. An error (the store failed, or ctx
// ended) leaves the rest for the next attempt: a child already terminated is not
// running any more, and its termination is never applied twice.
func (e *Engine) EndChildren(ctx context.Context, ef store.Effect) (int, error) {
	if ef.Name != EndChildrenEffect {
		return 0, fmt.Errorf("%w: effect %s is not %s", ErrInvalidArgument, ef.ID, EndChildrenEffect)
	}
	n := 0
	p := store.ListInstancesParams{ParentType: ef.WorkflowType, ParentID: ef.WorkflowID, Status: store.StatusRunning,
		OnParentEnd: store.ParentEndTerminate, Limit: endChildrenPage}
	for {
		page, err := e.store.ListInstances(ctx, p)
		if err != nil {
			return n, fmt.Errorf("list the children of %s/%s: %w", ef.WorkflowType, ef.WorkflowID, err)
		}
		for _, c := range page.Items {
			out, err := e.Terminate(ctx, c.Type, c.ID, ParentEndedReason, ExecuteOptions{IdempotencyKey: ParentEndedKey(ef.ID),
				Source: store.SourceEffect, ChainDepth: ef.ChainDepth + 1})
			if err != nil && !errors.Is(err, ErrInstanceNotFound) {
				return n, fmt.Errorf("terminate child %s/%s: %w", c.Type, c.ID, err)
			}
			if err == nil && out.Outcome == store.OutcomeAccepted && !out.Replayed {
				n++
			}
		}
		if page.Next == "" {
			return n, nil
		}
		p.Cursor = page.Next
	}
}

// ListChildren pages the children of the instance typ/id (the instances its sends with
// child created), oldest first, with status "" or one of the instance statuses.
// Errors: ErrInvalidID, ErrInstanceNotFound (the parent does not exist),
// ErrInvalidArgument (limit, status), store.ErrInvalidCursor.
func (e *Engine) ListChildren(ctx context.Context, typ, id, status, cursor string, limit int) (Page[WorkflowView], error) {
	if err := ValidateID(id); err != nil {
		return Page[WorkflowView]{}, err
	}
	page, err := e.ListWorkflows(ctx, store.ListInstancesParams{ParentType: typ, ParentID: id, Status: status, Cursor: cursor, Limit: limit})
	if err != nil || len(page.Items) > 0 || cursor != "" {
		return page, err
	}
	// Only an empty first page asks whether the parent exists.
	if _, err := e.store.GetInstance(ctx, typ, id); errors.Is(err, store.ErrNotFound) {
		return Page[WorkflowView]{}, fmt.Errorf("%w: %s/%s", ErrInstanceNotFound, typ, id)
	} else if err != nil {
		return Page[WorkflowView]{}, fmt.Errorf("get workflow: %w", err)
	}
	return page, nil
}
