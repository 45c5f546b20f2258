package engine

import (
	"context"
	"fmt"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// OnDeadKey is the idempotency key of the on_dead input of effect id: the input runs
// once per effect, and a later death (after an operator retry) replays its record.
func OnDeadKey(effectID string) string { return effectID + "/on_dead" }

// OnDeadParams builds the store parameters that run the on_dead input of ef, which
// died with last as its last attempt. The outbox passes them as the Route of the
// completion that marks the effect dead, so the input is decided in that transaction:
// its data is evaluated there, on the locked instance, with effect {id, name, key,
// attempts, last_status, last_error} in scope (and, for an effect of a for_each, item
// and index: the element ef kept), and the input is then decided as any other (an
// ended instance answers already_completed). The input is keyed by OnDeadKey with one
// request hash per effect, so a second death replays the first outcome. Errors:
// ErrInvalidID; from the decision, ErrTypeNotFound, ErrInstanceNotFound and the errors
// of Execute.
func (e *Engine) OnDeadParams(ef store.Effect, last store.Attempt) (store.ExecuteParams, error) {
	if err := ValidateID(ef.WorkflowID); err != nil {
		return store.ExecuteParams{}, err
	}
	typ, id := ef.WorkflowType, ef.WorkflowID
	opts := ExecuteOptions{IdempotencyKey: OnDeadKey(ef.ID), Source: store.SourceEffect, ChainDepth: ef.ChainDepth + 1}
	dead := workflow.DeadEffect{ID: ef.ID, Name: ef.Name, Key: ef.Key, Attempts: ef.Attempts + 1,
		LastStatus: last.StatusCode, LastError: last.Error, Item: ef.Item, Index: ef.ItemIndex}
	return store.ExecuteParams{
		WorkflowType:   typ,
		WorkflowID:     id,
		IdempotencyKey: opts.IdempotencyKey,
		// One hash per effect: the data of a later death differs (its attempts), and
		// it must replay the first, not be refused as another request.
		RequestHash:   requestHash(workflow.Input{Type: "$on_dead", Data: []byte(`"` + ef.ID + `"`)}, opts.IdempotencyKey),
		CommittedFunc: e.committed,
		Decide: func(ctx context.Context, cur *store.Instance, stored *store.Definition) (*store.Write, error) {
			if stored == nil {
				return nil, fmt.Errorf("%w: %q", ErrTypeNotFound, typ)
			}
			if cur == nil {
				return nil, fmt.Errorf("%w: %s/%s", ErrInstanceNotFound, typ, id)
			}
			def, err := e.compiled(*stored)
			if err != nil {
				return nil, err
			}
			state := workflow.State{Name: cur.StateName, Data: cur.StateData}
			in, err := def.OnDeadInput(ctx, workflow.Ref{Type: typ, ID: id}, state, ef.OnDead, dead, e.Now())
			if err != nil {
				return nil, err
			}
			w, _, err := e.decide(ctx, typ, id, in, opts, cur, stored) // nobody waits for its answer
			return w, err
		},
	}, nil
}
