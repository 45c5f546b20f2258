package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/ironflow/ironflow/internal/store"
)

// The answer to an input is stored with its input record (store.InputRecord.Response)
// so that an idempotent retry gets it again byte for byte. It is stored without what
// the history already holds: the state data (up to IRONFLOW_MAX_DATA_BYTES, the same
// for every input to the instance) and the events' data. A small input to an instance
// with a large state so stores a small record, and a replay puts the two back from the
// history: the state data at the answer's version, the data of the answer's events.
//
// Only an input with an idempotency key can be replayed (a retry without one is a new
// input), so only such an input's record keeps its answer: every routed, on_dead, sent
// and timer input has one, and so has an API input sent with Idempotency-Key. The
// others keep none, which spares a decision an encoding and its rows the bytes
// (docs/decisions/0030-less-per-decision.md).

// storedAnswer is what an input record keeps of its answer: the Result with
// Workflow.State.Data and every Events[i].Data left out (null), and Elided set. A
// record without Elided (written before answers were stored this way) holds the whole
// answer.
type storedAnswer struct {
	Result
	Elided bool `json:"elided,omitempty"`
}

// encodeStored returns res as the input record of a keyed input keeps it.
func encodeStored(res Result) (json.RawMessage, error) {
	s := storedAnswer{Result: res, Elided: true}
	if res.Workflow != nil {
		wf := *res.Workflow
		wf.State.Data = nil
		s.Workflow = &wf
	}
	if len(res.Events) > 0 {
		s.Events = make([]EventView, len(res.Events))
		for i, ev := range res.Events {
			ev.Data = nil
			s.Events[i] = ev
		}
	}
	stored, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode stored result: %w", err)
	}
	return stored, nil
}

// lastAnswer remembers the answer of the latest decision of one request, keyed by its
// input record's id: a store may decide more than once (SQLite decides outside its
// write lock and decides again after a lost race) and commits the last one. The answer
// is encoded once it is known to be the one committed (answer); a decision nobody
// waits for (a routed, timer or on_dead input) is never encoded for a client.
type lastAnswer struct {
	mu  sync.Mutex
	id  string
	res *Result
}

func (a *lastAnswer) set(id string, res *Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.id, a.res = id, res
}

// answer returns the body of the outcome res: the answer the request's own decision
// made, or, for a replay, the stored answer with the state data and the events' data
// read back from the history.
func (e *Engine) answer(ctx context.Context, res store.ExecuteResult, own *lastAnswer) (json.RawMessage, error) {
	if !res.Replayed {
		own.mu.Lock()
		id, answer := own.id, own.res
		own.mu.Unlock()
		if id == res.Input.ID && answer != nil {
			body, err := json.Marshal(answer)
			if err != nil {
				return nil, fmt.Errorf("encode result: %w", err)
			}
			return body, nil
		}
		if len(res.Input.Response) == 0 {
			// Not expected: the store commits the last decision it asked for. A keyless
			// record keeps no answer to fall back on, and an empty body is no answer.
			return nil, fmt.Errorf("input %s: the committed decision is not this request's last, and its record keeps no answer", res.Input.ID)
		}
	}
	return e.replayAnswer(ctx, res.Input)
}

// replayAnswer rebuilds the answer of the recorded input rec. The history of an
// instance is never pruned (only input records are), so what the record left out can
// always be read back: the state data is the instance's snapshot while it is still at
// the answer's version, else the replay of its events up to that version; Evolve
// writes the same bytes as the decision did, so the body is the first one byte for
// byte.
func (e *Engine) replayAnswer(ctx context.Context, rec store.InputRecord) (json.RawMessage, error) {
	var s storedAnswer
	if len(rec.Response) == 0 || json.Unmarshal(rec.Response, &s) != nil || !s.Elided {
		return rec.Response, nil
	}
	res := s.Result
	if res.Workflow != nil {
		data, err := e.stateDataAt(ctx, rec.WorkflowType, rec.WorkflowID, res.Workflow.Version)
		if err != nil {
			return nil, fmt.Errorf("replay the answer of input %s: %w", rec.ID, err)
		}
		res.Workflow.State.Data = data
	}
	if len(res.Events) > 0 {
		first := res.Events[0].Seq
		evs, err := e.store.ListEvents(ctx, rec.WorkflowType, rec.WorkflowID, first-1, len(res.Events))
		if err != nil {
			return nil, fmt.Errorf("replay the answer of input %s: list events: %w", rec.ID, err)
		}
		for i := range res.Events {
			if i >= len(evs) || evs[i].Seq != res.Events[i].Seq {
				return nil, fmt.Errorf("replay the answer of input %s: event %d is missing", rec.ID, res.Events[i].Seq)
			}
			res.Events[i].Data = evs[i].Data
		}
	}
	body, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	return body, nil
}

// stateDataAt returns the state data of the instance typ/id at version.
func (e *Engine) stateDataAt(ctx context.Context, typ, id string, version int64) (json.RawMessage, error) {
	in, err := e.store.GetInstance(ctx, typ, id)
	if err != nil {
		return nil, fmt.Errorf("get instance: %w", err)
	}
	if in.Version == version {
		return in.StateData, nil
	}
	def, err := e.definition(ctx, typ, in.DefinitionVersion)
	if err != nil {
		return nil, err
	}
	state, _, err := e.replay(ctx, def.InitialState(), typ, id, version)
	if err != nil {
		return nil, err
	}
	return state.Data, nil
}
