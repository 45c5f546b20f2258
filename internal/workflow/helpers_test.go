package workflow

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// requireParseErrors parses body and requires exactly paths as its problems, the
// first message containing msg.
func requireParseErrors(t *testing.T, body, msg string, paths ...string) {
	t.Helper()
	requireTypeParseErrors(t, "flow", body, paths, msg)
}

// TestStateTimerAtSeesEnteredState: a state timer's at is evaluated on the state
// being entered, after the event; a transition timer's at on the state before the
// input, as every other expression of its transition.
func TestStateTimerAtSeesEnteredState(t *testing.T) {
	t.Parallel()
	d := mustParse(t, withStates(`{
		"a": {"timers": [{"key": "ta", "at": "timestamp(state.data.due) + duration('1h')", "input": {"type": "back"}}],
		      "on": {"go": {"to": "b", "data": "{'due': input.data.due, 'step': state.name}",
		                    "timers": [{"key": "tt", "at": "timestamp(state.data.due)", "input": {"type": "back"}}]}}},
		"b": {"timers": [{"key": "tb", "at": "state.name == 'b' ? timestamp(state.data.due) : now", "input": {"type": "back"}}],
		      "on": {"back": {"to": "a", "data": "{'due': input.data.due}"}}}}`))
	due := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	dec, err := Decide(d, testWF, st("a", `{"due": "2026-04-01T08:00:00Z"}`), in("go", `{"due": "2026-05-01T08:00:00Z"}`), testNow)
	require.NoError(t, err)
	require.Equal(t, []Timer{
		{Key: "tt", FireAt: time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC), Input: Input{Type: "back"}},
		{Key: "tb", FireAt: due, Input: Input{Type: "back"}},
	}, dec.Timers)
	require.Equal(t, []string{"ta"}, dec.CancelTimers)

	// The first input enters the initial state: its timers see the data it set,
	// which the initial state ({}) does not have.
	d = mustParse(t, `{"initial_state": "a", "inputs": {"go": {}},
		"states": {"a": {"timers": [{"key": "ta", "at": "timestamp(state.data.due)", "input": {"type": "go"}}],
		                 "on": {"go": {}}}}}`)
	dec, err = DecideNew(d, testWF, in("go", `{"due": "2026-05-01T08:00:00Z"}`), testNow)
	require.NoError(t, err)
	require.Equal(t, []Timer{{Key: "ta", FireAt: due, Input: Input{Type: "go"}}}, dec.Timers)

	// An error in such a timer points at it.
	_, err = DecideNew(d, testWF, in("go", `{"due": 3}`), testNow)
	requireEval(t, err, "/states/a/timers/0/at", "")
}

func TestReenter(t *testing.T) {
	t.Parallel()
	d := mustParse(t, withStates(`{
		"a": {"timers": [{"key": "ta", "after": "1m", "input": {"type": "back"}},
		                 {"key": "tdue", "at": "timestamp(state.data.due)", "input": {"type": "back"}}],
		      "on": {"go": {"reenter": true, "event": "Extended", "effects": [{"name": "notify", "scope": "state"}]},
		             "tick": {"to": "a"},
		             "back": {"to": "b"}}},
		"b": {"on": {"go": {"to": "b", "reenter": true}, "back": {"reenter": false}}}}`))
	later := testNow.Add(time.Hour)
	dec, err := Decide(d, testWF, st("a", `{"due": "2026-01-01T00:00:00Z"}`), in("go", `{"due": "2026-06-01T00:00:00Z"}`), later)
	require.NoError(t, err)
	require.True(t, dec.Accepted)
	require.True(t, dec.LeavesState)
	require.Equal(t, Event{Type: "Extended", From: "a", To: "a", Data: []byte(`{"due":"2026-06-01T00:00:00Z"}`), InputType: "go"}, dec.Event)
	require.Equal(t, []string{"ta", "tdue"}, dec.CancelTimers)
	require.Equal(t, []Timer{
		{Key: "ta", FireAt: later.Add(time.Minute), Input: Input{Type: "back"}},
		{Key: "tdue", FireAt: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), Input: Input{Type: "back"}},
	}, dec.Timers, "re-armed from now, at on the new data")
	require.True(t, dec.Effects[0].Policy.StateScoped, "the effect belongs to the state entered again")

	// Staying without reenter leaves the state alone.
	dec, err = Decide(d, testWF, st("a", `{"due": "2026-01-01T00:00:00Z"}`), in("tick", `{"n": 1}`), later)
	require.NoError(t, err)
	require.False(t, dec.LeavesState)
	require.Empty(t, dec.CancelTimers)
	require.Empty(t, dec.Timers)

	// Moving leaves; "to" naming the current state with reenter is a reenter too.
	dec, err = Decide(d, testWF, st("a", `{"due": "2026-01-01T00:00:00Z"}`), in("back", ""), later)
	require.NoError(t, err)
	require.True(t, dec.LeavesState)
	dec, err = Decide(d, testWF, st("b", `{}`), in("back", ""), later)
	require.NoError(t, err)
	require.False(t, dec.LeavesState, "reenter: false is a plain stay")
	dec, err = Decide(d, testWF, st("b", `{}`), in("go", ""), later)
	require.NoError(t, err)
	require.True(t, dec.LeavesState)

	// Creating an instance enters its state without leaving one.
	dec, err = DecideNew(d, testWF, in("go", `{"due": "2026-06-01T00:00:00Z"}`), testNow)
	require.NoError(t, err)
	require.False(t, dec.LeavesState)
	require.Empty(t, dec.CancelTimers)
	require.Len(t, dec.Timers, 2)

	requireParseErrors(t, withStates(`{"a": {"on": {"go": {"to": "b", "reenter": true}}}, "b": {}}`),
		`only a transition that stays in its state can reenter it; this one moves to "b"`, "/states/a/on/go/reenter")
	requireParseErrors(t, withStates(`{"a": {"on": {"go": [{"to": "b", "reenter": true}]}}, "b": {"terminal": true}}`),
		"moves", "/states/a/on/go/0/reenter")
	requireParseErrors(t, withStates(`{"a": {"on": {"go": {"reenter": "yes"}}}}`), "must be true or false", "/states/a/on/go/reenter")
	requireParseErrors(t, withStates(`{"a": {"on": {"go": [{"reject": "no", "reenter": true}]}}}`), "rejects", "/states/a/on/go/0/reenter")
}

func onAnyDefinition(onAny string) string {
	return `{"initial_state": "draft",
		"inputs": {"submit": {}, "approve": {}, "cancel": {}, "ping": {}, "edit": {}},
		"on_any": ` + onAny + `,
		"states": {
			"draft": {"on": {"submit": {"to": "review"}, "cancel": {"to": "discarded", "event": "Discarded"}}},
			"review": {"timers": [{"key": "remind", "after": "P1D", "input": {"type": "ping"}}],
			           "on": {"approve": {"to": "approved"}}},
			"approved": {"terminal": true},
			"discarded": {"terminal": true},
			"cancelled": {"terminal": "failed"}}}`
}

func TestOnAny(t *testing.T) {
	t.Parallel()
	d := mustParse(t, onAnyDefinition(`{
		"cancel": [{"if": "input.data.?force.orValue(false)", "to": "cancelled", "event": "ForceCancelled", "effects": [{"name": "notify"}]},
		           {"reject": "say force to cancel"}],
		"ping": {"reenter": true, "event": "Pinged", "data": "{'pinged': state.name}"}}`))

	// A state with its own entry uses it.
	dec, err := Decide(d, testWF, st("draft", `{}`), in("cancel", `{"force": true}`), testNow)
	require.NoError(t, err)
	require.Equal(t, "Discarded", dec.Event.Type)
	require.Equal(t, "discarded", dec.NewState.Name)

	// Another state falls back to on_any, guards and rejections included.
	dec, err = Decide(d, testWF, st("review", `{}`), in("cancel", `{"force": true}`), testNow)
	require.NoError(t, err)
	require.Equal(t, Event{Type: "ForceCancelled", From: "review", To: "cancelled", Data: []byte(`{"force":true}`), InputType: "cancel"}, dec.Event)
	require.Equal(t, []Effect{{Name: "notify", Payload: []byte(`{"force":true}`)}}, dec.Effects)
	require.True(t, dec.Completed)
	require.True(t, dec.Failed)
	require.Equal(t, []string{"remind"}, dec.CancelTimers)
	dec, err = Decide(d, testWF, st("review", `{}`), in("cancel", ""), testNow)
	require.NoError(t, err)
	require.False(t, dec.Accepted)
	require.Equal(t, "say force to cancel", dec.Reason)

	// An on_any transition without to stays in the state the input arrives in;
	// with reenter it re-arms that state's timers.
	dec, err = Decide(d, testWF, st("review", `{}`), in("ping", ""), testNow)
	require.NoError(t, err)
	require.Equal(t, st("review", `{"pinged":"review"}`), dec.NewState)
	require.True(t, dec.LeavesState)
	require.Equal(t, []string{"remind"}, dec.CancelTimers)
	require.Equal(t, []Timer{{Key: "remind", FireAt: testNow.Add(24 * time.Hour), Input: Input{Type: "ping"}}}, dec.Timers)

	// Inputs neither the state nor on_any handle are still rejected as before, and a
	// terminal state takes nothing from on_any.
	dec, err = Decide(d, testWF, st("review", `{}`), in("edit", ""), testNow)
	require.NoError(t, err)
	require.Equal(t, "input 'edit' is not accepted in state 'review'", dec.Reason)
	dec, err = Decide(d, testWF, st("approved", `{}`), in("ping", ""), testNow)
	require.NoError(t, err)
	require.False(t, dec.Accepted)

	// Evaluation errors point into on_any.
	d = mustParse(t, onAnyDefinition(`{"cancel": {"to": "cancelled", "data": "{'n': 1 / int(input.data.n)}"}}`))
	_, err = Decide(d, testWF, st("review", `{}`), in("cancel", `{"n": 0}`), testNow)
	requireEval(t, err, "/on_any/cancel/data", "division by zero")

	// A state reached only through on_any is reachable.
	requireParseErrors(t, onAnyDefinition(`{"cancel": {"to": "discarded"}}`), "unreachable", "/states/cancelled")
}

func TestOnAnyParseErrors(t *testing.T) {
	t.Parallel()
	requireParseErrors(t, onAnyDefinition(`{"cancel": {"to": "nowhere"}, "undo": {"to": "cancelled"}}`), `unknown state "nowhere"`,
		"/on_any/cancel/to", "/on_any/undo")
	requireParseErrors(t, onAnyDefinition(`{"cancel": [{"if": "1", "to": "cancelled"}]}`), "must evaluate to a bool", "/on_any/cancel/0/if")
	requireParseErrors(t, onAnyDefinition(`{"cancel": {"to": "cancelled", "reenter": true}}`), "cannot have a to", "/on_any/cancel/reenter")
	requireParseErrors(t, onAnyDefinition(`{"cancel": {"to": "cancelled", "goto": "x"}}`), "unknown field", "/on_any/cancel/goto")
	requireParseErrors(t, onAnyDefinition(`[]`), "must be an object", "/on_any", "/states/cancelled")
}

func TestDiagramOnAnyAndReenter(t *testing.T) {
	t.Parallel()
	d := mustParse(t, onAnyDefinition(`{"cancel": {"to": "cancelled", "event": "Cancelled"}, "ping": {"reenter": true}}`))
	got := d.Mermaid()
	require.Contains(t, got, "    state \"any other state (on_any)\" as ANY\n")
	require.Contains(t, got, "    ANY --> cancelled: cancel / Cancelled\n")
	require.Contains(t, got, "    ANY --> ANY: ping / ping reenter\n")
	dot := d.DOT()
	require.Contains(t, dot, `  "ANY" [label="any other state (on_any)", style="rounded,dashed"];`+"\n")
	require.Contains(t, dot, `  "ANY" -> "cancelled" [label="cancel / Cancelled"];`+"\n")

	d = mustParse(t, withStates(`{"a": {"timers": [{"key": "ta", "after": "1m", "input": {"type": "back"}}], "on": {"go": {"reenter": true}}}}`))
	require.Contains(t, d.Mermaid(), "    a --> a: go / go reenter timer ta 1m → back\n")
	require.NotContains(t, d.Mermaid(), "ANY")
}
