package outbox_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/enginetest"
	"github.com/ironflow/ironflow/internal/outbox"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// batchDefinition fans out: split sends start to one chunk per element (a child), and
// poke sends a chunk an input it rejects, with a budget of two attempts and an on_dead
// input; poke_nowhere sends to a type that is not defined.
const batchDefinition = `{
  "initial_state": "new",
  "inputs": {"split": {}, "poke": {}, "poke_nowhere": {}, "chunk_done": {}, "chunk_failed": {},
             "undeliverable": {"schema": {"type": "object", "required": ["error"]}}},
  "states": {
    "new": {"on": {
      "split": {"to": "waiting", "effects": [{"name": "start_chunk", "for_each": "input.data.chunks",
        "send": {"workflow_type": "chunk", "id": "workflow.id + '/' + string(index)",
                 "input": {"type": "start", "data": "{'n': item}"},
                 "child": {"on_completed": "chunk_done", "on_failed": "chunk_failed"}}}]},
      "poke": {"to": "waiting", "effects": [{"name": "poke_chunk",
        "retry": {"max_attempts": 2, "initial_interval": "10ms", "max_interval": "20ms"},
        "send": {"workflow_type": "chunk", "id": "'c-1'", "input": {"type": "start", "data": "{'n': 1}"}},
        "on_dead": {"type": "undeliverable", "data": "{'error': effect.last_error}"}}]},
      "poke_nowhere": {"to": "waiting", "effects": [{"name": "poke_nowhere",
        "retry": {"max_attempts": 2, "initial_interval": "10ms", "max_interval": "20ms"},
        "send": {"workflow_type": "nowhere", "id": "'x'", "input": {"type": "start"}},
        "on_dead": {"type": "undeliverable", "data": "{'error': effect.last_error}"}}]}}},
    "waiting": {"on": {"chunk_done": {}, "chunk_failed": {}, "undeliverable": {"to": "failed"}}},
    "failed": {"terminal": "failed"}
  }
}`

// chunkDefinition: start creates a chunk (and only creates it: a running chunk rejects
// it); finish completes it, fail fails it.
const chunkDefinition = `{
  "initial_state": "new",
  "inputs": {"start": {"schema": {"type": "object", "required": ["n"]}}, "finish": {}, "fail": {}},
  "states": {
    "new": {"on": {"start": {"to": "working"}}},
    "working": {"on": {"finish": {"to": "done"}, "fail": {"to": "broken"}}},
    "done": {"terminal": true},
    "broken": {"terminal": "failed"}
  }
}`

// newSendEnv is an env with the batch and chunk types defined and no webhook at all.
func newSendEnv(t *testing.T, b enginetest.Backend) *env {
	t.Helper()
	e := newEnv(t, b)
	for typ, def := range map[string]string{"batch": batchDefinition, "chunk": chunkDefinition} {
		_, _, err := e.eng.PutDefinition(context.Background(), typ, []byte(def))
		require.NoError(t, err)
	}
	return e
}

// exec runs an input and requires it accepted; it returns the ids of its effects.
func (e *env) exec(typ, id, input, data string) []string {
	e.t.Helper()
	out, err := e.eng.Execute(context.Background(), typ, id, workflow.Input{Type: input, Data: json.RawMessage(data)},
		engine.ExecuteOptions{})
	require.NoError(e.t, err)
	require.Equal(e.t, store.OutcomeAccepted, out.Outcome, string(out.Body))
	var ids []string
	for _, ef := range out.Write.Effects {
		ids = append(ids, ef.ID)
	}
	return ids
}

func (e *env) instance(typ, id string) engine.WorkflowView {
	e.t.Helper()
	v, err := e.eng.GetWorkflow(context.Background(), typ, id, 0)
	require.NoError(e.t, err)
	return v
}

func (e *env) inputs(typ, id string) []engine.InputView {
	e.t.Helper()
	page, err := e.eng.ListInputs(context.Background(), typ, id, "", 100)
	require.NoError(e.t, err)
	return page.Items
}

// TestSendCreatesChildren: a for_each send creates one chunk per element through the
// effect worker, with no webhook registered: each chunk's first input is the send's,
// keyed by the effect id, and the chunk records its parent.
func TestSendCreatesChildren(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newSendEnv(t, b)
		effects := e.exec("batch", "b-1", "split", `{"chunks": [10, 20, 30]}`)
		require.Len(t, effects, 3)
		v := e.effect(effects[1])
		require.Equal(t, &engine.InstanceRef{WorkflowType: "chunk", ID: "b-1/1"}, v.Send)
		require.JSONEq(t, `{"type": "start", "data": {"n": 20}}`, string(v.Payload))
		e.worker(e.store, outbox.Config{})

		for i, effectID := range effects {
			v := e.waitEffect(effectID, store.EffectDelivered)
			require.Len(t, v.AttemptLog, 1)
			require.Equal(t, store.OutcomeAccepted, v.AttemptLog[0].RoutedOutcome)
			id := "b-1/" + string(rune('0'+i))
			chunk := e.instance("chunk", id)
			require.Equal(t, "working", chunk.State.Name)
			require.Equal(t, &engine.InstanceRef{WorkflowType: "batch", ID: "b-1"}, chunk.Parent)
			in := e.inputs("chunk", id)
			require.Len(t, in, 1)
			require.Equal(t, store.SourceEffect, in[0].Source)
			require.Equal(t, effectID, in[0].IdempotencyKey)
			require.JSONEq(t, `{"n": `+string(rune('1'+i))+`0}`, string(in[0].Data))
		}
		require.Nil(t, e.instance("batch", "b-1").Parent)
	})
}

// TestSendRefusedRetriesThenOnDead: a send the target rejects, and a send to a type
// that does not exist, fail their attempts; they are retried by the effect's policy,
// then die, and the sender's on_dead input runs.
func TestSendRefusedRetriesThenOnDead(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newSendEnv(t, b)
		e.exec("chunk", "c-1", "start", `{"n": 0}`) // running: start is rejected now
		rejected := e.exec("batch", "b-1", "poke", `{}`)
		nowhere := e.exec("batch", "b-2", "poke_nowhere", `{}`)
		e.worker(e.store, outbox.Config{MaxAttempts: 10})

		for id, c := range map[string]struct{ effect, msg string }{
			"b-1": {rejected[0], "rejected input \"start\""},
			"b-2": {nowhere[0], "workflow type not found"},
		} {
			v := e.waitEffect(c.effect, store.EffectDead)
			require.Len(t, v.AttemptLog, 2, "the effect's own budget")
			for _, a := range v.AttemptLog {
				require.Contains(t, a.Error, "send to ", id)
				require.Contains(t, a.Error, c.msg, id)
			}
			require.Equal(t, store.OutcomeAccepted, v.OnDeadOutcome, id)
			parent := e.instance("batch", id)
			require.Equal(t, store.StatusFailed, parent.Status, id)
			var data map[string]any
			require.NoError(t, json.Unmarshal(parent.State.Data, &data))
			require.Contains(t, data["error"], c.msg, id)
		}
		require.Len(t, e.inputs("chunk", "c-1"), 1, "a refused send records nothing on its target")
	})
}

// TestSendAppliedOnce: the send's input is keyed by its effect id. A worker whose lease
// expired completes after another worker delivered: its completion records and applies
// nothing. An input recorded earlier with the effect's key is replayed, not applied
// again.
func TestSendAppliedOnce(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newSendEnv(t, b)
		ctx := context.Background()
		effects := e.exec("batch", "b-1", "split", `{"chunks": [1, 2]}`)
		now := time.Now()

		// Worker a claims both and is lost; worker b claims them after a's lease ended.
		claim := func(worker string, at time.Time) []store.Effect {
			got, err := e.store.ClaimEffects(ctx, store.ClaimParams{Worker: worker, Limit: 10, Now: at, LeaseExpiry: at.Add(time.Minute)})
			require.NoError(t, err)
			return got
		}
		stale := claim("a", now)
		require.Len(t, stale, 2, "send effects are claimed without a webhook")
		fresh := claim("b", now.Add(2*time.Minute))
		require.Len(t, fresh, 2)

		// The first element's input was already recorded under the effect's key.
		first := fresh[0]
		if first.ID != effects[0] {
			first = fresh[1]
		}
		early, err := e.eng.SendParams(first)
		require.NoError(t, err)
		res, err := e.store.Execute(ctx, early)
		require.NoError(t, err)
		require.Equal(t, store.OutcomeAccepted, res.Input.Outcome)

		for _, ef := range fresh {
			rp, err := e.eng.SendParams(ef)
			require.NoError(t, err)
			require.NoError(t, e.store.CompleteEffect(ctx, store.CompleteEffectParams{EffectID: ef.ID, Worker: "b",
				Status: store.EffectDelivered, Now: now.Add(2 * time.Minute), Route: &rp}))
		}
		for _, ef := range stale {
			rp, err := e.eng.SendParams(ef)
			require.NoError(t, err)
			require.ErrorIs(t, e.store.CompleteEffect(ctx, store.CompleteEffectParams{EffectID: ef.ID, Worker: "a",
				Status: store.EffectDelivered, Now: now.Add(3 * time.Minute), Route: &rp}), store.ErrLeaseLost)
		}
		for i, id := range []string{"b-1/0", "b-1/1"} {
			in := e.inputs("chunk", id)
			require.Len(t, in, 1, id)
			require.Equal(t, effects[i], in[0].IdempotencyKey)
			require.Equal(t, int64(1), e.instance("chunk", id).Version)
			v := e.effect(effects[i])
			require.Equal(t, store.EffectDelivered, v.Status)
			require.Len(t, v.AttemptLog, 1)
		}
	})
}
