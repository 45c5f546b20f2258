package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ironflow/ironflow/internal/store"
)

// Inputs through the batcher (docs/decisions/0023-batched-inputs.md): concurrent
// Execute calls for distinct instances share one protocol transaction, as routed
// completions do (store.CompleteRouted). A lone input goes at once on its own path;
// inputs that arrive while earlier batches are being recorded form the next one
// (store.Batcher, the group commit the timer and effect workers use).

// inputCall is one Execute waiting in the batcher: its own context and parameters, and
// the result the batch gives it.
type inputCall struct {
	ctx context.Context
	p   store.ExecuteParams
	res store.ExecuteResult
}

// Routed is the input the call decides (store.SplitRouted groups calls by instance).
func (c *inputCall) Routed() *store.ExecuteParams { return &c.p }

// newInputBatcher returns the batcher of s's inputs.
func newInputBatcher(s *Store) *store.Batcher[*inputCall] {
	return store.NewBatcher(s.executeCalls)
}

// executeCalls records calls as Execute would record each alone: those of distinct
// instances in one transaction, the rest (and all of them when that transaction fails
// as a whole: a unique key taken, a constraint) one by one, each under its own
// context. A call whose context has ended is answered with its error and not recorded.
//
// The batch runs under a context that ends only once every member's has: the leader
// that runs it may be a caller that has gone away, and the others still want their
// answers.
func (s *Store) executeCalls(leader context.Context, calls []*inputCall) []error {
	errs := make([]error, len(calls))
	live := make([]*inputCall, 0, len(calls))
	index := make([]int, 0, len(calls))
	for i, c := range calls {
		if err := c.ctx.Err(); err != nil {
			errs[i] = s.mapErr("execute", err)
			continue
		}
		live, index = append(live, c), append(index, i)
	}
	ctxs := make([]context.Context, len(live))
	for i, c := range live {
		ctxs[i] = c.ctx
	}
	ctx, cancel := jointContext(leader, ctxs)
	defer cancel()
	results := store.CompleteRouted(live,
		func(cs []*inputCall) ([]error, error) { return s.executeBatch(ctx, cs) },
		func(c *inputCall) error {
			var err error
			c.res, err = s.execute(c.ctx, c.p)
			return err
		})
	for k, i := range index {
		errs[i] = results[k]
	}
	return errs
}

// executeBatch records calls, inputs of distinct instances, in one protocol transaction
// and returns each one's error (an input refused wrote nothing), or an error of its own
// when it recorded nothing at all. Each input's idempotency key is looked up, so a
// replay inside a batch answers as it would alone.
func (s *Store) executeBatch(ctx context.Context, calls []*inputCall) ([]error, error) {
	items := make([]item, len(calls))
	seen := make(map[Key]bool, len(calls))
	for k, c := range calls {
		key := Key{c.p.WorkflowType, c.p.WorkflowID}
		switch {
		case c.p.Decide == nil || c.p.DryRun:
			return nil, errors.New("a batch input must decide and commit")
		case seen[key]:
			return nil, fmt.Errorf("two inputs of %s/%s in one batch", key.Type, key.ID)
		}
		seen[key] = true
		items[k] = item{route: &c.p}
	}
	results, err := s.record(ctx, items, true, false)
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(results))
	for k, r := range results {
		calls[k].res, errs[k] = r.res, s.mapErr("execute", r.err)
	}
	return errs, nil
}

// jointContext returns a context with parent's values that is cancelled once every one
// of ctxs has ended (at once when there are none), or by the returned cancel.
func jointContext(parent context.Context, ctxs []context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	if len(ctxs) == 0 {
		cancel()
		return ctx, cancel
	}
	left := atomic.Int64{}
	left.Store(int64(len(ctxs)))
	stops := make([]func() bool, len(ctxs))
	for i, c := range ctxs {
		stops[i] = context.AfterFunc(c, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// ExecuteBatch is the batch path of Execute: it records ps, inputs of distinct
// instances that are not dry runs, in one transaction and returns each one's result
// and error (an input refused wrote nothing), or an error of its own when it recorded
// nothing at all. Exported so that the conformance suite can see a batch commit as one.
func (s *Store) ExecuteBatch(ctx context.Context, ps []store.ExecuteParams) ([]store.ExecuteResult, []error, error) {
	calls := newCalls(ctx, ps)
	errs, err := s.executeBatch(ctx, calls)
	if err != nil {
		return nil, nil, s.mapErr("execute", err)
	}
	return results(calls), errs, nil
}

// ExecuteWindow records ps as the input batcher records the inputs queued in one
// window, and returns each one's result and error as Execute would.
func (s *Store) ExecuteWindow(ctx context.Context, ps []store.ExecuteParams) ([]store.ExecuteResult, []error) {
	calls := newCalls(ctx, ps)
	errs := s.executeCalls(ctx, calls)
	return results(calls), errs
}

func newCalls(ctx context.Context, ps []store.ExecuteParams) []*inputCall {
	calls := make([]*inputCall, len(ps))
	for i, p := range ps {
		calls[i] = &inputCall{ctx: ctx, p: p}
	}
	return calls
}

func results(calls []*inputCall) []store.ExecuteResult {
	res := make([]store.ExecuteResult, len(calls))
	for i, c := range calls {
		res[i] = c.res
	}
	return res
}
