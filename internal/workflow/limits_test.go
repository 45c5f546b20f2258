package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc, path, msg string
	}{
		{"plain", `{"a":[1,-2.5e10,0,-0.0,5e-324,1.7976931348623157e308,"x",true,null,{}]}`, "", ""},
		{"duplicate key", `{"a":1,"b":{"c":1,"c":2}}`, "/b/c", "duplicate key"},
		{"duplicate key through an escape", `{"a":1,"\u0061":2}`, "/a", "duplicate key"},
		{"same key in sibling objects", `[{"a":1},{"a":2}]`, "", ""},
		{"overflow", `{"n":1e1000001}`, "/n", "outside the range"},
		{"negative overflow", `[0,-1e309]`, "/1", "outside the range"},
		{"underflow", `{"n":1e-400}`, "/n", "outside the range"},
		{"zero with a huge exponent", `{"n":0e99999}`, "/n", "outside the range"},
		{"long literal", `{"n":1` + strings.Repeat("0", 500) + `}`, "/n", "characters long"},
		{"top-level number", `1e999`, "", "outside the range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.True(t, json.Valid([]byte(tt.doc)))
			err := CheckJSON([]byte(tt.doc))
			if tt.msg == "" {
				require.NoError(t, err)
				return
			}
			var je *JSONError
			require.ErrorAs(t, err, &je)
			require.Equal(t, tt.path, je.Path)
			require.Contains(t, je.Message, tt.msg)
		})
	}
}

// limitsDefinition declares one input "go" with the given schema (none when
// empty) and one transition with the given data expression (the input data when
// empty).
func limitsDefinition(schema, data string) string {
	in := `{}`
	if schema != "" {
		in = `{"schema":` + schema + `}`
	}
	tr := `{"to":"s"}`
	if data != "" {
		b, _ := json.Marshal(data)
		tr = `{"to":"s","data":` + string(b) + `}`
	}
	return `{"initial_state":"s","inputs":{"go":` + in + `},"states":{"s":{"on":{"go":` + tr + `}}}}`
}

// refChain is a schema of n $defs levels, each anyOf of two $refs to the next:
// validating a value against it once applied 2^n subschemas.
func refChain(n int) string {
	var defs []string
	for i := range n {
		defs = append(defs, fmt.Sprintf(`"d%d":{"anyOf":[{"$ref":"#/$defs/d%d"},{"$ref":"#/$defs/d%d"}]}`, i, i+1, i+1))
	}
	defs = append(defs, fmt.Sprintf(`"d%d":{"type":"object","minProperties":100}`, n))
	return `{"$ref":"#/$defs/d0","$defs":{` + strings.Join(defs, ",") + `}}`
}

func TestSchemaBounds(t *testing.T) {
	t.Parallel()
	refused := []struct{ name, schema, msg string }{
		{"18 levels of $ref and anyOf", refChain(18), "more than 1000 subschemas"},
		{"allOf of allOf", `{"allOf":[` + strings.Repeat(`{"allOf":[{},{},{},{},{},{},{},{},{},{}]},`, 120) + `{}]}`, "more than 1000"},
		{"recursion", `{"$defs":{"n":{"properties":{"next":{"$ref":"#/$defs/n"}}}},"$ref":"#/$defs/n"}`, "refers back to itself"},
		{"self reference", `{"properties":{"a":{"$ref":"#"}}}`, "refers back to itself"},
		{"dynamic ref", `{"$dynamicAnchor":"x","properties":{"a":{"$dynamicRef":"#x"}}}`, ""},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := Parse("lim", []byte(limitsDefinition(tt.schema, "")))
			require.ErrorIs(t, err, ErrInvalidDefinition)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "/inputs/go/schema", ve.Errors[0].Path)
			require.Contains(t, ve.Errors[0].Message, tt.msg)
			require.Less(t, time.Since(start), 2*time.Second)
		})
	}
	accepted := []string{
		refChain(6),
		`{"oneOf":[` + strings.TrimSuffix(strings.Repeat(`{"type":"object","properties":{"k":{"const":1}},"required":["k"]},`, 20), ",") + `]}`,
		`{"$defs":{"money":{"type":"number","minimum":0}},"properties":{"a":{"$ref":"#/$defs/money"},"b":{"$ref":"#/$defs/money"},"c":{"items":{"$ref":"#/$defs/money"}}}}`,
	}
	for i, schema := range accepted {
		_, err := Parse("lim", []byte(limitsDefinition(schema, "")))
		require.NoError(t, err, "schema %d", i)
	}

	// A schema with a fan-out of about 3·2^6 validates inputs of a few thousand
	// values, and refuses larger ones before validating.
	d, err := Parse("lim", []byte(limitsDefinition(refChain(6), "")))
	require.NoError(t, err)
	small := `{"a":[` + strings.TrimSuffix(strings.Repeat("1,", 100), ",") + `]}`
	_, err = DecideNew(d, testWF, in("go", small), testNow)
	require.ErrorIs(t, err, ErrInvalidInput) // minProperties fails, after validation
	big := `{"a":[` + strings.TrimSuffix(strings.Repeat("1,", 20000), ",") + `]}`
	start := time.Now()
	_, err = DecideNew(d, testWF, in("go", big), testNow)
	require.ErrorIs(t, err, ErrInvalidInput)
	require.Contains(t, err.Error(), "validation is capped")
	require.Less(t, time.Since(start), time.Second)
}

// TestHugeNumbersAgainstMinimum: a number beyond float64 is refused before the
// schema runs; it used to reach minimum as a nil *big.Rat and panic.
func TestHugeNumbersAgainstMinimum(t *testing.T) {
	t.Parallel()
	d, err := Parse("lim", []byte(limitsDefinition(`{"properties":{"n":{"minimum":0}}}`, "")))
	require.NoError(t, err)
	for _, n := range []string{"1e1000001", "-1e999999", "1e-999999"} {
		start := time.Now()
		_, err := DecideNew(d, testWF, in("go", `{"n":`+n+`}`), testNow)
		require.ErrorIs(t, err, ErrInvalidInput, n)
		require.Contains(t, err.Error(), "/data/n: number", n)
		require.Less(t, time.Since(start), 100*time.Millisecond, n)
	}
}

func TestCELCostCountsWhatItTouches(t *testing.T) {
	t.Parallel()
	d, err := Parse("lim", []byte(limitsDefinition("", `{'ok': input.data.r.all(i, input.data.a == input.data.b)}`)))
	require.NoError(t, err)
	list := func(n int, s string) string {
		return `[` + strings.TrimSuffix(strings.Repeat(`"`+s+`",`, n), ",") + `]`
	}
	long := strings.Repeat("x", 1000)
	data := `{"r":` + list(1000, "") + `,"a":` + list(1000, long) + `,"b":` + list(1000, long) + `}`
	start := time.Now()
	_, err = DecideNew(d, testWF, in("go", data), testNow)
	requireEval(t, err, "/states/s/on/go/data", "cost limit")
	require.Less(t, time.Since(start), 5*time.Second, "stopped at the cost limit, not after comparing a thousand lists")

	// Small operands stay cheap.
	_, err = DecideNew(d, testWF, in("go", `{"r":[1,2,3],"a":["x"],"b":["x"]}`), testNow)
	require.NoError(t, err)
}

func TestResultSizeCap(t *testing.T) {
	t.Parallel()
	d, err := ParseWithLimits("lim", []byte(limitsDefinition("", `{'x': input.data.r.map(i, input.data.r.map(j, input.data.s))}`)), Limits{MaxDataBytes: 64 << 10})
	require.NoError(t, err)
	r := `[` + strings.TrimSuffix(strings.Repeat("0,", 60), ",") + `]`
	data := `{"r":` + r + `,"s":"` + strings.Repeat("x", 100_000) + `"}`
	start := time.Now()
	_, err = DecideNew(d, testWF, in("go", data), testNow)
	require.ErrorIs(t, err, ErrTooLarge)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "/states/s/on/go/data", ve.Errors[0].Path)
	require.Less(t, time.Since(start), time.Second)
}

func TestDataAndStateCaps(t *testing.T) {
	t.Parallel()
	d, err := ParseWithLimits("lim", []byte(limitsDefinition("", "")), Limits{MaxDataBytes: 1000})
	require.NoError(t, err)
	_, err = DecideNew(d, testWF, in("go", `{"s":"`+strings.Repeat("x", 1000)+`"}`), testNow)
	require.ErrorIs(t, err, ErrTooLarge)
	require.Contains(t, err.Error(), "/data")

	// Each input fits; the state they add up to does not.
	s := d.InitialState()
	for i := 0; ; i++ {
		dec, err := Decide(d, testWF, s, in("go", fmt.Sprintf(`{"k%d":"%s"}`, i, strings.Repeat("x", 300))), testNow)
		if err != nil {
			require.ErrorIs(t, err, ErrTooLarge)
			require.Contains(t, err.Error(), "/state/data")
			require.Equal(t, 3, i)
			return
		}
		s = dec.NewState
	}
}

func TestDecideContextAbandoned(t *testing.T) {
	t.Parallel()
	d, err := Parse("lim", []byte(limitsDefinition("", `{'n': input.data.r.filter(i, i > 0).size()}`)))
	require.NoError(t, err)
	r := `[` + strings.TrimSuffix(strings.Repeat("1,", 5000), ",") + `]`
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = DecideNewContext(ctx, d, testWF, in("go", `{"r":`+r+`}`), testNow)
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrEvaluation, "an abandoned decision is not the input's fault")

	dec, err := DecideNewContext(context.Background(), d, testWF, in("go", `{"r":`+r+`}`), testNow)
	require.NoError(t, err)
	require.JSONEq(t, `{"n":5000}`, string(dec.Event.Data))
}

// TestDefinitionExpressionBudget: a definition of many long || chains is refused
// after its first 32 KiB of CEL, instead of type-checking a megabyte of it.
func TestDefinitionExpressionBudget(t *testing.T) {
	t.Parallel()
	var terms []string
	for i := 0; len(strings.Join(terms, " || ")) < 3900; i++ {
		terms = append(terms, fmt.Sprintf("input.data.a == %d", i))
	}
	cond := strings.Join(terms, " || ")
	var branches []string
	for range 100 {
		branches = append(branches, `{"if":"`+cond+`","to":"s"}`)
	}
	body := `{"initial_state":"s","inputs":{"go":{}},"states":{"s":{"on":{"go":[` + strings.Join(branches, ",") + `]}}}}`
	_, err := Parse("lim", []byte(body))
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Len(t, ve.Errors, 1)
	require.Equal(t, "/states/s/on/go/8/if", ve.Errors[0].Path)
	require.Contains(t, ve.Errors[0].Message, "add up to more than 32768 bytes")
}

// TestRegexBounded: matches() is charged by its pattern's program, before it runs, so
// a large string against a large pattern fails at once instead of after seconds of
// matching (0.9 s on 100 KB before), a comprehension of middling calls stops at the
// cost limit, and a counted repetition (a{2,5}), which cel-go's own size check
// panicked on, works, literal or from the input.
func TestRegexBounded(t *testing.T) {
	t.Parallel()
	d, err := Parse("lim", []byte(limitsDefinition("", `{'m': input.data.s.matches(input.data.re), 'n': 'aaa'.matches('^a{2,5}$')}`)))
	require.NoError(t, err)
	dec, err := DecideNew(d, testWF, in("go", `{"s":"xaaay","re":"a{2,5}"}`), testNow)
	require.NoError(t, err)
	require.JSONEq(t, `{"m":true,"n":true}`, string(dec.Event.Data))

	big := strings.Repeat("ab", 50_000)
	pattern := "(" + strings.Repeat("(a|b|c|d|e)?", 200) + ")*z"
	data, err := json.Marshal(map[string]string{"s": big, "re": pattern})
	require.NoError(t, err)
	start := time.Now()
	_, err = DecideNew(d, testWF, in("go", string(data)), testNow)
	requireEval(t, err, "/states/s/on/go/data", "over the limit of 100000")
	require.Less(t, time.Since(start), 5*time.Second)

	// Calls each under the limit, in a comprehension, add up to it.
	many, err := Parse("lim", []byte(limitsDefinition("", `{'n': input.data.r.filter(i, input.data.s.matches(input.data.re)).size()}`)))
	require.NoError(t, err)
	data, err = json.Marshal(map[string]any{"s": big[:4000], "re": "[a-e]{0,150}z", "r": make([]int, 90)})
	require.NoError(t, err)
	_, err = DecideNew(many, testWF, in("go", string(data)), testNow)
	requireEval(t, err, "/states/s/on/go/data", "cost limit")

	for _, bad := range []string{`'a'.matches('[')`, `'a'.matches('` + strings.Repeat("(a|b)?", 400) + `')`, `matches('a', 'x{1000}{1000}')`} {
		_, err := Parse("lim", []byte(limitsDefinition("", `{'m': `+bad+`}`)))
		require.ErrorIs(t, err, ErrInvalidDefinition, bad)
	}
}

// TestRegexRefusalsAreCheap: a pattern whose repetitions expand to a million
// instructions is refused without being expanded, and refused calls in a macro (which
// goes on after an error) are charged, so they end at the cost limit.
func TestRegexRefusalsAreCheap(t *testing.T) {
	t.Parallel()
	_, err := Parse("lim", []byte(limitsDefinition("", `{'m': 'a'.matches('(a{1000}){1000}')}`)))
	require.ErrorIs(t, err, ErrInvalidDefinition)
	d, err := Parse("lim", []byte(limitsDefinition("", `{'m': input.data.r.map(i, 'a'.matches(input.data.p + string(i)))}`)))
	require.NoError(t, err)
	data, err := json.Marshal(map[string]any{"p": "(a{1000}){1000}" + strings.Repeat("b", 3000), "r": make([]int, 5000)})
	require.NoError(t, err)
	start := time.Now()
	_, err = DecideNew(d, testWF, in("go", string(data)), testNow)
	requireEval(t, err, "/states/s/on/go/data", "")
	require.Less(t, time.Since(start), 5*time.Second)
}
