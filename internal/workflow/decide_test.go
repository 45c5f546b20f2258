package workflow

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	testWF  = Ref{Type: "flow", ID: "f-1"}
)

func in(typ, data string) Input {
	if data == "" {
		return Input{Type: typ}
	}
	return Input{Type: typ, Data: json.RawMessage(data)}
}

func st(name, data string) State { return State{Name: name, Data: json.RawMessage(data)} }

func requireEval(t *testing.T, err error, path, msg string) {
	t.Helper()
	require.ErrorIs(t, err, ErrEvaluation)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Len(t, ve.Errors, 1)
	require.Equal(t, path, ve.Errors[0].Path)
	require.Contains(t, ve.Errors[0].Message, msg)
}

// TestOrderExample walks DESIGN §3's order definition end to end, folding the
// events with Evolve as the engine does.
func TestOrderExample(t *testing.T) {
	t.Parallel()
	d := orderDefinition(t)
	wf := Ref{Type: "order", ID: "o-1"}

	place, err := DecideNew(d, wf, in("place", `{"total": 40, "order_ref": "r-1"}`), testNow)
	require.NoError(t, err)
	require.True(t, place.Accepted)
	require.Equal(t, Event{Type: "OrderPlaced", From: "new", To: "awaiting_payment",
		Data: json.RawMessage(`{"total":40,"order_ref":"r-1"}`), InputType: "place"}, place.Event)
	require.Equal(t, []Effect{{Name: "reserve_stock", Payload: json.RawMessage(`{"total":40}`)}}, place.Effects)
	require.Equal(t, []Timer{{Key: "payment_timeout", FireAt: testNow.Add(30 * time.Minute), Input: Input{Type: "expire"}}}, place.Timers)
	require.Empty(t, place.CancelTimers)
	require.Equal(t, st("awaiting_payment", `{"order_ref":"r-1","total":40}`), place.NewState)
	require.False(t, place.Completed)
	s := place.NewState

	low, err := Decide(d, wf, s, in("pay", `{"amount": 39.5}`), testNow)
	require.NoError(t, err)
	require.False(t, low.Accepted)
	require.Equal(t, "payment is below the order total", low.Reason)
	require.Equal(t, s, low.NewState)

	reserved, err := Decide(d, wf, s, in("reserved", ""), testNow)
	require.NoError(t, err)
	require.True(t, reserved.Accepted)
	require.Equal(t, "StockReserved", reserved.Event.Type)
	require.Equal(t, "awaiting_payment", reserved.Event.To)
	require.Empty(t, reserved.Timers, "staying does not re-enter the state")
	require.Empty(t, reserved.CancelTimers, "staying does not leave the state")
	require.Equal(t, s, reserved.NewState)

	pay, err := Decide(d, wf, s, in("pay", `{"amount": 40}`), testNow)
	require.NoError(t, err)
	require.True(t, pay.Accepted)
	require.Equal(t, "PaymentReceived", pay.Event.Type)
	require.Equal(t, []Effect{{Name: "ship", Payload: json.RawMessage(`{"amount":40}`)}}, pay.Effects)
	require.Equal(t, []string{"payment_timeout"}, pay.CancelTimers)
	require.Empty(t, pay.Timers)
	require.Equal(t, st("paid", `{"amount":40,"order_ref":"r-1","total":40}`), pay.NewState)

	late, err := Decide(d, wf, pay.NewState, in("pay", `{"amount": 40}`), testNow)
	require.NoError(t, err)
	require.False(t, late.Accepted)
	require.Equal(t, "input 'pay' is not accepted in state 'paid'", late.Reason)

	shipped, err := Decide(d, wf, pay.NewState, in("shipped", ""), testNow)
	require.NoError(t, err)
	require.True(t, shipped.Accepted)
	require.True(t, shipped.Completed)
	require.Equal(t, "done", shipped.NewState.Name)

	expired, err := Decide(d, wf, s, in("expire", ""), testNow)
	require.NoError(t, err)
	require.True(t, expired.Completed)
	require.Equal(t, "PaymentTimedOut", expired.Event.Type)
	require.Equal(t, []string{"payment_timeout"}, expired.CancelTimers)

	// Replaying the events from the initial state gives the same state.
	replayed := d.InitialState()
	for _, e := range []Event{place.Event, reserved.Event, pay.Event, shipped.Event} {
		replayed, err = Evolve(replayed, e)
		require.NoError(t, err)
	}
	require.Equal(t, shipped.NewState, replayed)

	key, ok, err := d.UniqueKey(wf, in("place", `{"total": 40, "order_ref": "r-1"}`), testNow)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "r-1", key)
}

func TestDecideRejections(t *testing.T) {
	t.Parallel()
	d := mustParse(t, withStates(`{
		"a": {"on": {
			"go": [{"if": "input.data.n > 10.0", "to": "b"}, {"if": "input.data.n > 5.0", "reject": "too small"}],
			"back": {"reject": "never back"}}},
		"b": {"terminal": true}}`))
	tests := []struct {
		name, state, input, data, reason string
	}{
		{"no branch matched", "a", "go", `{"n": 1}`, "no branch of input 'go' matched in state 'a'"},
		{"reject branch", "a", "go", `{"n": 6}`, "too small"},
		{"reject transition", "a", "back", "", "never back"},
		{"no entry in state", "a", "tick", `{"n": 1}`, "input 'tick' is not accepted in state 'a'"},
		{"terminal state", "b", "go", `{"n": 100}`, "input 'go' is not accepted in state 'b'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dec, err := Decide(d, testWF, st(tt.state, `{"x": 1}`), in(tt.input, tt.data), testNow)
			require.NoError(t, err)
			require.False(t, dec.Accepted)
			require.Equal(t, tt.reason, dec.Reason)
			require.Equal(t, st(tt.state, `{"x": 1}`), dec.NewState)
			require.Empty(t, dec.Effects)
			require.Empty(t, dec.Timers)
			require.Empty(t, dec.CancelTimers)
		})
	}
}

func TestDecideGuardsInOrder(t *testing.T) {
	t.Parallel()
	d := mustParse(t, withStates(`{"a": {"on": {"tick": [
		{"if": "input.data.n > 10", "event": "Big"},
		{"if": "input.data.n > 5", "event": "Medium"},
		{"if": "input.data.n > 10000", "event": "Unreachable"},
		{"event": "Small"}]}}}`))
	tests := []struct {
		n     string
		event string
	}{{"100000", "Big"}, {"11", "Big"}, {"10", "Medium"}, {"5.5", "Medium"}, {"5", "Small"}, {"-1", "Small"}}
	for _, tt := range tests {
		t.Run(tt.n, func(t *testing.T) {
			t.Parallel()
			dec, err := Decide(d, testWF, st("a", `{}`), in("tick", `{"n": `+tt.n+`}`), testNow)
			require.NoError(t, err)
			require.True(t, dec.Accepted)
			require.Equal(t, tt.event, dec.Event.Type)
		})
	}
}

func TestDecideStateTimers(t *testing.T) {
	t.Parallel()
	d := mustParse(t, withStates(`{
		"a": {"timers": [{"key": "ta", "after": "1m", "input": {"type": "go"}}, {"key": "shared", "after": "1h", "input": {"type": "go"}}],
		      "on": {"go": {"to": "b"}, "tick": {}}},
		"b": {"timers": [{"key": "tb", "after": "2m", "input": {"type": "back", "data": {"why": "timeout"}}}, {"key": "shared", "after": "2h", "input": {"type": "back"}}],
		      "on": {"back": {"to": "a"}, "tick": {"to": "b"}, "go": {}}}}`))
	timer := func(key string, after time.Duration, typ, data string) Timer {
		tm := Timer{Key: key, FireAt: testNow.Add(after), Input: Input{Type: typ}}
		if data != "" {
			tm.Input.Data = json.RawMessage(data)
		}
		return tm
	}
	tests := []struct {
		name    string
		creates bool
		state   string
		input   Input
		timers  []Timer
		cancels []string
	}{
		{"move cancels old and schedules new", false, "a", in("go", ""),
			[]Timer{timer("tb", 2*time.Minute, "back", `{"why":"timeout"}`), timer("shared", 2*time.Hour, "back", "")},
			[]string{"ta", "shared"}},
		{"move back", false, "b", in("back", ""),
			[]Timer{timer("ta", time.Minute, "go", ""), timer("shared", time.Hour, "go", "")},
			[]string{"tb", "shared"}},
		{"stay without to", false, "a", in("tick", `{"n": 1}`), nil, nil},
		{"stay with to naming the state", false, "b", in("tick", `{"n": 1}`), nil, nil},
		{"stay with an empty transition", false, "b", in("go", ""), nil, nil},
		{"creating and staying enters the initial state", true, "a", in("tick", `{"n": 1}`),
			[]Timer{timer("ta", time.Minute, "go", ""), timer("shared", time.Hour, "go", "")}, nil},
		{"creating and moving enters the target only", true, "a", in("go", ""),
			[]Timer{timer("tb", 2*time.Minute, "back", `{"why":"timeout"}`), timer("shared", 2*time.Hour, "back", "")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var dec Decision
			var err error
			if tt.creates {
				dec, err = DecideNew(d, testWF, tt.input, testNow)
			} else {
				dec, err = Decide(d, testWF, st(tt.state, `{}`), tt.input, testNow)
			}
			require.NoError(t, err)
			require.True(t, dec.Accepted)
			require.Equal(t, tt.timers, dec.Timers)
			require.Equal(t, tt.cancels, dec.CancelTimers)
		})
	}
}

func TestDecideTransitionTimers(t *testing.T) {
	t.Parallel()
	d := mustParse(t, withStates(`{
		"a": {"timers": [{"key": "s", "after": "1m", "input": {"type": "go"}}],
		      "on": {
			"go": {"to": "b",
				"timers": [
					{"key": "remind", "after": "24h", "input": {"type": "tick", "data": {"n": 1}}},
					{"key": "deadline", "at": "timestamp(input.data.deadline)", "input": {"type": "back"}},
					{"key": "soon", "at": "now + duration('90s')", "input": {"type": "back"}},
					{"key": "s", "after": "5m", "input": {"type": "go"}}]},
			"tick": {"cancel_timers": ["remind", "deadline", "remind"]}}},
		"b": {"timers": [{"key": "remind", "after": "1h", "input": {"type": "tick", "data": {"n": 2}}}],
		      "on": {"back": {"to": "a", "cancel_timers": ["soon"]}}}}`))

	dec, err := Decide(d, testWF, st("a", `{}`), in("go", `{"deadline": "2026-04-01T00:00:00+02:00"}`), testNow)
	require.NoError(t, err)
	require.Equal(t, []Timer{
		// The entered state's timer with the same key replaces the transition's.
		{Key: "remind", FireAt: testNow.Add(time.Hour), Input: in("tick", `{"n":2}`)},
		{Key: "deadline", FireAt: time.Date(2026, 3, 31, 22, 0, 0, 0, time.UTC), Input: Input{Type: "back"}},
		{Key: "soon", FireAt: testNow.Add(90 * time.Second), Input: Input{Type: "back"}},
		// Cancelled by leaving a and scheduled again by the transition: both
		// lists hold it and it ends scheduled.
		{Key: "s", FireAt: testNow.Add(5 * time.Minute), Input: Input{Type: "go"}},
	}, dec.Timers)
	require.Equal(t, []string{"s"}, dec.CancelTimers)

	dec, err = Decide(d, testWF, st("a", `{}`), in("tick", `{"n": 1}`), testNow)
	require.NoError(t, err)
	require.Empty(t, dec.Timers)
	require.Equal(t, []string{"remind", "deadline"}, dec.CancelTimers)

	dec, err = Decide(d, testWF, st("b", `{}`), in("back", ""), testNow)
	require.NoError(t, err)
	require.Equal(t, []string{"remind", "soon"}, dec.CancelTimers)
	require.Equal(t, []Timer{{Key: "s", FireAt: testNow.Add(time.Minute), Input: Input{Type: "go"}}}, dec.Timers)

	_, err = Decide(d, testWF, st("a", `{}`), in("go", `{"deadline": "tomorrow"}`), testNow)
	requireEval(t, err, "/states/a/on/go/timers/1/at", "timestamp")
}

func TestDecideEventDataAndEffects(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `{"initial_state": "a",
		"inputs": {"go": {}, "calc": {}, "null": {}, "plain": {}},
		"states": {"a": {"on": {
			"go": {"effects": [{"name": "notify"}, {"name": "audit", "payload": "{'who': workflow.id, 'type': workflow.type, 'state': state.name, 'input': input.type, 'at': now}"}]},
			"calc": {"event": "Calculated", "data": "{'count': state.data.count + 1.0, 'half': input.data.v / 2.0, 'nested': {'list': [1, 'x', true, null]}, 'drop': null}"},
			"null": {"data": "null", "effects": [{"name": "e"}]},
			"plain": {"data": "input.data"}}}}}`)

	dec, err := Decide(d, testWF, st("a", `{"count": 1}`), in("go", `{"big": 12345678901234567890, "s": "<&>"}`), testNow)
	require.NoError(t, err)
	require.Equal(t, "go", dec.Event.Type, "the event defaults to the input type")
	require.Equal(t, "go", dec.Event.InputType)
	require.Equal(t, `{"big":12345678901234567890,"s":"<&>"}`, string(dec.Event.Data), "the input data is copied exactly")
	require.Equal(t, []Effect{
		{Name: "notify", Payload: dec.Event.Data},
		{Name: "audit", Payload: json.RawMessage(`{"at":"2026-03-01T12:00:00Z","input":"go","state":"a","type":"flow","who":"f-1"}`)},
	}, dec.Effects)

	dec, err = Decide(d, testWF, st("a", `{"count": 1, "drop": "me"}`), in("calc", `{"v": 5}`), testNow)
	require.NoError(t, err)
	require.Equal(t, "Calculated", dec.Event.Type)
	require.Equal(t, `{"count":2,"drop":null,"half":2.5,"nested":{"list":[1,"x",true,null]}}`, string(dec.Event.Data))
	require.Equal(t, `{"count":2,"half":2.5,"nested":{"list":[1,"x",true,null]}}`, string(dec.NewState.Data))

	dec, err = Decide(d, testWF, st("a", `{"k": 1}`), in("null", ""), testNow)
	require.NoError(t, err)
	require.Equal(t, `{}`, string(dec.Event.Data))
	require.Equal(t, `{}`, string(dec.Effects[0].Payload))
	require.Equal(t, `{"k":1}`, string(dec.NewState.Data))

	dec, err = Decide(d, testWF, st("a", `{}`), in("go", `null`), testNow)
	require.NoError(t, err)
	require.Equal(t, `{}`, string(dec.Event.Data), "null input data records {}")

	_, err = Decide(d, testWF, st("a", `{}`), in("go", `[1]`), testNow)
	require.ErrorIs(t, err, ErrInvalidInput, "default event data must be an object")

	_, err = Decide(d, testWF, st("a", `{}`), in("plain", `"text"`), testNow)
	requireEval(t, err, "/states/a/on/plain/data", "must evaluate to a map, not string")
}

func TestDecideNumbers(t *testing.T) {
	t.Parallel()
	d := mustParse(t, withStates(`{"a": {"on": {"tick": [
		{"if": "input.data.n >= state.data.total && input.data.n == 40 && input.data.n < 40.5", "event": "Enough"},
		{"if": "int(input.data.n) + 1 == 40", "event": "Int"},
		{"event": "Other"}]}}}`))
	tests := []struct{ n, event string }{{"40", "Enough"}, {"40.0", "Enough"}, {"4e1", "Enough"}, {"39", "Int"}, {"12", "Other"}}
	for _, tt := range tests {
		t.Run(tt.n, func(t *testing.T) {
			t.Parallel()
			dec, err := Decide(d, testWF, st("a", `{"total": 40}`), in("tick", `{"n": `+tt.n+`}`), testNow)
			require.NoError(t, err)
			require.Equal(t, tt.event, dec.Event.Type)
		})
	}
}

func TestDecideCELResults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr, want, err string
	}{
		{"timestamp", "{'t': timestamp('2026-01-02T03:04:05.5+01:00')}", `{"t":"2026-01-02T02:04:05.5Z"}`, ""},
		{"duration", "{'d': duration('90m')}", `{"d":"1h30m0s"}`, ""},
		{"bytes", "{'b': b'hi'}", `{"b":"aGk="}`, ""},
		{"int keys", "{'m': {1: 'one', 2: 'two'}}", `{"m":{"1":"one","2":"two"}}`, ""},
		{"uint", "{'u': 7u}", `{"u":7}`, ""},
		{"optional none", "{'o': input.data.?missing}", `{"o":null}`, ""},
		{"optional value", "{'o': input.data.?x}", `{"o":1}`, ""},
		{"list of maps", "{'l': [{'a': 1}, {'b': [2.5]}]}", `{"l":[{"a":1},{"b":[2.5]}]}`, ""},
		{"NaN", "{'x': 0.0 / 0.0}", "", "JSON cannot represent"},
		{"type value", "{'x': type(1)}", "", "cannot be turned into JSON"},
		{"missing key", "{'x': input.data.nope}", "", "no such key"},
		{"dyn not a map", "input.data.x", "", "must evaluate to a map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, err := json.Marshal(map[string]any{
				"initial_state": "a", "inputs": map[string]any{"go": map[string]any{}},
				"states": map[string]any{"a": map[string]any{"on": map[string]any{"go": map[string]any{"data": tt.expr}}}},
			})
			require.NoError(t, err)
			d := mustParse(t, string(body))
			dec, err := Decide(d, testWF, st("a", `{}`), in("go", `{"x": 1}`), testNow)
			if tt.err != "" {
				requireEval(t, err, "/states/a/on/go/data", tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, string(dec.Event.Data))
		})
	}
}

func TestDecideEvaluationErrors(t *testing.T) {
	t.Parallel()
	d := mustParse(t, withStates(`{"a": {"on": {
		"go": [{"if": "input.data.missing > 1", "to": "a"}],
		"back": [{"if": "input.data.s", "to": "a"}],
		"tick": {"effects": [{"name": "e", "payload": "{'x': state.data.nope}"}]}}}}`))
	tests := []struct {
		name, input, data, path, msg string
	}{
		{"missing field in if", "go", `{}`, "/states/a/on/go/0/if", "no such key"},
		{"dyn if not a bool", "back", `{"s": "yes"}`, "/states/a/on/back/0/if", "must evaluate to a bool, not string"},
		{"payload", "tick", `{"n": 1}`, "/states/a/on/tick/effects/0/payload", "no such key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decide(d, testWF, st("a", `{}`), in(tt.input, tt.data), testNow)
			requireEval(t, err, tt.path, tt.msg)
		})
	}
}

func TestDecideCostLimit(t *testing.T) {
	t.Parallel()
	d := mustParse(t, withStates(`{"a": {"on": {"go": [{"if": "input.data.l.all(x, input.data.l.all(y, input.data.l.all(z, x + y + z != -1.0)))"}]}}}`))
	list := "[" + strings.TrimSuffix(strings.Repeat("1,", 2000), ",") + "]"
	start := time.Now()
	_, err := Decide(d, testWF, st("a", `{}`), in("go", `{"l": `+list+`}`), testNow)
	requireEval(t, err, "/states/a/on/go/0/if", "cost limit")
	// Unlimited, the expression compares 8·10⁹ sums: hours. Stopped by the limit it
	// takes well under a second alone, and took 14 s under the race detector beside
	// two other suites on two cores; a minute tells the two apart on any machine.
	require.Less(t, time.Since(start), time.Minute)
}

func TestDecideTotalCostLimit(t *testing.T) {
	t.Parallel()
	payload := `{"name": "e", "payload": "{'x': input.data.l.all(x, input.data.l.all(y, x + y != -1.0))}"}`
	d := mustParse(t, withStates(`{"a": {"on": {"go": {"effects": [`+strings.Repeat(payload+",", 7)+payload+`]}}}}`))
	list := "[" + strings.TrimSuffix(strings.Repeat("1,", 100), ",") + "]"
	_, err := Decide(d, testWF, st("a", `{}`), in("go", `{"l": `+list+`}`), testNow)
	require.ErrorIs(t, err, ErrEvaluation)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Contains(t, ve.Errors[0].Message, "total cost limit")
	require.NotEqual(t, "/states/a/on/go/effects/0/payload", ve.Errors[0].Path, "one expression alone is within its limit")
}

func TestDecideBadArguments(t *testing.T) {
	t.Parallel()
	d := orderDefinition(t)
	wf := Ref{Type: "order", ID: "o-1"}
	tests := []struct {
		name  string
		state State
		input Input
		is    error
		paths []string
	}{
		{"undeclared input", st("new", `{}`), in("refund", `{}`), ErrUnknownInput, nil},
		{"data fails schema", st("new", `{}`), in("place", `{"total": 1}`), ErrInvalidInput, []string{"/data"}},
		{"data not JSON", st("new", `{}`), in("place", `{"total": `), ErrInvalidInput, []string{"/data"}},
		{"number out of range", st("new", `{}`), in("place", `{"total": 1e999, "order_ref": "x"}`), ErrInvalidInput, []string{"/data/total"}},
		{"unknown state", st("lost", `{}`), in("pay", `{"amount": 1}`), ErrInvalidState, nil},
		{"state data not an object", st("awaiting_payment", `[]`), in("pay", `{"amount": 1}`), ErrInvalidState, nil},
		{"state data not JSON", st("awaiting_payment", `{`), in("pay", `{"amount": 1}`), ErrInvalidState, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decide(d, wf, tt.state, tt.input, testNow)
			require.ErrorIs(t, err, tt.is)
			if tt.paths != nil {
				var ve *ValidationError
				require.ErrorAs(t, err, &ve)
				var paths []string
				for _, fe := range ve.Errors {
					paths = append(paths, fe.Path)
				}
				require.Equal(t, tt.paths, paths)
			}
		})
	}
	_, err := Decide(nil, wf, st("new", `{}`), in("place", `{}`), testNow)
	require.ErrorIs(t, err, ErrInvalidDefinition)
	_, err = DecideNew(nil, wf, in("place", `{}`), testNow)
	require.ErrorIs(t, err, ErrInvalidDefinition)
}

func TestValidateInput(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `{"initial_state": "a", "states": {"a": {}}, "inputs": {
		"free": {},
		"pay": {"schema": {"type": "object", "required": ["amount"], "additionalProperties": false,
			"properties": {"amount": {"type": "number", "minimum": 0}, "email": {"type": "string", "format": "email"},
				"items": {"type": "array", "items": {"type": "object", "required": ["sku"]}}}}}}}`)
	tests := []struct {
		name  string
		input Input
		paths []string
	}{
		{"valid", in("pay", `{"amount": 3}`), nil},
		{"anything goes without schema", in("free", `[1, "x"]`), nil},
		{"empty data is {}", in("free", ""), nil},
		{"missing required", in("pay", ""), []string{"/data"}},
		{"wrong type", in("pay", `{"amount": "3"}`), []string{"/data/amount"}},
		{"several errors", in("pay", `{"amount": -1, "email": "nope", "extra": 1, "items": [{"sku": 1}, {}]}`),
			[]string{"/data", "/data/amount", "/data/email", "/data/items/1"}},
		{"null data", in("pay", `null`), []string{"/data"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := d.ValidateInput(tt.input)
			if tt.paths == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidInput)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			var paths []string
			for _, fe := range ve.Errors {
				require.NotEmpty(t, fe.Message)
				paths = append(paths, fe.Path)
			}
			require.Equal(t, tt.paths, paths, "%v", ve.Errors)
		})
	}
	err := d.ValidateInput(in("refund", ""))
	require.ErrorIs(t, err, ErrUnknownInput)
	require.False(t, errors.As(err, new(*ValidationError)))
}

func TestUniqueKey(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `{"initial_state": "a", "inputs": {"go": {}},
		"unique_key": "has(input.data.ref) ? workflow.type + ':' + state.name + ':' + input.data.ref : (has(input.data.none) ? null : input.data.other)",
		"states": {"a": {}}}`)
	tests := []struct {
		name, data, key string
		ok              bool
		err             string
	}{
		{"key", `{"ref": "r1"}`, "flow:a:r1", true, ""},
		{"null opts out", `{"none": 1}`, "", false, ""},
		{"empty opts out", `{"other": ""}`, "", false, ""},
		{"eval error", `{}`, "", false, "no such key"},
		{"wrong type", `{"other": 1}`, "", false, "must evaluate to a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, ok, err := d.UniqueKey(testWF, in("go", tt.data), testNow)
			if tt.err != "" {
				requireEval(t, err, "/unique_key", tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.key, key)
		})
	}
	_, _, err := d.UniqueKey(testWF, in("nope", ""), testNow)
	require.ErrorIs(t, err, ErrUnknownInput)

	none := mustParse(t, `{"initial_state": "a", "states": {"a": {}}}`)
	require.False(t, none.HasUniqueKey())
	key, ok, err := none.UniqueKey(testWF, in("go", ""), testNow)
	require.NoError(t, err)
	require.False(t, ok)
	require.Empty(t, key)
}

func TestDecideDeterministic(t *testing.T) {
	t.Parallel()
	d := mustParse(t, withStates(`{
		"a": {"timers": [{"key": "x", "after": "1s", "input": {"type": "back"}}], "on": {"go": {"to": "b",
			"data": "{'m': {'z': 1, 'a': 2, 'k': [3, {'q': 4, 'b': 5}]}, 'at': now, 'id': workflow.id}",
			"effects": [{"name": "e1", "payload": "{'z': 1, 'y': state.data, 'x': input.data}"}, {"name": "e2"}],
			"timers": [{"key": "t3", "after": "3s", "input": {"type": "go"}}, {"key": "t1", "after": "1s", "input": {"type": "go"}}]}}},
		"b": {"timers": [{"key": "t2", "after": "2s", "input": {"type": "back"}}], "on": {"back": {"to": "a"}}}}`))
	state := st("a", `{"p": {"c": 1, "b": 2, "a": 3}, "o": [3, 2, 1]}`)
	input := in("go", `{"w": 1, "v": {"u": 2, "t": 3}}`)
	first, err := Decide(d, testWF, state, input, testNow)
	require.NoError(t, err)
	for range 50 {
		again, err := Decide(d, testWF, state, input, testNow)
		require.NoError(t, err)
		require.Equal(t, first, again)
	}
}

func TestDecideConcurrent(t *testing.T) {
	t.Parallel()
	d := orderDefinition(t)
	type result struct {
		dec Decision
		err error
	}
	results := make(chan result)
	for i := range 8 {
		go func() {
			amount := []string{"39", "41"}[i%2]
			dec, err := Decide(d, Ref{Type: "order", ID: "o"}, st("awaiting_payment", `{"total": 40}`), in("pay", `{"amount": `+amount+`}`), testNow)
			results <- result{dec, err}
		}()
	}
	accepted := 0
	for range 8 {
		r := <-results
		require.NoError(t, r.err)
		if r.dec.Accepted {
			accepted++
		}
	}
	require.Equal(t, 4, accepted)
}

func TestDecideTerminalFailed(t *testing.T) {
	t.Parallel()
	d, err := Parse("transfer", []byte(`{"initial_state": "a", "inputs": {"go": {}, "ok": {}},
		"states": {"a": {"on": {"go": {"to": "lost"}, "ok": {"to": "done"}}}, "lost": {"terminal": "failed"}, "done": {"terminal": true}}}`))
	require.NoError(t, err)
	require.Equal(t, EndFailed, d.EndStatus("lost"))
	require.Equal(t, EndCompleted, d.EndStatus("done"))
	require.Empty(t, d.EndStatus("a"))
	dec, err := DecideNew(d, Ref{Type: "transfer", ID: "t"}, Input{Type: "go"}, time.Unix(0, 0))
	require.NoError(t, err)
	require.True(t, dec.Completed)
	require.True(t, dec.Failed)
	dec, err = DecideNew(d, Ref{Type: "transfer", ID: "t"}, Input{Type: "ok"}, time.Unix(0, 0))
	require.NoError(t, err)
	require.True(t, dec.Completed)
	require.False(t, dec.Failed)
}
