package workflow

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEvolve(t *testing.T) {
	t.Parallel()
	// The object cases of RFC 7386 appendix A, plus ours.
	tests := []struct {
		name, data, patch, want string
	}{
		{"replace a value", `{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{"add a key", `{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{"null deletes", `{"a":"b"}`, `{"a":null}`, `{}`},
		{"null deletes one key", `{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{"array replaced by a string", `{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{"string replaced by an array", `{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{"nested merge", `{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{"arrays are replaced whole", `{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{"existing nulls stay", `{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{"nulls in new objects are dropped", `{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
		{"object replaces a scalar", `{"a":1}`, `{"a":{"b":2}}`, `{"a":{"b":2}}`},
		{"empty patch", `{"a":1}`, `{}`, `{"a":1}`},
		{"null patch changes nothing", `{"a":1}`, `null`, `{"a":1}`},
		{"absent patch changes nothing", `{"a":1}`, ``, `{"a":1}`},
		{"empty state data is {}", ``, `{"a":1}`, `{"a":1}`},
		{"numbers keep their precision", `{"big":12345678901234567890}`, `{"f":1.50}`, `{"big":12345678901234567890,"f":1.50}`},
		{"keys come out sorted and compact", `{ "z" : 1 , "a" : 2 }`, `{"m": "<&>"}`, `{"a":2,"m":"<&>","z":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Evolve(State{Name: "old", Data: json.RawMessage(tt.data)},
				Event{Type: "E", From: "old", To: "new", Data: json.RawMessage(tt.patch)})
			require.NoError(t, err)
			require.Equal(t, "new", got.Name)
			require.Equal(t, tt.want, string(got.Data))
		})
	}
}

func TestEvolveErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data, patch string
		state             bool // the error wraps ErrInvalidState
	}{
		{"state data not an object", `[1]`, `{}`, true},
		{"state data not JSON", `{`, `{}`, true},
		{"event data an array", `{}`, `["a"]`, false},
		{"event data a string", `{}`, `"a"`, false},
		{"event data not JSON", `{}`, `{"a":`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Evolve(State{Name: "s", Data: json.RawMessage(tt.data)}, Event{To: "s", Data: json.RawMessage(tt.patch)})
			require.Error(t, err)
			if tt.state {
				require.ErrorIs(t, err, ErrInvalidState)
			}
		})
	}
}

func TestEvolveDoesNotAlias(t *testing.T) {
	t.Parallel()
	s := State{Name: "a", Data: json.RawMessage(`{"a":{"b":1}}`)}
	e := Event{To: "b", Data: json.RawMessage(`{"a":{"c":2}}`)}
	first, err := Evolve(s, e)
	require.NoError(t, err)
	second, err := Evolve(s, e)
	require.NoError(t, err)
	require.Equal(t, first, second)
	require.Equal(t, `{"a":{"b":1}}`, string(s.Data))
}
