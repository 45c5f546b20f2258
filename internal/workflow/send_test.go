package workflow

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sendDefinition is a parent whose place input sends start_chunk to a chunk per element
// of input.data.chunks, as the contract's example; transition replaces the send effect
// when not "".
func sendDefinition(effect string) string {
	if effect == "" {
		effect = `{"name": "start_chunk", "for_each": "input.data.chunks",
			"send": {"workflow_type": "chunk", "id": "workflow.id + '/' + string(index)",
			         "input": {"type": "start", "data": "{'n': item}"},
			         "child": {"on_completed": "chunk_done", "on_failed": "chunk_failed", "on_parent_end": "terminate"}}}`
	}
	return `{"initial_state": "a",
		"inputs": {"place": {}, "chunk_done": {}, "chunk_failed": {}, "stop": {}},
		"states": {
			"a": {"on": {"place": {"to": "b", "effects": [` + effect + `]}}},
			"b": {"on": {"chunk_done": {}, "chunk_failed": {}, "stop": {"to": "done"}}},
			"done": {"terminal": true}}}`
}

func TestSendEffects(t *testing.T) {
	t.Parallel()
	d := mustParse(t, sendDefinition(""))
	require.True(t, d.HasChildren())
	dec, err := DecideNew(d, testWF, in("place", `{"chunks": [10, 20]}`), testNow)
	require.NoError(t, err)
	require.Len(t, dec.Effects, 2)
	for i, want := range []string{`{"type":"start","data":{"n":10}}`, `{"type":"start","data":{"n":20}}`} {
		ef := dec.Effects[i]
		require.Equal(t, "start_chunk", ef.Name)
		require.JSONEq(t, want, string(ef.Payload))
		require.Equal(t, &Send{WorkflowType: "chunk", ID: "f-1/" + ef.Key,
			Child: &Child{OnCompleted: "chunk_done", OnFailed: "chunk_failed", OnParentEnd: ParentEndTerminate}}, ef.Send)
	}

	// Without data the input's data is {}; without child there is no link, and no
	// for_each gives one send.
	d = mustParse(t, sendDefinition(`{"name": "ping", "send": {"workflow_type": "other", "id": "'x'", "input": {"type": "hello"}}}`))
	require.False(t, d.HasChildren())
	dec, err = DecideNew(d, testWF, in("place", ``), testNow)
	require.NoError(t, err)
	require.Len(t, dec.Effects, 1)
	require.Equal(t, &Send{WorkflowType: "other", ID: "x"}, dec.Effects[0].Send)
	var got Input
	require.NoError(t, json.Unmarshal(dec.Effects[0].Payload, &got))
	require.Equal(t, Input{Type: "hello", Data: json.RawMessage(`{}`)}, got)

	// on_parent_end defaults to terminate; abandon makes no child to terminate.
	d = mustParse(t, sendDefinition(`{"name": "c", "send": {"workflow_type": "other", "id": "'x'", "input": {"type": "hello"}, "child": {}}}`))
	require.True(t, d.HasChildren())
	dec, err = DecideNew(d, testWF, in("place", ``), testNow)
	require.NoError(t, err)
	require.Equal(t, &Child{OnParentEnd: ParentEndTerminate}, dec.Effects[0].Send.Child)
	d = mustParse(t, sendDefinition(`{"name": "c", "send": {"workflow_type": "other", "id": "'x'", "input": {"type": "hello"}, "child": {"on_parent_end": "abandon"}}}`))
	require.False(t, d.HasChildren())
}

func TestSendIDMustBeAnInstanceID(t *testing.T) {
	t.Parallel()
	for name, id := range map[string]string{
		"empty":     `''`,
		"too long":  `'` + strings.Repeat("x", 201) + `'`,
		"a control": `'a\n'`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := mustParse(t, sendDefinition(`{"name": "c", "send": {"workflow_type": "other", "id": "`+strings.ReplaceAll(id, `\`, `\\`)+`", "input": {"type": "hello"}}}`))
			_, err := DecideNew(d, testWF, in("place", ``), testNow)
			require.ErrorIs(t, err, ErrEvaluation)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "/states/a/on/place/effects/0/send/id", ve.Errors[0].Path)
			require.Contains(t, ve.Errors[0].Message, "not an instance id")
		})
	}
}

func TestSendParseErrors(t *testing.T) {
	t.Parallel()
	const at = "/states/a/on/place/effects/0"
	tests := []struct {
		name, effect, msg string
		paths             []string
	}{
		{"empty send", `{"name": "c", "send": {}}`, "is required",
			[]string{at + "/send/workflow_type", at + "/send/id", at + "/send/input"}},
		{"bad type name", `{"name": "c", "send": {"workflow_type": "Chunk", "id": "'x'", "input": {"type": "start"}}}`,
			"must match", []string{at + "/send/workflow_type"}},
		{"id not a string", `{"name": "c", "send": {"workflow_type": "chunk", "id": "1", "input": {"type": "start"}}}`,
			"must evaluate to a string", []string{at + "/send/id"}},
		{"input without type", `{"name": "c", "send": {"workflow_type": "chunk", "id": "'x'", "input": {"data": "{}"}}}`,
			"is required", []string{at + "/send/input/type"}},
		{"data not a map", `{"name": "c", "send": {"workflow_type": "chunk", "id": "'x'", "input": {"type": "start", "data": "[1]"}}}`,
			"must evaluate to a map", []string{at + "/send/input/data"}},
		{"item outside for_each", `{"name": "c", "send": {"workflow_type": "chunk", "id": "string(item)", "input": {"type": "start"}}}`,
			"undeclared reference to 'item'", []string{at + "/send/id"}},
		{"payload beside send", `{"name": "c", "payload": "{}", "send": {"workflow_type": "chunk", "id": "'x'", "input": {"type": "start"}}}`,
			"has no payload", []string{at + "/payload"}},
		{"unknown field", `{"name": "c", "send": {"workflow_type": "chunk", "id": "'x'", "input": {"type": "start"}, "url": "x"}}`,
			"unknown field", []string{at + "/send/url"}},
		{"on_completed undeclared", `{"name": "c", "send": {"workflow_type": "chunk", "id": "'x'", "input": {"type": "start"},
			"child": {"on_completed": "nope", "on_failed": "chunk_failed"}}}`,
			"not declared in inputs", []string{at + "/send/child/on_completed"}},
		{"on_failed undeclared", `{"name": "c", "send": {"workflow_type": "chunk", "id": "'x'", "input": {"type": "start"},
			"child": {"on_failed": "nope"}}}`,
			"not declared in inputs", []string{at + "/send/child/on_failed"}},
		{"on_parent_end unknown", `{"name": "c", "send": {"workflow_type": "chunk", "id": "'x'", "input": {"type": "start"},
			"child": {"on_parent_end": "wait"}}}`,
			`must be "terminate" or "abandon"`, []string{at + "/send/child/on_parent_end"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireParseErrors(t, sendDefinition(tt.effect), tt.msg, tt.paths...)
		})
	}

	// A child that ends with its parent cannot be sent as the parent ends.
	requireParseErrors(t, `{"initial_state": "a", "inputs": {"go": {}}, "states": {
		"a": {"on": {"go": {"to": "z", "effects": [{"name": "c", "send": {"workflow_type": "chunk", "id": "'x'",
			"input": {"type": "start"}, "child": {}}}]}}},
		"z": {"terminal": "failed"}}}`, "cannot be sent on a transition into the terminal state", "/states/a/on/go/effects/0/send/child")
	mustParse(t, `{"initial_state": "a", "inputs": {"go": {}}, "states": {
		"a": {"on": {"go": {"to": "z", "effects": [{"name": "c", "send": {"workflow_type": "chunk", "id": "'x'",
			"input": {"type": "start"}, "child": {"on_parent_end": "abandon"}}}]}}},
		"z": {"terminal": true}}}`)
}

func TestDiagramSend(t *testing.T) {
	t.Parallel()
	d := mustParse(t, sendDefinition(""))
	require.Contains(t, d.Mermaid(), "a --> b: place / place send start_chunk → chunk for each input.data.chunks\n")
	require.Contains(t, d.DOT(), `send start_chunk → chunk for each input.data.chunks`)
}
