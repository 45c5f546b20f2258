package workflow

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// policyFlow: a state-scoped deposit in "a" with its own policy; "b" is left by back,
// "done" is terminal and emits a state-scoped notice on entry.
const policyFlow = `{"initial_state": "a", "inputs": {"go": {}, "back": {}, "end": {}},
	"states": {
		"a": {"on": {"go": {"effects": [{"name": "deposit", "scope": "state", "timeout": "2s",
		                                  "retry": {"max_attempts": 2, "initial_interval": "50ms", "max_interval": "1m"}}]},
		             "back": {"to": "b", "effects": [{"name": "plain"}]},
		             "end": {"to": "done", "effects": [{"name": "notice", "scope": "state"}]}}},
		"b": {"on": {"back": {"to": "a"}}},
		"done": {"terminal": true}}}`

func TestEffectPolicy(t *testing.T) {
	t.Parallel()
	d := mustParse(t, policyFlow)
	require.True(t, d.ScopesEffectsToStates())
	a := State{Name: "a", Data: []byte(`{}`)}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	dec, err := Decide(d, Ref{Type: "flow", ID: "1"}, a, Input{Type: "go"}, now)
	require.NoError(t, err)
	require.False(t, dec.LeavesState, "staying leaves nothing")
	require.Equal(t, EffectPolicy{MaxAttempts: 2, InitialInterval: 50 * time.Millisecond, MaxInterval: time.Minute,
		Timeout: 2 * time.Second, StateScoped: true}, dec.Effects[0].Policy)

	dec, err = Decide(d, Ref{Type: "flow", ID: "1"}, a, Input{Type: "back"}, now)
	require.NoError(t, err)
	require.True(t, dec.LeavesState)
	require.Equal(t, EffectPolicy{}, dec.Effects[0].Policy, "no policy: the server's settings, scope instance")

	dec, err = Decide(d, Ref{Type: "flow", ID: "1"}, a, Input{Type: "end"}, now)
	require.NoError(t, err)
	require.True(t, dec.LeavesState && dec.Completed)
	require.False(t, dec.Effects[0].Policy.StateScoped, "the effects of an ending are always delivered")

	dec, err = DecideNew(d, Ref{Type: "flow", ID: "1"}, Input{Type: "back"}, now)
	require.NoError(t, err)
	require.False(t, dec.LeavesState, "a new instance was in no state")

	require.False(t, mustParse(t, withStates(`{"a": {"on": {"go": {"effects": [{"name": "e", "scope": "instance"}]}}}}`)).ScopesEffectsToStates())
}

func TestEffectPolicyErrors(t *testing.T) {
	t.Parallel()
	effect := func(members string) string {
		return withStates(`{"a": {"on": {"go": {"effects": [{"name": "e", ` + members + `}]}}}}`)
	}
	const at = "/states/a/on/go/effects/0"
	tests := []struct {
		name    string
		body    string
		paths   []string
		message string
	}{
		{"scope elsewhere", effect(`"scope": "elsewhere"`), []string{at + "/scope"}, `must be "state" or "instance"`},
		{"scope not a string", effect(`"scope": true`), []string{at + "/scope"}, "must be a string"},
		{"no attempts", effect(`"retry": {"max_attempts": 0}`), []string{at + "/retry/max_attempts"}, "between 1 and 100"},
		{"too many attempts", effect(`"retry": {"max_attempts": 101}`), []string{at + "/retry/max_attempts"}, "between 1 and 100"},
		{"fractional attempts", effect(`"retry": {"max_attempts": 2.5}`), []string{at + "/retry/max_attempts"}, "whole number"},
		{"attempts as text", effect(`"retry": {"max_attempts": "3"}`), []string{at + "/retry/max_attempts"}, "whole number"},
		{"interval too short", effect(`"retry": {"initial_interval": "5ms"}`), []string{at + "/retry/initial_interval"}, "between 10ms and 24h0m0s"},
		{"interval too long", effect(`"retry": {"max_interval": "25h"}`), []string{at + "/retry/max_interval"}, "between 10ms and 24h0m0s"},
		{"initial above max", effect(`"retry": {"initial_interval": "2s", "max_interval": "1s"}`), []string{at + "/retry/max_interval"}, "shorter than initial_interval"},
		{"bad interval", effect(`"retry": {"initial_interval": "soon"}`), []string{at + "/retry/initial_interval"}, "invalid duration"},
		{"unknown retry field", effect(`"retry": {"attempts": 3}`), []string{at + "/retry/attempts"}, "unknown field"},
		{"retry not an object", effect(`"retry": 3`), []string{at + "/retry"}, "must be an object"},
		{"timeout too short", effect(`"timeout": "50ms"`), []string{at + "/timeout"}, "between 100ms and 5m0s"},
		{"timeout too long", effect(`"timeout": "6m"`), []string{at + "/timeout"}, "between 100ms and 5m0s"},
		{"negative timeout", effect(`"timeout": "-1s"`), []string{at + "/timeout"}, "negative"},
		{"unknown on_dead input", effect(`"on_dead": {"type": "vanished"}`), []string{at + "/on_dead/type"}, `input "vanished" is not declared`},
		{"on_dead without type", effect(`"on_dead": {"data": "{}"}`), []string{at + "/on_dead/type"}, "is required"},
		{"on_dead data not a map", effect(`"on_dead": {"type": "go", "data": "'x' + effect.name"}`), []string{at + "/on_dead/data"}, "must evaluate to a map"},
		{"effect outside on_dead", effect(`"payload": "{'n': effect.attempts}"`), []string{at + "/payload"}, "undeclared reference"},
		{"unknown on_dead field", effect(`"on_dead": {"type": "go", "input": "x"}`), []string{at + "/on_dead/input"}, "unknown field"},
		{"every problem", effect(`"scope": "elsewhere", "retry": {"max_attempts": 0, "initial_interval": "1ms"}, "timeout": "1h"`),
			[]string{at + "/retry/max_attempts", at + "/retry/initial_interval", at + "/timeout", at + "/scope"}, "between 1 and 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireParseErrors(t, tt.body, tt.message, tt.paths...)
		})
	}
}

func TestOnDeadInput(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `{"initial_state": "a",
		"inputs": {"go": {}, "failed": {"schema": {"type": "object", "required": ["error"]}}, "gone": {}},
		"states": {"a": {"on": {
			"go": {"effects": [{"name": "plain"},
			                   {"name": "deposit", "on_dead": {"type": "failed",
			                    "data": "{'error': effect.last_error, 'n': effect.attempts, 'status': effect.last_status, 'id': effect.id, 'key': effect.key, 'name': effect.name, 'amount': state.data.amount, 'wf': workflow.id}"}},
			                   {"name": "bare", "on_dead": {"type": "gone"}}]},
			"failed": {}, "gone": {}}}}}`)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ref := Ref{Type: "flow", ID: "w-1"}
	state := State{Name: "a", Data: []byte(`{"amount": 5}`)}
	dec, err := Decide(d, ref, state, Input{Type: "go"}, now)
	require.NoError(t, err)
	require.Equal(t, []string{"", "/states/a/on/go/effects/1", "/states/a/on/go/effects/2"},
		[]string{dec.Effects[0].OnDead, dec.Effects[1].OnDead, dec.Effects[2].OnDead})

	dead := DeadEffect{ID: "e-1", Name: "deposit", Key: "k", Attempts: 2, LastStatus: 503, LastError: "unexpected status 503"}
	in, err := d.OnDeadInput(context.Background(), ref, state, dec.Effects[1].OnDead, dead, now)
	require.NoError(t, err)
	require.Equal(t, "failed", in.Type)
	require.JSONEq(t, `{"error": "unexpected status 503", "n": 2, "status": 503, "id": "e-1", "key": "k", "name": "deposit", "amount": 5, "wf": "w-1"}`, string(in.Data))
	next, err := Decide(d, ref, state, in, now)
	require.NoError(t, err)
	require.True(t, next.Accepted)

	in, err = d.OnDeadInput(context.Background(), ref, state, dec.Effects[2].OnDead, dead, now)
	require.NoError(t, err)
	require.Equal(t, Input{Type: "gone", Data: []byte(`{}`)}, in)

	_, err = d.OnDeadInput(context.Background(), ref, state, "/states/a/on/go/effects/0", dead, now)
	require.ErrorIs(t, err, ErrInvalidDefinition, "an effect without on_dead")
}
