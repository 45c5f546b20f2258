package workflow

import (
	"context"
	"encoding/json"
	"strings"
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
		// Without for_each there is no element: on_dead is refused as payload is.
		{"item in on_dead without for_each", effect(`"on_dead": {"type": "go", "data": "{'sku': item.sku}"}`), []string{at + "/on_dead/data"}, "undeclared reference to 'item'"},
		{"index in on_dead without for_each", effect(`"on_dead": {"type": "go", "data": "{'n': index}"}`), []string{at + "/on_dead/data"}, "undeclared reference to 'index'"},
		{"item in payload without for_each", effect(`"payload": "{'sku': item.sku}"`), []string{at + "/payload"}, "undeclared reference to 'item'"},
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

// TestOnDeadInputSeesItem: the on_dead data of a for_each effect sees item and index
// as its payload saw them when the effect was emitted, kept with the effect, not the
// list evaluated again on the state it dies in. Only an effect whose on_dead has data
// keeps its element; an effect that kept none (written before elements were kept)
// sees item null and index -1.
func TestOnDeadInputSeesItem(t *testing.T) {
	t.Parallel()
	const seen = "{'item': item, 'index': index}"
	d := mustParse(t, `{"initial_state": "a",
		"inputs": {"go": {}, "failed": {}},
		"states": {"a": {"on": {
			"go": {"effects": [
				{"name": "ship", "for_each": "state.data.items", "key": "item.sku", "payload": "`+seen+`",
				 "on_dead": {"type": "failed", "data": "`+seen+`"}},
				{"name": "silent", "for_each": "state.data.items", "on_dead": {"type": "failed"}},
				{"name": "plain", "for_each": "state.data.items"},
				{"name": "made", "for_each": "[1, 'two', null, [true]]", "payload": "`+seen+`",
				 "on_dead": {"type": "failed", "data": "`+seen+`"}}]},
			"failed": {}}}}}`)
	state := st("a", `{"items": [{"sku": "a-1", "qty": 1}, {"sku": "b-2", "qty": 2.5, "tags": ["x", "y"], "note": null}]}`)
	dec, err := Decide(d, testWF, state, in("go", ""), testNow)
	require.NoError(t, err)
	require.Len(t, dec.Effects, 10)
	byName := map[string][]Effect{}
	for _, ef := range dec.Effects {
		byName[ef.Name] = append(byName[ef.Name], ef)
	}
	elements := []string{`{"sku":"a-1","qty":1}`, `{"sku":"b-2","qty":2.5,"tags":["x","y"],"note":null}`}
	for i, ef := range byName["ship"] {
		require.Equal(t, i, ef.Index)
		require.JSONEq(t, elements[i], string(ef.Item))
		require.Len(t, ef.Item, len(elements[i]), "kept compact")
	}
	for _, name := range []string{"silent", "plain"} {
		for _, ef := range byName[name] {
			require.Nil(t, ef.Item, "%s: no on_dead data reads the element, none is kept", name)
			require.Zero(t, ef.Index)
		}
	}

	// The instance has moved on: its list is gone, and on_dead sees the element each
	// effect was emitted for, as its payload did.
	later := st("b", `{"items": []}`)
	for _, ef := range append(byName["ship"], byName["made"]...) {
		dead := DeadEffect{ID: "e-" + ef.Key, Name: ef.Name, Key: ef.Key, Attempts: 3, Item: ef.Item, Index: ef.Index}
		got, err := d.OnDeadInput(context.Background(), testWF, later, ef.OnDead, dead, testNow)
		require.NoError(t, err)
		require.Equal(t, "failed", got.Type)
		require.JSONEq(t, string(ef.Payload), string(got.Data), "%s %s", ef.Name, ef.Key)
	}
	require.JSONEq(t, `[1, "two", null, [true]]`, "["+string(byName["made"][0].Item)+","+string(byName["made"][1].Item)+","+
		string(byName["made"][2].Item)+","+string(byName["made"][3].Item)+"]")
	require.NotNil(t, byName["made"][2].Item, "a null element is kept as JSON null")

	// The element is seen as state data is: a number is a double, so arithmetic with
	// an int needs a conversion, and fields read as from the state.
	d = mustParse(t, `{"initial_state": "a", "inputs": {"go": {}, "failed": {}},
		"states": {"a": {"on": {"go": {"effects": [{"name": "ship", "for_each": "state.data.items",
			"on_dead": {"type": "failed", "data": "{'sku': item.sku, 'next': int(item.qty) + index, 'label': effect.key + ':' + item.sku}"}}]},
			"failed": {}}}}}`)
	dec, err = Decide(d, testWF, state, in("go", ""), testNow)
	require.NoError(t, err)
	ef := dec.Effects[1]
	got, err := d.OnDeadInput(context.Background(), testWF, later, ef.OnDead,
		DeadEffect{ID: "e-1", Name: ef.Name, Key: ef.Key, Item: ef.Item, Index: ef.Index}, testNow)
	require.NoError(t, err)
	require.JSONEq(t, `{"sku": "b-2", "next": 3, "label": "1:b-2"}`, string(got.Data))

	// An effect that kept no element sees item null and index -1: an expression that
	// reads a field of it fails, one that tests it does not.
	_, err = d.OnDeadInput(context.Background(), testWF, later, ef.OnDead, DeadEffect{ID: "e-1", Name: ef.Name, Key: "1"}, testNow)
	requireEval(t, err, ef.OnDead+"/on_dead/data", "")
	d = mustParse(t, `{"initial_state": "a", "inputs": {"go": {}, "failed": {}},
		"states": {"a": {"on": {"go": {"effects": [{"name": "ship", "for_each": "state.data.items",
			"on_dead": {"type": "failed", "data": "{'kept': item != null, 'index': index, 'key': effect.key}"}}]},
			"failed": {}}}}}`)
	got, err = d.OnDeadInput(context.Background(), testWF, later, "/states/a/on/go/effects/0", DeadEffect{ID: "e-1", Key: "1"}, testNow)
	require.NoError(t, err)
	require.JSONEq(t, `{"kept": false, "index": -1, "key": "1"}`, string(got.Data))

	// A kept element that is not JSON is a broken row, not an expression's failure.
	_, err = d.OnDeadInput(context.Background(), testWF, later, "/states/a/on/go/effects/0",
		DeadEffect{ID: "e-1", Key: "1", Item: json.RawMessage(`{"sku":`)}, testNow)
	require.ErrorIs(t, err, ErrInvalidState)
}

// TestForEachItemKeptBounded: the element an on_dead sees is kept only within the data
// limit, and counts with the payloads against the decision's bytes; an element JSON
// cannot hold is refused at the for_each.
func TestForEachItemKeptBounded(t *testing.T) {
	t.Parallel()
	def := func(forEach string) string {
		return `{"initial_state": "a", "inputs": {"go": {}, "failed": {}},
			"states": {"a": {"on": {"go": {"effects": [{"name": "e", "for_each": "` + forEach + `", "payload": "{}",
				"on_dead": {"type": "failed", "data": "{'n': index}"}}]}, "failed": {}}}}}`
	}
	lim := Limits{MaxDataBytes: 1 << 10}
	d, err := ParseWithLimits("flow", []byte(def("[input.data.s + input.data.s]")), lim)
	require.NoError(t, err)
	dec, err := DecideNew(d, testWF, in("go", `{"s": "`+strings.Repeat("x", 500)+`"}`), testNow)
	require.NoError(t, err, "1002 bytes of JSON fit in 1 KiB")
	require.Len(t, dec.Effects[0].Item, 1002)
	_, err = DecideNew(d, testWF, in("go", `{"s": "`+strings.Repeat("x", 512)+`"}`), testNow)
	require.ErrorIs(t, err, ErrTooLarge)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "/states/a/on/go/effects/0/for_each", ve.Errors[0].Path)
	require.Contains(t, ve.Errors[0].Message, "element 0 is larger than 1024 bytes")

	// Sixteen elements of 1000 bytes and their payloads ({}) fit in 16 KiB; seventeen
	// do not.
	d, err = ParseWithLimits("flow", []byte(def("input.data.n.map(i, input.data.s + input.data.s)")), lim)
	require.NoError(t, err)
	many := func(n int) string {
		return `{"s": "` + strings.Repeat("x", 499) + `", "n": [` + strings.TrimSuffix(strings.Repeat("0,", n), ",") + `]}`
	}
	_, err = DecideNew(d, testWF, in("go", many(16)), testNow)
	require.NoError(t, err)
	_, err = DecideNew(d, testWF, in("go", many(17)), testNow)
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, "together")

	d, err = ParseWithLimits("flow", []byte(def("[0.0 / 0.0]")), lim)
	require.NoError(t, err)
	_, err = DecideNew(d, testWF, in("go", ""), testNow)
	requireEval(t, err, "/states/a/on/go/effects/0/for_each", "element 0 cannot be kept as JSON")
}
