package workflow

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func orderDefinition(t testing.TB) *Definition {
	t.Helper()
	body, err := os.ReadFile("testdata/order.json")
	require.NoError(t, err)
	d, err := Parse("order", body)
	require.NoError(t, err)
	return d
}

func mustParse(t testing.TB, body string) *Definition {
	t.Helper()
	d, err := Parse("flow", []byte(body))
	require.NoError(t, err)
	return d
}

// withStates builds a definition with initial state "a", inputs go/back/tick
// (tick requires {"n": number}) and the given states object.
func withStates(states string) string {
	return `{"initial_state": "a", "inputs": {"go": {}, "back": {},
		"tick": {"schema": {"type": "object", "required": ["n"], "properties": {"n": {"type": "number"}}}}},
		"states": ` + states + `}`
}

func TestParseOrder(t *testing.T) {
	t.Parallel()
	d := orderDefinition(t)
	require.Equal(t, "order", d.Type())
	require.Equal(t, "Order lifecycle", d.Description())
	require.Equal(t, State{Name: "new", Data: []byte(`{}`)}, d.InitialState())
	require.True(t, d.HasUniqueKey())
	require.True(t, d.IsTerminal("done"))
	require.True(t, d.IsTerminal("expired"))
	require.False(t, d.IsTerminal("paid"))
	require.False(t, d.IsTerminal("nope"))
	require.Equal(t, []string{"new", "awaiting_payment", "paid", "done", "expired"}, d.States())
	require.Equal(t, []string{"place", "pay", "expire", "reserved", "shipped"}, d.Inputs())
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{"no terminal state", withStates(`{"a": {"on": {"go": {"to": "b"}}}, "b": {"on": {"back": {"to": "a"}}}}`)},
		{"single state without inputs", `{"initial_state": "a", "states": {"a": {}}}`},
		{"empty on of a terminal state", withStates(`{"a": {"on": {"go": {"to": "b"}}}, "b": {"terminal": true, "on": {}}}`)},
		{"zero duration", withStates(`{"a": {"timers": [{"key": "t", "after": "0s", "input": {"type": "go"}}]}}`)},
		{"timer data valid against schema", withStates(`{"a": {"timers": [{"key": "t", "after": "1s", "input": {"type": "tick", "data": {"n": 1}}}]}}`)},
		{"dyn results", withStates(`{"a": {"on": {"go": [{"if": "input.data.ok", "data": "input.data", "effects": [{"name": "e", "payload": "state.data"}],
			"timers": [{"key": "t", "at": "input.data.when", "input": {"type": "go"}}]}]}}}`)},
		{"null data", withStates(`{"a": {"on": {"go": {"data": "null"}}}}`)},
		{"cancel a key defined elsewhere", withStates(`{"a": {"timers": [{"key": "t", "after": "1s", "input": {"type": "go"}}],
			"on": {"go": {"to": "b"}}}, "b": {"on": {"back": {"to": "a", "cancel_timers": ["t"]}}}}`)},
		{"boolean schema", `{"initial_state": "a", "inputs": {"go": {"schema": true}}, "states": {"a": {}}}`},
		{"local refs", `{"initial_state": "a", "inputs": {"go": {"schema": {"$defs": {"n": {"type": "number"}}, "properties": {"n": {"$ref": "#/$defs/n"}}}}}, "states": {"a": {}}}`},
		{"optional syntax", withStates(`{"a": {"on": {"go": [{"if": "input.data.?n.orValue(0.0) > 1.0"}]}}}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("flow", []byte(tt.body))
			require.NoError(t, err)
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("1 + ", 1100) + "1"
	tests := []struct {
		name  string
		typ   string
		body  string
		paths []string // every error, in order
		msg   string   // substring of the first error's message
	}{
		{"invalid JSON", "flow", `{"initial_state": `, []string{""}, "invalid JSON"},
		{"not an object", "flow", `[]`, []string{""}, "must be an object"},
		{"trailing data", "flow", `{"initial_state": "a", "states": {"a": {}}} {}`, []string{""}, "after the top-level value"},
		{"bad type name", "Flow", `{"initial_state": "a", "states": {"a": {}}}`, []string{""}, "workflow type"},
		{"unknown top-level field", "flow", `{"initial_state": "a", "states": {"a": {}}, "extra": 1}`, []string{"/extra"}, "unknown field"},
		{"duplicate key", "flow", `{"initial_state": "a", "states": {"a": {}, "a": {}}}`, []string{"/states"}, "duplicate key"},
		{"missing initial state", "flow", `{"states": {"a": {}}}`, []string{"/initial_state"}, "is required"},
		{"unknown initial state", "flow", `{"initial_state": "x", "states": {"a": {}}}`, []string{"/initial_state"}, `unknown state "x"`},
		{"terminal initial state", "flow", `{"initial_state": "a", "states": {"a": {"terminal": true}}}`, []string{"/initial_state"}, "cannot be terminal"},
		{"missing states", "flow", `{"initial_state": "a"}`, []string{"/states"}, "is required"},
		{"empty states", "flow", `{"initial_state": "a", "states": {}}`, []string{"/states"}, "at least one state"},
		{"description not a string", "flow", `{"description": 1, "initial_state": "a", "states": {"a": {}}}`, []string{"/description"}, "must be a string"},
		{"bad state name", "flow", withStates(`{"a": {"on": {"go": {"to": "B-1"}}}, "B-1": {}}`), []string{"/states/B-1"}, "state name"},
		{"escaped path", "flow", withStates(`{"a": {"x/y~": 1}}`), []string{"/states/a/x~1y~0"}, "unknown field"},
		{"bad input name", "flow", `{"initial_state": "a", "inputs": {"Go": {}}, "states": {"a": {}}}`, []string{"/inputs/Go"}, "input name"},
		{"unknown input field", "flow", `{"initial_state": "a", "inputs": {"go": {"schema": {}, "x": 1}}, "states": {"a": {}}}`, []string{"/inputs/go/x"}, "unknown field"},
		{"schema does not compile", "flow", `{"initial_state": "a", "inputs": {"go": {"schema": {"type": "nonsense"}}}, "states": {"a": {}}}`, []string{"/inputs/go/schema"}, "invalid schema"},
		{"schema not an object", "flow", `{"initial_state": "a", "inputs": {"go": {"schema": 3}}, "states": {"a": {}}}`, []string{"/inputs/go/schema"}, "object or a boolean"},
		{"remote ref", "flow", `{"initial_state": "a", "inputs": {"go": {"schema": {"$ref": "https://example.com/s.json"}}}, "states": {"a": {}}}`, []string{"/inputs/go/schema"}, "not allowed"},
		{"file ref", "flow", `{"initial_state": "a", "inputs": {"go": {"schema": {"$ref": "file:///etc/passwd"}}}, "states": {"a": {}}}`, []string{"/inputs/go/schema"}, "not allowed"},
		{"unknown target", "flow", withStates(`{"a": {"on": {"go": {"to": "nowhere"}}}}`), []string{"/states/a/on/go/to"}, `unknown state "nowhere"`},
		{"unreachable", "flow", withStates(`{"a": {"on": {"go": {"to": "b"}}}, "b": {}, "c": {"on": {"go": {"to": "b"}}}}`), []string{"/states/c"}, "unreachable"},
		{"undeclared input", "flow", withStates(`{"a": {"on": {"jump": {}}}}`), []string{"/states/a/on/jump"}, "not declared"},
		{"terminal with on", "flow", withStates(`{"a": {"on": {"go": {"to": "b"}}}, "b": {"terminal": true, "on": {"go": {}}}}`), []string{"/states/b/on"}, "terminal"},
		{"terminal with timers", "flow", withStates(`{"a": {"on": {"go": {"to": "b"}}}, "b": {"terminal": true, "timers": [{"key": "t", "after": "1s", "input": {"type": "go"}}]}}`), []string{"/states/b/timers"}, "terminal"},
		{"terminal not a bool", "flow", withStates(`{"a": {"terminal": "yes"}}`), []string{"/states/a/terminal"}, `must be true, false or "failed"`},
		{"terminal a number", "flow", withStates(`{"a": {"terminal": 1}}`), []string{"/states/a/terminal"}, `must be true, false or "failed"`},
		{"transition neither object nor list", "flow", withStates(`{"a": {"on": {"go": "b"}}}`), []string{"/states/a/on/go"}, "transition object or a list"},
		{"empty branch list", "flow", withStates(`{"a": {"on": {"go": []}}}`), []string{"/states/a/on/go"}, "at least one branch"},
		{"if outside branches", "flow", withStates(`{"a": {"on": {"go": {"if": "true"}}}}`), []string{"/states/a/on/go/if"}, "only allowed in a list"},
		{"if syntax error", "flow", withStates(`{"a": {"on": {"go": [{"if": "input.data.x >"}]}}}`), []string{"/states/a/on/go/0/if"}, "invalid expression"},
		{"if undeclared variable", "flow", withStates(`{"a": {"on": {"go": [{"if": "order.total > 1"}]}}}`), []string{"/states/a/on/go/0/if"}, "undeclared reference"},
		{"if wrong type", "flow", withStates(`{"a": {"on": {"go": [{"if": "'yes'"}]}}}`), []string{"/states/a/on/go/0/if"}, "must evaluate to a bool, not string"},
		{"if empty", "flow", withStates(`{"a": {"on": {"go": [{"if": " "}]}}}`), []string{"/states/a/on/go/0/if"}, "must not be empty"},
		{"expression too long", "flow", withStates(`{"a": {"on": {"go": [{"if": "` + long + ` > 0"}]}}}`), []string{"/states/a/on/go/0/if"}, "limit is 4096"},
		{"unreachable branch", "flow", withStates(`{"a": {"on": {"go": [{"to": "a"}, {"reject": "never"}]}}}`), []string{"/states/a/on/go/1"}, "unreachable"},
		{"reject with to and event", "flow", withStates(`{"a": {"on": {"go": [{"reject": "no", "to": "a", "event": "X"}]}}}`), []string{"/states/a/on/go/0/to", "/states/a/on/go/0/event"}, "rejects"},
		{"empty reject", "flow", withStates(`{"a": {"on": {"go": [{"reject": ""}]}}}`), []string{"/states/a/on/go/0/reject"}, "must not be empty"},
		{"unknown transition field", "flow", withStates(`{"a": {"on": {"go": {"goto": "a"}}}}`), []string{"/states/a/on/go/goto"}, "unknown field"},
		{"bad event name", "flow", withStates(`{"a": {"on": {"go": {"event": "9lives"}}}}`), []string{"/states/a/on/go/event"}, "event name"},
		{"data wrong type", "flow", withStates(`{"a": {"on": {"go": {"data": "1 + 2"}}}}`), []string{"/states/a/on/go/data"}, "must evaluate to a map, not int"},
		{"effect without name", "flow", withStates(`{"a": {"on": {"go": {"effects": [{"payload": "{}"}]}}}}`), []string{"/states/a/on/go/effects/0/name"}, "is required"},
		{"bad effect name", "flow", withStates(`{"a": {"on": {"go": {"effects": [{"name": "Ship"}]}}}}`), []string{"/states/a/on/go/effects/0/name"}, "effect name"},
		{"payload wrong type", "flow", withStates(`{"a": {"on": {"go": {"effects": [{"name": "e", "payload": "[1]"}]}}}}`), []string{"/states/a/on/go/effects/0/payload"}, "must evaluate to a map"},
		{"bad duration", "flow", withStates(`{"a": {"timers": [{"key": "t", "after": "30 minutes", "input": {"type": "go"}}]}}`), []string{"/states/a/timers/0/after"}, "invalid duration"},
		{"negative duration", "flow", withStates(`{"a": {"timers": [{"key": "t", "after": "-1m", "input": {"type": "go"}}]}}`), []string{"/states/a/timers/0/after"}, "negative"},
		{"after and at", "flow", withStates(`{"a": {"timers": [{"key": "t", "after": "1m", "at": "now", "input": {"type": "go"}}]}}`), []string{"/states/a/timers/0"}, "not both"},
		{"neither after nor at", "flow", withStates(`{"a": {"timers": [{"key": "t", "input": {"type": "go"}}]}}`), []string{"/states/a/timers/0"}, "one of after or at"},
		{"at wrong type", "flow", withStates(`{"a": {"on": {"go": {"timers": [{"key": "t", "at": "'tomorrow'", "input": {"type": "go"}}]}}}}`), []string{"/states/a/on/go/timers/0/at"}, "must evaluate to a timestamp"},
		{"bad timer key", "flow", withStates(`{"a": {"timers": [{"key": "T", "after": "1s", "input": {"type": "go"}}]}}`), []string{"/states/a/timers/0/key"}, "timer key"},
		{"duplicate timer key", "flow", withStates(`{"a": {"timers": [{"key": "t", "after": "1s", "input": {"type": "go"}}, {"key": "t", "after": "2s", "input": {"type": "go"}}]}}`), []string{"/states/a/timers/1/key"}, "duplicate"},
		{"timer without input", "flow", withStates(`{"a": {"timers": [{"key": "t", "after": "1s"}]}}`), []string{"/states/a/timers/0/input"}, "is required"},
		{"timer input undeclared", "flow", withStates(`{"a": {"timers": [{"key": "t", "after": "1s", "input": {"type": "ring"}}]}}`), []string{"/states/a/timers/0/input/type"}, "not declared"},
		{"timer data fails schema", "flow", withStates(`{"a": {"timers": [{"key": "t", "after": "1s", "input": {"type": "tick", "data": {"n": "x"}}}]}}`), []string{"/states/a/timers/0/input/data/n"}, "want number"},
		{"timer data missing for schema", "flow", withStates(`{"a": {"timers": [{"key": "t", "after": "1s", "input": {"type": "tick"}}]}}`), []string{"/states/a/timers/0/input/data"}, "missing property"},
		{"cancel unknown key", "flow", withStates(`{"a": {"on": {"go": {"cancel_timers": ["nope"]}}}}`), []string{"/states/a/on/go/cancel_timers/0"}, "no timer"},
		{"cancel bad key", "flow", withStates(`{"a": {"on": {"go": {"cancel_timers": ["No"]}}}}`), []string{"/states/a/on/go/cancel_timers/0"}, "timer key"},
		{"unique key wrong type", "flow", `{"initial_state": "a", "unique_key": "1", "states": {"a": {}}}`, []string{"/unique_key"}, "must evaluate to a string, not int"},
		{"unique key not a string", "flow", `{"initial_state": "a", "unique_key": 1, "states": {"a": {}}}`, []string{"/unique_key"}, "must be a string"},
		{"comprehension nesting", "flow", withStates(`{"a": {"on": {"go": [{"if": "[1].all(a, [1].all(b, [1].all(c, [1].all(d, true))))"}]}}}`), []string{"/states/a/on/go/0/if"}, "nest"},
		{"every error at once", "flow", withStates(`{"a": {"on": {"go": {"to": "x"}, "jump": {"to": "b", "data": "1"}}}, "b": {"terminal": true, "on": {"back": {"to": "a"}}}, "c": {}}`),
			[]string{"/states/a/on/go/to", "/states/a/on/jump", "/states/a/on/jump/data", "/states/b/on", "/states/c"}, `unknown state "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireTypeParseErrors(t, tt.typ, tt.body, tt.paths, tt.msg)
		})
	}
}

// requireTypeParseErrors asserts that Parse refuses body as type typ with exactly the
// problems at paths, in order, the first one's message containing msg.
func requireTypeParseErrors(t *testing.T, typ, body string, paths []string, msg string) {
	t.Helper()
	d, err := Parse(typ, []byte(body))
	require.Nil(t, d)
	require.ErrorIs(t, err, ErrInvalidDefinition)
	var ve *ValidationError
	require.True(t, errors.As(err, &ve))
	got := make([]string, 0, len(ve.Errors))
	for _, fe := range ve.Errors {
		got = append(got, fe.Path)
	}
	require.Equal(t, paths, got, "errors: %v", ve.Errors)
	require.Contains(t, ve.Errors[0].Message, msg)
}

func TestParseLimits(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"initial_state": "s0", "states": {`)
	for i := range maxStates + 1 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"s` + strconv.Itoa(i) + `": {}`)
	}
	b.WriteString("}}")
	_, err := Parse("flow", []byte(b.String()))
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "/states", ve.Errors[0].Path)
	require.Contains(t, ve.Errors[0].Message, "limit is 1000")
}

func TestValidationErrorMessage(t *testing.T) {
	t.Parallel()
	err := &ValidationError{Err: ErrInvalidDefinition, Errors: []FieldError{
		{"/a", "one"}, {"/b", "two"}, {"", "three"}, {"/d", "four"}, {"/e", "five"},
	}}
	require.Equal(t, "invalid definition: /a: one; /b: two; three; and 2 more", err.Error())
	require.ErrorIs(t, err, ErrInvalidDefinition)
	require.NotErrorIs(t, err, ErrInvalidInput)
}
