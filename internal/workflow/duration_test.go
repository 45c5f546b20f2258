package workflow

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	good := []struct {
		in   string
		want time.Duration
	}{
		{"90s", 90 * time.Second},
		{"1h30m", 90 * time.Minute},
		{"1.5s", 1500 * time.Millisecond},
		{"PT90S", 90 * time.Second},
		{"P30D", 30 * day},
		{"P1DT2H", day + 2*time.Hour},
		{"P2W", 14 * day},
		{"P1W2D", 9 * day},
		{"PT1M", time.Minute},
		{"PT1H2M3S", time.Hour + 2*time.Minute + 3*time.Second},
		{"PT0.5S", 500 * time.Millisecond},
		{"PT1,25S", 1250 * time.Millisecond},
		{"PT0.000000001S", time.Nanosecond},
		{"P0D", 0},
		{"PT36H", 36 * time.Hour},
	}
	for _, tt := range good {
		got, err := ParseDuration(tt.in)
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
	bad := []struct{ in, msg string }{
		{"P", "no parts"},
		{"PT", "must be followed"},
		{"P1", "no designator"},
		{"P1H", "not a date designator"},
		{"PT1D", "not a time designator"},
		{"P1D1W", "out of order"},
		{"P1D2D", "out of order"},
		{"PT1H1H", "out of order"},
		{"P1.5D", "only seconds"},
		{"PT1.5M", "only seconds"},
		{"PT1.S", "one to nine digits"},
		{"PT0.1234567891S", "one to nine digits"},
		{"P1DT", "must be followed"},
		{"PTT1S", "T appears twice"},
		{"P-1D", "expected a number"},
		{"P999999999999999W", "too large"},
		{"P200000W", "292 years"},
		{"30 minutes", "invalid duration"},
		{"p1d", "invalid duration"},
	}
	for _, tt := range bad {
		_, err := ParseDuration(tt.in)
		require.Error(t, err, tt.in)
		require.Contains(t, err.Error(), tt.msg, tt.in)
		require.False(t, errors.Is(err, ErrCalendarDuration), tt.in)
	}
	for _, s := range []string{"P1M", "P1Y", "P1Y2M3DT4H", "P0Y1D"} {
		_, err := ParseDuration(s)
		if s == "P0Y1D" {
			// Zero years add nothing: the duration is fixed.
			require.NoError(t, err)
			continue
		}
		require.ErrorIs(t, err, ErrCalendarDuration, s)
		require.Contains(t, err.Error(), "add_calendar(now, '"+s+"')")
	}
}

func TestAddCalendar(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return v
	}
	tests := []struct{ from, dur, want string }{
		{"2026-01-31T10:00:00Z", "P1M", "2026-02-28T10:00:00Z"},
		{"2028-01-31T10:00:00Z", "P1M", "2028-02-29T10:00:00Z"},
		{"2026-01-30T10:00:00Z", "P1M", "2026-02-28T10:00:00Z"},
		{"2026-03-31T00:00:00Z", "P1M", "2026-04-30T00:00:00Z"},
		{"2026-01-15T08:30:00Z", "P1M", "2026-02-15T08:30:00Z"},
		{"2026-11-30T00:00:00Z", "P3M", "2027-02-28T00:00:00Z"},
		{"2028-02-29T00:00:00Z", "P1Y", "2029-02-28T00:00:00Z"},
		{"2026-12-31T23:00:00Z", "P1Y1M", "2028-01-31T23:00:00Z"},
		// Months first, then the fixed part: Jan 31 + 1 month is Feb 28, then a day.
		{"2026-01-31T00:00:00Z", "P1M1D", "2026-03-01T00:00:00Z"},
		{"2026-01-31T00:00:00Z", "P1MT12H", "2026-02-28T12:00:00Z"},
		{"2026-01-31T00:00:00Z", "P30D", "2026-03-02T00:00:00Z"},
		{"2026-01-31T00:00:00.25Z", "PT0.5S", "2026-01-31T00:00:00.75Z"},
	}
	for _, tt := range tests {
		d, err := parseCalendarArg(tt.dur)
		require.NoError(t, err)
		got, err := addCalendar(at(tt.from), d)
		require.NoError(t, err)
		require.Equal(t, at(tt.want), got, "%s + %s", tt.from, tt.dur)
	}
	d, err := parseCalendarArg("P9000Y")
	require.NoError(t, err)
	_, err = addCalendar(at("2026-01-01T00:00:00Z"), d)
	require.ErrorContains(t, err, "outside the years 1 to 9999")
	_, err = parseCalendarArg("30d")
	require.ErrorContains(t, err, "not an ISO 8601 duration")
}

// TestISODurationsInDefinitions checks a timer's after in ISO 8601, the 422 for
// months in a fixed duration, and add_calendar in an at expression: checked at
// PUT when its duration is a literal, evaluated in UTC at decide time.
func TestISODurationsInDefinitions(t *testing.T) {
	t.Parallel()
	d := mustParse(t, withStates(`{"a": {"timers": [{"key": "t", "after": "P1DT2H", "input": {"type": "go"}}],
		"on": {"go": {"timers": [
			{"key": "renew", "at": "add_calendar(now, 'P1M')", "input": {"type": "go"}},
			{"key": "custom", "at": "add_calendar(timestamp(input.data.from), input.data.period)", "input": {"type": "back"}}]}}}}`))
	dec, err := DecideNew(d, testWF, in("go", `{"from": "2026-01-31T09:00:00Z", "period": "P1Y1M"}`), time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, []Timer{
		{Key: "renew", FireAt: time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC), Input: Input{Type: "go"}},
		{Key: "custom", FireAt: time.Date(2027, 2, 28, 9, 0, 0, 0, time.UTC), Input: Input{Type: "back"}},
		{Key: "t", FireAt: time.Date(2026, 2, 2, 1, 0, 0, 0, time.UTC), Input: Input{Type: "go"}},
	}, dec.Timers)

	// A duration that only arrives with the input is checked when it arrives.
	_, err = DecideNew(d, testWF, in("go", `{"from": "2026-01-31T09:00:00Z", "period": "P1X"}`), testNow)
	requireEval(t, err, "/states/a/on/go/timers/1/at", "invalid ISO 8601 duration")

	// An effect's retry and timeout go through the same parser.
	d = mustParse(t, withStates(`{"a": {"on": {"go": {"effects": [{"name": "e", "timeout": "PT1.5S",
		"retry": {"max_attempts": 3, "initial_interval": "PT1S", "max_interval": "PT2M"}}]}}}}`))
	dec, err = DecideNew(d, testWF, in("go", ""), testNow)
	require.NoError(t, err)
	require.Equal(t, EffectPolicy{MaxAttempts: 3, InitialInterval: time.Second, MaxInterval: 2 * time.Minute, Timeout: 1500 * time.Millisecond},
		dec.Effects[0].Policy)

	for _, tt := range []struct{ body, path, msg string }{
		{withStates(`{"a": {"on": {"go": {"effects": [{"name": "e", "timeout": "P1M"}]}}}}`),
			"/states/a/on/go/effects/0/timeout", "no fixed length"},
		{withStates(`{"a": {"timers": [{"key": "t", "after": "P1M", "input": {"type": "go"}}]}}`),
			"/states/a/timers/0/after", "use add_calendar(now, 'P1M')"},
		{withStates(`{"a": {"timers": [{"key": "t", "after": "P1Y2D", "input": {"type": "go"}}]}}`),
			"/states/a/timers/0/after", "no fixed length"},
		{withStates(`{"a": {"timers": [{"key": "t", "after": "P1.5D", "input": {"type": "go"}}]}}`),
			"/states/a/timers/0/after", "only seconds"},
		{withStates(`{"a": {"on": {"go": {"timers": [{"key": "t", "at": "add_calendar(now, 'P1X')", "input": {"type": "go"}}]}}}}`),
			"/states/a/on/go/timers/0/at", "invalid ISO 8601 duration"},
		{withStates(`{"a": {"on": {"go": {"timers": [{"key": "t", "at": "add_calendar(now, '30d')", "input": {"type": "go"}}]}}}}`),
			"/states/a/on/go/timers/0/at", "not an ISO 8601 duration"},
		{withStates(`{"a": {"on": {"go": {"timers": [{"key": "t", "at": "add_calendar(now, 1)", "input": {"type": "go"}}]}}}}`),
			"/states/a/on/go/timers/0/at", "no matching overload"},
		{withStates(`{"a": {"on": {"go": {"data": "{'x': add_calendar(now, 'P1M')}", "timers": [{"key": "t", "at": "add_calendar(now, 'P1M') + 1", "input": {"type": "go"}}]}}}}`),
			"/states/a/on/go/timers/0/at", "no matching overload"},
	} {
		_, err := Parse("flow", []byte(tt.body))
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, tt.body)
		require.Len(t, ve.Errors, 1, "%v", ve.Errors)
		require.Equal(t, tt.path, ve.Errors[0].Path)
		require.Contains(t, ve.Errors[0].Message, tt.msg)
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	d := mustParse(t, withStates(`{"a": {"on": {"go": {"data":
		"{'order': merge(state.data.order, input.data.patch), 'lit': merge({'a': {'b': 1, 'c': 2}}, {'a': {'c': null, 'd': {'e': null, 'f': 3}}, 'g': [1]})}"}}}}`))
	dec, err := Decide(d, testWF, st("a", `{"order": {"status": "new", "lines": [1, 2], "meta": {"x": 1, "y": 2}, "drop": true}}`),
		in("go", `{"patch": {"status": "paid", "lines": [3], "meta": {"y": null, "z": 3}, "drop": null, "new": {"deep": null, "k": "v"}}}`), testNow)
	require.NoError(t, err)
	require.JSONEq(t, `{"order": {"status": "paid", "lines": [3], "meta": {"x": 1, "z": 3}, "new": {"k": "v"}},
		"lit": {"a": {"b": 1, "d": {"f": 3}}, "g": [1]}}`, string(dec.Event.Data))

	// The arguments are left as they were.
	d = mustParse(t, withStates(`{"a": {"on": {"go": {"data": "{'m': merge(input.data.a, input.data.b), 'a': input.data.a}"}}}}`))
	dec, err = DecideNew(d, testWF, in("go", `{"a": {"k": {"x": 1}}, "b": {"k": {"x": 2}}}`), testNow)
	require.NoError(t, err)
	require.JSONEq(t, `{"m": {"k": {"x": 2}}, "a": {"k": {"x": 1}}}`, string(dec.Event.Data))

	// Arguments that type-check as dyn but are not maps fail at decide time.
	_, err = DecideNew(d, testWF, in("go", `{"a": [1], "b": {}}`), testNow)
	requireEval(t, err, "/states/a/on/go/data", "no such overload: merge(list, map)")

	_, err = Parse("flow", []byte(withStates(`{"a": {"on": {"go": {"data": "merge({'a': 1}, [1])"}}}}`)))
	require.ErrorContains(t, err, "no matching overload")
}

// TestMergeCostBySize: merge is charged by the size of what it touches, so merging
// big maps again and again stops at the cost limit instead of running for long.
func TestMergeCostBySize(t *testing.T) {
	t.Parallel()
	d, err := Parse("lim", []byte(limitsDefinition("", `{'n': input.data.r.map(i, merge(input.data.m, input.data.m)).size()}`)))
	require.NoError(t, err)
	var m strings.Builder
	m.WriteString("{")
	for i := range 2000 {
		if i > 0 {
			m.WriteString(",")
		}
		b, _ := json.Marshal("key" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + time.Duration(i).String())
		m.Write(b)
		m.WriteString(":1")
	}
	m.WriteString("}")
	r := `[` + strings.TrimSuffix(strings.Repeat("0,", 1000), ",") + `]`
	_, err = DecideNew(d, testWF, in("go", `{"r":`+r+`,"m":`+m.String()+`}`), testNow)
	requireEval(t, err, "/states/s/on/go/data", "cost limit")

	// Small maps are cheap.
	_, err = DecideNew(d, testWF, in("go", `{"r":[0,1,2],"m":{"a":1}}`), testNow)
	require.NoError(t, err)
}
