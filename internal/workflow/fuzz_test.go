package workflow

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func seedDefinitions(f *testing.F) [][]byte {
	f.Helper()
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(f, err)
	var out [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		require.NoError(f, err)
		out = append(out, b)
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, b := range seedDefinitions(f) {
		f.Add(b)
	}
	f.Add([]byte(withStates(`{"a": {"on": {"go": [{"if": "input.data.x", "to": "b"}, {"reject": "no"}]}}, "b": {"terminal": true}}`)))
	f.Add([]byte(`{"initial_state": "a", "states": {"a": {}}}`))
	f.Add([]byte(`{"initial_state": 1, "states": []}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := Parse("flow", body)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidDefinition)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.NotEmpty(t, ve.Errors)
			return
		}
		_ = d.Mermaid()
		_ = d.DOT()
		for _, typ := range d.Inputs() {
			_, _, _ = d.UniqueKey(testWF, Input{Type: typ}, testNow)
			dec, err := DecideNew(d, testWF, Input{Type: typ}, testNow)
			checkDecision(t, d, d.InitialState(), dec, err)
		}
	})
}

func FuzzDecide(f *testing.F) {
	defs := seedDefinitions(f)
	f.Add(0, "awaiting_payment", []byte(`{"total": 40}`), "pay", []byte(`{"amount": 40}`))
	f.Add(0, "awaiting_payment", []byte(`{"total": 40}`), "pay", []byte(`{"amount": "40"}`))
	f.Add(0, "new", []byte(`{}`), "place", []byte(`{"total": 1, "order_ref": 7}`))
	f.Add(1, "open", []byte(`{"total": 1, "items": [1]}`), "add", []byte(`{"n": 2}`))
	f.Add(1, "open", []byte(`{"total": "x"}`), "add", []byte(`{"n": 2}`))
	f.Add(1, "open", []byte(`{}`), "add", []byte(`{"n": 1e308}`))
	f.Add(1, "closed", []byte(`{}`), "reopen", []byte(``))
	f.Add(1, "closed", []byte(`[]`), "finish", []byte(`null`))
	f.Add(1, "nowhere", []byte(`{`), "nothing", []byte(`{`))
	parsed := make([]*Definition, len(defs))
	for i, b := range defs {
		d, err := Parse("flow", b)
		require.NoError(f, err)
		parsed[i] = d
	}
	f.Fuzz(func(t *testing.T, which int, stateName string, stateData []byte, inputType string, inputData []byte) {
		if which < 0 {
			which = -which
		}
		d := parsed[which%len(parsed)]
		state := State{Name: stateName, Data: stateData}
		in := Input{Type: inputType, Data: inputData}
		dec, err := Decide(d, testWF, state, in, testNow)
		checkDecision(t, d, state, dec, err)
		again, err2 := Decide(d, testWF, state, in, testNow)
		require.Equal(t, err, err2)
		require.Equal(t, dec, again)
	})
}

// checkDecision asserts what every decision promises: errors are typed, an
// accepted decision's NewState is Evolve of its one event and its data an object.
func checkDecision(t *testing.T, d *Definition, state State, dec Decision, err error) {
	t.Helper()
	if err != nil {
		for _, sentinel := range []error{ErrUnknownInput, ErrInvalidInput, ErrEvaluation, ErrInvalidState} {
			if errors.Is(err, sentinel) {
				return
			}
		}
		t.Fatalf("untyped error: %v", err)
	}
	if !dec.Accepted {
		require.NotEmpty(t, dec.Reason)
		return
	}
	want, err := Evolve(state, dec.Event)
	require.NoError(t, err)
	require.Equal(t, want, dec.NewState)
	var data map[string]any
	require.NoError(t, json.Unmarshal(dec.NewState.Data, &data))
	require.Equal(t, d.IsTerminal(dec.NewState.Name), dec.Completed)
	for _, e := range dec.Effects {
		require.True(t, json.Valid(e.Payload))
	}
}

// FuzzDecodeValue: decodeValue decodes every document as encoding/json's Decoder with
// UseNumber does, and fails where it fails.
func FuzzDecodeValue(f *testing.F) {
	for _, doc := range decodeValueCorpus {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		requireDecodesAsDecoder(t, doc)
	})
}
