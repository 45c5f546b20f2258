package outbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/enginetest"
	"github.com/ironflow/ironflow/internal/outbox"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

const paymentType = "payment"

// paymentDefinition: on start, charge has its own budget (2 attempts) and timeout
// (200 ms) and an on_dead input that ends the instance failed; on start_plain the same
// on_dead with the worker's policy; on start_broken an on_dead input that fails its
// schema.
const paymentDefinition = `{
  "initial_state": "new",
  "inputs": {
    "start": {}, "start_plain": {}, "start_broken": {},
    "charged": {"schema": {"type": "object", "required": ["ok"]}},
    "charge_failed": {"schema": {"type": "object", "required": ["error"]}},
    "broken": {"schema": {"type": "object", "required": ["n"]}}
  },
  "states": {
    "new": {"on": {
      "start": {"to": "charging", "effects": [{"name": "charge", "timeout": "200ms",
        "retry": {"max_attempts": 2, "initial_interval": "10ms", "max_interval": "20ms"},
        "on_dead": {"type": "charge_failed",
                    "data": "{'error': effect.last_error, 'status': effect.last_status, 'attempts': effect.attempts, 'effect': effect.name}"}}]},
      "start_plain": {"to": "charging", "effects": [{"name": "charge",
        "on_dead": {"type": "charge_failed", "data": "{'error': effect.last_error}"}}]},
      "start_broken": {"to": "charging", "effects": [{"name": "charge", "retry": {"max_attempts": 1},
        "on_dead": {"type": "broken"}}]}}},
    "charging": {"on": {"charged": {"to": "paid"}, "charge_failed": {"to": "unpaid"}, "broken": {"to": "unpaid"}}},
    "paid": {"terminal": true},
    "unpaid": {"terminal": "failed"}
  }
}`

func (e *env) startPayment(id, input string) string {
	e.t.Helper()
	ctx := context.Background()
	_, _, err := e.eng.PutDefinition(ctx, paymentType, []byte(paymentDefinition))
	require.NoError(e.t, err)
	out, err := e.eng.Execute(ctx, paymentType, id, workflow.Input{Type: input}, engine.ExecuteOptions{})
	require.NoError(e.t, err)
	require.Len(e.t, out.Write.Effects, 1)
	return out.Write.Effects[0].ID
}

func (e *env) payment(id string) engine.WorkflowView {
	e.t.Helper()
	v, err := e.eng.GetWorkflow(context.Background(), paymentType, id, 0)
	require.NoError(e.t, err)
	return v
}

// TestEffectPolicyAndOnDead: the effect's own timeout and budget apply over the
// worker's (2 s, 10 attempts), and its on_dead input runs when it dies, seeing the
// last attempt.
func TestEffectPolicyAndOnDead(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		rcv := newReceiver(t, func(int, delivery) (int, string) {
			time.Sleep(time.Second) // longer than the effect's timeout, not the worker's
			return http.StatusServiceUnavailable, ""
		})
		_, _, err := e.eng.PutWebhook(context.Background(), paymentType, engine.WebhookInput{URL: rcv.URL})
		require.Error(t, err, "no definition yet")
		effectID := e.startPayment("p-1", "start")
		_, _, err = e.eng.PutWebhook(context.Background(), paymentType, engine.WebhookInput{URL: rcv.URL})
		require.NoError(t, err)
		e.worker(e.store, outbox.Config{MaxAttempts: 10})

		v := e.waitEffect(effectID, store.EffectDead)
		require.Len(t, v.AttemptLog, 2, "the effect's own budget")
		for _, a := range v.AttemptLog {
			require.Contains(t, a.Error, "timeout", "the effect's own timeout")
			require.Zero(t, a.StatusCode)
		}
		require.Equal(t, store.OutcomeAccepted, v.OnDeadOutcome)
		require.Equal(t, store.OutcomeAccepted, v.AttemptLog[1].RoutedOutcome)
		wf := e.payment("p-1")
		require.Equal(t, store.StatusFailed, wf.Status)
		var data map[string]any
		require.NoError(t, json.Unmarshal(wf.State.Data, &data))
		require.Equal(t, v.AttemptLog[1].Error, data["error"])
		require.EqualValues(t, 0, data["status"])
		require.EqualValues(t, 2, data["attempts"])
		require.Equal(t, "charge", data["effect"])
	})
}

// TestInvalidAnswerRunsOnDead: a 2xx answer whose input cannot be applied kills the
// effect, and its on_dead input runs in that transaction; an on_dead input that fails
// its schema is noted and the effect dies without it.
func TestInvalidAnswerRunsOnDead(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		e := newEnv(t, b)
		answers := map[string]string{
			"p-undeclared": `{"input": {"type": "teleport"}}`,
			"p-bad-data":   `{"input": {"type": "charged", "data": {"nope": 1}}}`,
			"p-not-object": `{"input": "charged"}`,
			"p-broken":     ``,
		}
		rcv := newReceiver(t, func(_ int, d delivery) (int, string) {
			if d.workflowID() == "p-broken" {
				return http.StatusInternalServerError, ""
			}
			return http.StatusOK, answers[d.workflowID()]
		})
		ids := map[string]string{}
		for id := range answers {
			input := "start_plain"
			if id == "p-broken" {
				input = "start_broken"
			}
			ids[id] = e.startPayment(id, input)
		}
		_, _, err := e.eng.PutWebhook(context.Background(), paymentType, engine.WebhookInput{URL: rcv.URL})
		require.NoError(t, err)
		e.worker(e.store, outbox.Config{})

		for id, effectID := range ids {
			v := e.waitEffect(effectID, store.EffectDead)
			require.Len(t, v.AttemptLog, 1, id)
			if id == "p-broken" {
				require.Contains(t, v.AttemptLog[0].Error, "unexpected status 500", id)
				require.Contains(t, v.AttemptLog[0].Error, "on_dead input not run", id)
				require.Empty(t, v.OnDeadOutcome)
				require.Equal(t, "charging", e.payment(id).State.Name, "nothing reached the instance")
				continue
			}
			require.Contains(t, v.AttemptLog[0].Error, "routed input is invalid", id)
			require.Equal(t, store.OutcomeAccepted, v.OnDeadOutcome, id)
			require.Equal(t, store.OutcomeAccepted, v.AttemptLog[0].RoutedOutcome, id)
			wf := e.payment(id)
			require.Equal(t, "unpaid", wf.State.Name, id)
			require.Contains(t, string(wf.State.Data), "routed input is invalid", id)
		}
	})
}
