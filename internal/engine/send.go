package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// ErrSendRejected: the target of a send effect did not accept its input: the instance
// rejected it, or does not exist and the input cannot create it. The outbox counts it a
// failed attempt of the send, retried by the effect's policy.
var ErrSendRejected = errors.New("send rejected by its target")

// SendParams builds the store parameters that deliver the send effect ef: its input
// (the payload) decided on the target instance, in the transaction that marks the
// effect delivered (the completion's Route). The input is keyed by the effect id, so a
// retried send is applied once; it carries the effect's chain depth plus one, as a
// routed answer does; an instance it creates records the sender as its parent when the
// send has a child link. A rejection aborts the transaction with ErrSendRejected;
// already_completed is an answer like accepted. Errors: ErrInvalidID and
// workflow.ErrInvalidInput for an effect that is no send; from the decision,
// ErrSendRejected and the errors of Execute.
func (e *Engine) SendParams(ef store.Effect) (store.ExecuteParams, error) {
	if ef.SendType == "" {
		return store.ExecuteParams{}, fmt.Errorf("%w: effect %s sends nothing", workflow.ErrInvalidInput, ef.ID)
	}
	var in workflow.Input
	if err := json.Unmarshal(ef.Payload, &in); err != nil || in.Type == "" {
		return store.ExecuteParams{}, fmt.Errorf("%w: the payload of send effect %s is not an input", workflow.ErrInvalidInput, ef.ID)
	}
	opts := ExecuteOptions{IdempotencyKey: ef.ID, Source: store.SourceEffect, ChainDepth: ef.ChainDepth + 1}
	if ef.SendChild.OnParentEnd != "" {
		opts.Parent = &Parent{Type: ef.WorkflowType, ID: ef.WorkflowID, Link: ef.SendChild}
	}
	p, err := e.params(nil, ef.SendType, ef.SendID, in, opts, nil)
	if err != nil {
		return store.ExecuteParams{}, err
	}
	decide := p.Decide
	p.Decide = func(ctx context.Context, cur *store.Instance, def *store.Definition) (*store.Write, error) {
		w, err := decide(ctx, cur, def)
		if err != nil {
			return nil, err
		}
		if w.Input.Outcome == store.OutcomeRejected {
			if cur == nil {
				return nil, fmt.Errorf("%w: %s/%s does not exist, and input %q does not create it: %s",
					ErrSendRejected, ef.SendType, ef.SendID, in.Type, w.Input.Reason)
			}
			return nil, fmt.Errorf("%w: %s/%s rejected input %q: %s", ErrSendRejected, ef.SendType, ef.SendID, in.Type, w.Input.Reason)
		}
		return w, nil
	}
	return p, nil
}
