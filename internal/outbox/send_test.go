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
  "inputs": {"split": {}, "poke": {}, "poke_nowhere": {}, "chunk_done": {}, "chunk_failed": {}, "stop": {},
             "undeliverable": {"schema": {"type": "object", "required": ["error"]}}},
  "states": {
    "new": {"on": {
      "split": {"to": "waiting", "effects": [{"name": "start_chunk", "for_each": "input.data.chunks",
        "send": {"workflow_type": "chunk", "id": "workflow.id + '/' + string(index)",
                 "input": {"type": "start", "data": "{'n': item}"},
                 "child": {"on_completed": "chunk_done", "on_failed": "chunk_failed"}}},
        {"name": "start_free", "for_each": "has(input.data.free) ? input.data.free : []",
        "send": {"workflow_type": "chunk", "id": "workflow.id + '/free' + string(index)",
                 "input": {"type": "start", "data": "{'n': item}"},
                 "child": {"on_completed": "chunk_done", "on_parent_end": "abandon"}}}]},
      "poke": {"to": "waiting", "effects": [{"name": "poke_chunk",
        "retry": {"max_attempts": 2, "initial_interval": "10ms", "max_interval": "20ms"},
        "send": {"workflow_type": "chunk", "id": "'c-1'", "input": {"type": "start", "data": "{'n': 1}"}},
        "on_dead": {"type": "undeliverable", "data": "{'error': effect.last_error}"}}]},
      "poke_nowhere": {"to": "waiting", "effects": [{"name": "poke_nowhere",
        "retry": {"max_attempts": 2, "initial_interval": "10ms", "max_interval": "20ms"},
        "send": {"workflow_type": "nowhere", "id": "'x'", "input": {"type": "start"}},
        "on_dead": {"type": "undeliverable", "data": "{'error': effect.last_error}"}}]}}},
    "waiting": {"on": {"chunk_done": {}, "chunk_failed": {}, "undeliverable": {"to": "failed"}, "stop": {"to": "stopped"}}},
    "failed": {"terminal": "failed"},
    "stopped": {"terminal": true}
  }
}`

// chunkDefinition: start creates a chunk (and only creates it: a running chunk rejects
// it) and emits work, a webhook no endpoint receives; finish completes it, fail fails
// it.
const chunkDefinition = `{
  "initial_state": "new",
  "inputs": {"start": {"schema": {"type": "object", "required": ["n"]}}, "finish": {}, "fail": {}},
  "states": {
    "new": {"on": {"start": {"to": "working", "effects": [{"name": "work"}]}}},
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
			return got.Effects
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

// split starts the chunks of batch id (one per element of chunks, and free ones that
// outlive it) and waits for every one to exist.
func (e *env) split(id, data string, n int) {
	e.t.Helper()
	effects := e.exec("batch", id, "split", data)
	require.Len(e.t, effects, n)
	for _, ef := range effects {
		e.waitEffect(ef, store.EffectDelivered)
	}
}

// childEndings returns the inputs the parent received from its children's endings, by
// child id.
func (e *env) childEndings(typ, id string) map[string]engine.InputView {
	e.t.Helper()
	out := map[string]engine.InputView{}
	for _, in := range e.inputs(typ, id) {
		if in.Type == "chunk_done" || in.Type == "chunk_failed" {
			var d engine.ChildEnding
			require.NoError(e.t, json.Unmarshal(in.Data, &d))
			out[d.Child.ID] = in
		}
	}
	return out
}

// TestChildEndingReachesParent: a child's ending reaches its parent through the outbox
// as the input its link names: on_completed when it completed, on_failed when it failed
// or was terminated, with {"child": {workflow_type, id, status, state}}. A link without
// the input for an ending sends nothing.
func TestChildEndingReachesParent(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newSendEnv(t, b)
		e.worker(e.store, outbox.Config{PollInterval: 20 * time.Millisecond})
		e.split("b-1", `{"chunks": [1, 2, 3], "free": [4]}`, 4)

		e.exec("chunk", "b-1/0", "finish", `{}`)
		e.exec("chunk", "b-1/1", "fail", `{}`)
		_, err := e.eng.Terminate(context.Background(), "chunk", "b-1/2", "enough", engine.ExecuteOptions{})
		require.NoError(t, err)
		e.exec("chunk", "b-1/free0", "fail", `{}`) // abandon link without on_failed

		var got map[string]engine.InputView
		require.Eventually(t, func() bool {
			got = e.childEndings("batch", "b-1")
			return len(got) == 3
		}, 10*time.Second, 5*time.Millisecond)
		for id, want := range map[string]struct{ input, status, state string }{
			"b-1/0": {"chunk_done", store.StatusCompleted, "done"},
			"b-1/1": {"chunk_failed", store.StatusFailed, "broken"},
			"b-1/2": {"chunk_failed", store.StatusTerminated, "working"},
		} {
			in := got[id]
			require.Equal(t, want.input, in.Type, id)
			require.Equal(t, store.SourceEffect, in.Source)
			require.Equal(t, store.OutcomeAccepted, in.Outcome)
			require.JSONEq(t, `{"child": {"workflow_type": "chunk", "id": "`+id+`", "status": "`+want.status+`",
				"state": {"name": "`+want.state+`", "data": {"n": `+string(rune('1'+id[4]-'0'))+`}}}}`, string(in.Data), id)
		}
		// The free chunk's failure sent nothing: its link has no on_failed.
		page, err := e.eng.ListEffects(context.Background(), store.ListEffectsParams{WorkflowType: "chunk", WorkflowID: "b-1/free0"})
		require.NoError(t, err)
		for _, ef := range page.Items {
			require.NotEqual(t, engine.ChildEndedEffect, ef.Name)
		}

		// A parent that has ended answers a late child already_completed: delivered.
		e.split("b-3", `{"chunks": [1]}`, 1)
		e.exec("batch", "b-3", "stop", `{}`)
		require.Eventually(t, func() bool { return e.instance("chunk", "b-3/0").Status == store.StatusTerminated },
			10*time.Second, 5*time.Millisecond)
		var ending engine.EffectView
		page, err = e.eng.ListEffects(context.Background(), store.ListEffectsParams{WorkflowType: "chunk", WorkflowID: "b-3/0"})
		require.NoError(t, err)
		for _, ef := range page.Items {
			if ef.Name == engine.ChildEndedEffect {
				ending = ef
			}
		}
		require.Equal(t, &engine.InstanceRef{WorkflowType: "batch", ID: "b-3"}, ending.Send)
		ending = e.waitEffect(ending.ID, store.EffectDelivered)
		require.Equal(t, store.OutcomeAlreadyCompleted, ending.AttemptLog[0].RoutedOutcome)
	})
}

// TestParentEndTerminatesChildren: a parent's ending terminates its running children
// whose link says terminate (reason parent_ended), cancelling their pending effects;
// abandoned ones and ended ones are left alone. An ending also cancels the parent's
// sends of such children that were not delivered yet.
func TestParentEndTerminatesChildren(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newSendEnv(t, b)
		ctx := context.Background()
		w := e.worker(e.store, outbox.Config{PollInterval: 20 * time.Millisecond})
		e.split("b-1", `{"chunks": [1, 2, 3], "free": [4]}`, 4)
		e.exec("chunk", "b-1/2", "finish", `{}`)
		out, err := e.eng.Terminate(ctx, "batch", "b-1", "operator", engine.ExecuteOptions{})
		require.NoError(t, err)
		var endID string
		for _, ef := range out.Write.Effects {
			if ef.Name == engine.EndChildrenEffect {
				endID = ef.ID
			}
		}
		require.NotEmpty(t, endID)
		v := e.waitEffect(endID, store.EffectDelivered)
		require.Nil(t, v.Send)
		require.Equal(t, "2 children terminated", v.AttemptLog[0].Response)

		for _, id := range []string{"b-1/0", "b-1/1"} {
			c := e.instance("chunk", id)
			require.Equal(t, store.StatusTerminated, c.Status, id)
			in := e.inputs("chunk", id)
			last := in[len(in)-1]
			require.Equal(t, engine.TerminateInput, last.Type)
			require.JSONEq(t, `{"reason": "parent_ended"}`, string(last.Data))
			require.Equal(t, engine.ParentEndedKey(endID), last.IdempotencyKey)
			page, err := e.eng.ListEffects(ctx, store.ListEffectsParams{WorkflowType: "chunk", WorkflowID: id})
			require.NoError(t, err)
			for _, ef := range page.Items {
				if ef.Name == "work" {
					require.Equal(t, store.EffectCancelled, ef.Status, id)
				}
			}
		}
		require.Equal(t, store.StatusCompleted, e.instance("chunk", "b-1/2").Status)
		require.Equal(t, store.StatusRunning, e.instance("chunk", "b-1/free0").Status, "abandoned")

		// Ending naturally while sends are undelivered: the sends of children that end
		// with it are cancelled, so no child outlives it; the abandoned one is sent.
		e.stop(w)
		sends := e.exec("batch", "b-2", "split", `{"chunks": [1, 2], "free": [3]}`)
		stop := e.exec("batch", "b-2", "stop", `{}`)
		require.Len(t, stop, 1, "the ending emits "+engine.EndChildrenEffect)
		require.Equal(t, store.EffectCancelled, e.effect(sends[0]).Status)
		require.Equal(t, store.EffectCancelled, e.effect(sends[1]).Status)
		e.worker(e.store, outbox.Config{PollInterval: 20 * time.Millisecond})
		e.waitEffect(sends[2], store.EffectDelivered)
		e.waitEffect(stop[0], store.EffectDelivered)
		require.Equal(t, store.StatusRunning, e.instance("chunk", "b-2/free0").Status)
		_, err = e.eng.GetWorkflow(ctx, "chunk", "b-2/0", 0)
		require.ErrorIs(t, err, engine.ErrInstanceNotFound)

		children, err := e.eng.ListChildren(ctx, "batch", "b-1", "", "", 10)
		require.NoError(t, err)
		require.Len(t, children.Items, 4)
		children, err = e.eng.ListChildren(ctx, "batch", "b-1", store.StatusTerminated, "", 10)
		require.NoError(t, err)
		require.Len(t, children.Items, 2)
		for _, c := range children.Items {
			require.Equal(t, &engine.InstanceRef{WorkflowType: "batch", ID: "b-1"}, c.Parent)
		}
		_, err = e.eng.ListChildren(ctx, "batch", "nope", "", "", 10)
		require.ErrorIs(t, err, engine.ErrInstanceNotFound)
	})
}
