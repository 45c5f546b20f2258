package workflow

import (
	"encoding/json"

	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fanDefinition has inputs place ({items: [...]}) and remind ({sku}), and state
// a whose place transition is the given transition object.
func fanDefinition(transition string) string {
	return `{"initial_state": "a",
		"inputs": {"place": {}, "remind": {"schema": {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}}}}},
		"states": {"a": {"on": {"place": ` + transition + `, "remind": {}}}}}`
}

func TestForEachEffects(t *testing.T) {
	t.Parallel()
	d := mustParse(t, fanDefinition(`{"effects": [
		{"name": "reserve", "for_each": "input.data.items", "key": "item.sku", "payload": "{'sku': item.sku, 'n': index, 'order': input.data.ref}"},
		{"name": "notify", "for_each": "input.data.items"},
		{"name": "audit"}]}`))
	dec, err := DecideNew(d, testWF, in("place", `{"ref": "o-1", "items": [{"sku": "s-1"}, {"sku": "s-2"}]}`), testNow)
	require.NoError(t, err)
	event := `{"ref":"o-1","items":[{"sku":"s-1"},{"sku":"s-2"}]}`
	require.Equal(t, []Effect{
		{Name: "reserve", Key: "s-1", Payload: json.RawMessage(`{"n":0,"order":"o-1","sku":"s-1"}`)},
		{Name: "reserve", Key: "s-2", Payload: json.RawMessage(`{"n":1,"order":"o-1","sku":"s-2"}`)},
		{Name: "notify", Key: "0", Payload: json.RawMessage(event)},
		{Name: "notify", Key: "1", Payload: json.RawMessage(event)},
		{Name: "audit", Payload: json.RawMessage(event)},
	}, dec.Effects)

	// An empty list emits nothing.
	dec, err = DecideNew(d, testWF, in("place", `{"ref": "o-1", "items": []}`), testNow)
	require.NoError(t, err)
	require.Equal(t, []Effect{{Name: "audit", Payload: json.RawMessage(`{"ref":"o-1","items":[]}`)}}, dec.Effects)

	// Keys are unique per effect name within the transition.
	_, err = DecideNew(d, testWF, in("place", `{"ref": "o-1", "items": [{"sku": "s-1"}, {"sku": "s-1"}]}`), testNow)
	requireEval(t, err, "/states/a/on/place/effects/0/key", `element 1 gives the key "s-1"`)
	d2 := mustParse(t, fanDefinition(`{"effects": [{"name": "e", "for_each": "input.data.items"}, {"name": "e", "for_each": "input.data.items"}]}`))
	_, err = DecideNew(d2, testWF, in("place", `{"items": [1]}`), testNow)
	requireEval(t, err, "/states/a/on/place/effects/1/for_each", `key "0"`)

	// A key that is empty, and a list that is not one at decide time, fail with their paths.
	_, err = DecideNew(d, testWF, in("place", `{"ref": "o-1", "items": [{"sku": ""}]}`), testNow)
	requireEval(t, err, "/states/a/on/place/effects/0/key", "empty key")
	_, err = DecideNew(d, testWF, in("place", `{"ref": "o-1", "items": {"sku": "s"}}`), testNow)
	requireEval(t, err, "/states/a/on/place/effects/0/for_each", "must evaluate to a list")
}

func TestForEachTimers(t *testing.T) {
	t.Parallel()
	d := mustParse(t, fanDefinition(`{"timers": [
		{"key": "all", "after": "1h", "input": {"type": "remind", "data": {"sku": "*"}}},
		{"for_each": "input.data.items", "key": "'remind_' + string(item.sku)", "at": "now + duration(item.wait)",
		 "input": {"type": "remind", "data": "{'sku': item.sku}"}},
		{"for_each": "input.data.items", "key": "'late_' + string(index)", "after": "P1D", "input": {"type": "remind", "data": {"sku": "late"}}}]}`))
	dec, err := DecideNew(d, testWF, in("place", `{"items": [{"sku": "s-1", "wait": "10m"}, {"sku": "s-2", "wait": "20m"}]}`), testNow)
	require.NoError(t, err)
	require.Equal(t, []Timer{
		{Key: "all", FireAt: testNow.Add(time.Hour), Input: Input{Type: "remind", Data: json.RawMessage(`{"sku":"*"}`)}},
		{Key: "remind_s-1", FireAt: testNow.Add(10 * time.Minute), Input: Input{Type: "remind", Data: json.RawMessage(`{"sku":"s-1"}`)}},
		{Key: "remind_s-2", FireAt: testNow.Add(20 * time.Minute), Input: Input{Type: "remind", Data: json.RawMessage(`{"sku":"s-2"}`)}},
		{Key: "late_0", FireAt: testNow.Add(24 * time.Hour), Input: Input{Type: "remind", Data: json.RawMessage(`{"sku":"late"}`)}},
		{Key: "late_1", FireAt: testNow.Add(24 * time.Hour), Input: Input{Type: "remind", Data: json.RawMessage(`{"sku":"late"}`)}},
	}, dec.Timers)

	// Keys are unique within the transition, static keys included.
	_, err = DecideNew(d, testWF, in("place", `{"items": [{"sku": "s", "wait": "1m"}, {"sku": "s", "wait": "2m"}]}`), testNow)
	requireEval(t, err, "/states/a/on/place/timers/1/key", `element 1 gives the key "remind_s"`)
	d2 := mustParse(t, fanDefinition(`{"timers": [{"key": "all", "after": "1h", "input": {"type": "remind", "data": {"sku": "*"}}},
		{"for_each": "input.data.items", "key": "item", "after": "1m", "input": {"type": "remind", "data": {"sku": "x"}}}]}`))
	_, err = DecideNew(d2, testWF, in("place", `{"items": ["all"]}`), testNow)
	requireEval(t, err, "/states/a/on/place/timers/1/key", "already has")
	for _, bad := range []string{`""`, `"deliver:x"`, `"a\nb"`, `"` + strings.Repeat("k", 201) + `"`} {
		_, err = DecideNew(d2, testWF, in("place", `{"items": [`+bad+`]}`), testNow)
		requireEval(t, err, "/states/a/on/place/timers/1/key", "element 0 gives the key")
	}

	// Data computed per element is checked against the input's schema when it is
	// scheduled, since it could not be at PUT.
	_, err = DecideNew(d, testWF, in("place", `{"items": [{"sku": 7, "wait": "1m"}]}`), testNow)
	require.ErrorIs(t, err, ErrEvaluation)
	require.ErrorContains(t, err, "/states/a/on/place/timers/1/input/data/sku")
}

// TestCancelComputedKeys: a cancel_timers entry {"key": "<CEL>"} cancels a timer a
// for_each scheduled.
func TestCancelComputedKeys(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `{"initial_state": "a", "inputs": {"place": {}, "got": {}},
		"states": {"a": {"on": {
			"place": {"timers": [{"for_each": "input.data.items", "key": "'remind_' + item", "after": "1h", "input": {"type": "got"}}]},
			"got": {"cancel_timers": [{"key": "'remind_' + input.data.sku"}, {"key": "input.data.?also.orValue('remind_x')"}]}}}}}`)
	dec, err := Decide(d, testWF, st("a", `{}`), in("got", `{"sku": "s-1"}`), testNow)
	require.NoError(t, err)
	require.Equal(t, []string{"remind_s-1", "remind_x"}, dec.CancelTimers)
	_, err = Decide(d, testWF, st("a", `{}`), in("got", `{"sku": "s-1", "also": "deliver:1"}`), testNow)
	requireEval(t, err, "/states/a/on/got/cancel_timers/1/key", `the key "deliver:1"`)
	require.Contains(t, d.Mermaid(), "cancel 'remind_' + input.data.sku")

	requireParseErrors(t, `{"initial_state": "a", "inputs": {"got": {}}, "states": {"a": {"on": {"got": {"cancel_timers": [{"key": "1"}, {"name": "x"}, {}]}}}}}`,
		"must evaluate to a string, not int",
		"/states/a/on/got/cancel_timers/0/key", "/states/a/on/got/cancel_timers/1/name", "/states/a/on/got/cancel_timers/1/key",
		"/states/a/on/got/cancel_timers/2/key")
}

func TestForEachLimits(t *testing.T) {
	t.Parallel()
	body := fanDefinition(`{"effects": [{"name": "e", "for_each": "input.data.items"}],
		"timers": [{"for_each": "input.data.items", "key": "'t' + string(index)", "after": "1m", "input": {"type": "remind", "data": {"sku": "x"}}}]}`)
	d, err := ParseWithLimits("flow", []byte(body), Limits{MaxForEach: 5})
	require.NoError(t, err)
	items := func(n int) string {
		return `{"items": [` + strings.TrimSuffix(strings.Repeat("0,", n), ",") + `]}`
	}
	dec, err := DecideNew(d, testWF, in("place", items(2)), testNow)
	require.NoError(t, err)
	require.Len(t, dec.Effects, 2)
	require.Len(t, dec.Timers, 2)

	// The cap counts every for_each of the transition together.
	_, err = DecideNew(d, testWF, in("place", items(3)), testNow)
	require.ErrorIs(t, err, ErrTooLarge)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "/states/a/on/place/timers/0/for_each", ve.Errors[0].Path)
	require.Contains(t, ve.Errors[0].Message, "more than 5, the limit")
	_, err = DecideNew(d, testWF, in("place", items(6)), testNow)
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "/states/a/on/place/effects/0/for_each", ve.Errors[0].Path)

	// The default is DefaultMaxForEach.
	d = mustParse(t, body)
	_, err = DecideNew(d, testWF, in("place", items(DefaultMaxForEach/2)), testNow)
	require.NoError(t, err)
	_, err = DecideNew(d, testWF, in("place", items(DefaultMaxForEach/2+1)), testNow)
	require.ErrorIs(t, err, ErrTooLarge)

	// A thousand copies of a large value are refused before they are all built.
	d, err = ParseWithLimits("flow", []byte(fanDefinition(`{"effects": [{"name": "e", "for_each": "input.data.items", "payload": "{'big': input.data.big}"}]}`)),
		Limits{MaxDataBytes: 64 << 10})
	require.NoError(t, err)
	big := strings.Repeat("x", 60<<10)
	_, err = DecideNew(d, testWF, in("place", `{"big": "`+big+`", "items": [`+strings.TrimSuffix(strings.Repeat("0,", 18), ",")+`]}`), testNow)
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, "together")
	_, err = DecideNew(d, testWF, in("place", `{"big": "`+big+`", "items": [`+strings.TrimSuffix(strings.Repeat("0,", 15), ",")+`]}`), testNow)
	require.NoError(t, err)
}

func TestForEachParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, transition, msg string
		paths                 []string
	}{
		{"effect for_each not a list", `{"effects": [{"name": "e", "for_each": "input.data.items.size()"}]}`,
			"must evaluate to a list, not int", []string{"/states/a/on/place/effects/0/for_each"}},
		{"effect for_each a map", `{"effects": [{"name": "e", "for_each": "{'a': 1}"}]}`,
			"must evaluate to a list", []string{"/states/a/on/place/effects/0/for_each"}},
		{"timer for_each not a list", `{"timers": [{"for_each": "'abc'", "key": "item", "after": "1m", "input": {"type": "remind", "data": {"sku": "x"}}}]}`,
			"must evaluate to a list, not string", []string{"/states/a/on/place/timers/0/for_each"}},
		{"item outside for_each", `{"effects": [{"name": "e", "payload": "{'x': item}"}]}`,
			"undeclared reference to 'item'", []string{"/states/a/on/place/effects/0/payload"}},
		{"key without for_each", `{"effects": [{"name": "e", "key": "'k'"}]}`,
			"has no for_each", []string{"/states/a/on/place/effects/0/key"}},
		{"key not a string", `{"effects": [{"name": "e", "for_each": "[1]", "key": "index"}]}`,
			"must evaluate to a string, not int", []string{"/states/a/on/place/effects/0/key"}},
		{"timer key expression wrong", `{"timers": [{"for_each": "[1]", "key": "index", "after": "1m", "input": {"type": "remind", "data": {"sku": "x"}}}]}`,
			"must evaluate to a string", []string{"/states/a/on/place/timers/0/key"}},
		{"timer data expression wrong", `{"timers": [{"for_each": "[1]", "key": "string(index)", "after": "1m", "input": {"type": "remind", "data": "[item]"}}]}`,
			"must evaluate to a map", []string{"/states/a/on/place/timers/0/input/data"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireParseErrors(t, fanDefinition(tt.transition), tt.msg, tt.paths...)
		})
	}
	// State timers are armed once per entry: no for_each there.
	requireParseErrors(t, `{"initial_state": "a", "inputs": {"go": {}}, "states": {"a": {
		"timers": [{"for_each": "[1]", "key": "'k'", "after": "1m", "input": {"type": "go"}}]}}}`,
		"only allowed on a transition's timers", "/states/a/timers/0/for_each", "/states/a/timers/0/key")
}

func TestDiagramForEach(t *testing.T) {
	t.Parallel()
	d := mustParse(t, fanDefinition(`{"effects": [{"name": "reserve", "for_each": "input.data.items", "key": "item.sku"}],
		"timers": [{"for_each": "input.data.items", "key": "'remind_' + item.sku", "after": "1h", "input": {"type": "remind", "data": "{'sku': item.sku}"}}]}`))
	require.Contains(t, d.Mermaid(), "    a --> a: place / place effect reserve for each input.data.items timer 'remind_' + item.sku 1h → remind for each input.data.items\n")
	require.Contains(t, d.DOT(), `effect reserve for each input.data.items\ntimer 'remind_' + item.sku 1h → remind for each input.data.items"`)
}
