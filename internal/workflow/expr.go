package workflow

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
)

// Limits that keep a hostile definition from costing the server more than a
// moment, at PUT or at decide time.
const (
	maxExprBytes      = 4096    // source length of one expression
	maxExprNodes      = 5000    // AST nodes after macro expansion
	maxParseDepth     = 64      // parser recursion
	maxComprehensions = 3       // nested map/filter/all/exists
	maxRegexProgram   = 1000    // compiled size of a regex in matches()
	maxEvalCost       = 100_000 // runtime cost units of one evaluation
	maxDecisionCost   = 250_000 // runtime cost units of all evaluations of one decision
	maxValueDepth     = 1000    // nesting of a CEL result turned into JSON
	// interruptEvery is how many comprehension iterations run between two looks at
	// the decision's context, so an abandoned or overdue decision stops promptly.
	interruptEvery = 100
)

// resultKind is what an expression must evaluate to.
type resultKind int

const (
	wantBool resultKind = iota
	wantString
	wantTimestamp
	wantObject
	wantList
)

func (k resultKind) String() string {
	switch k {
	case wantBool:
		return "bool"
	case wantString:
		return "string"
	case wantTimestamp:
		return "timestamp"
	case wantList:
		return "list"
	default:
		return "map"
	}
}

// expr is one compiled expression and where it sits in the definition.
type expr struct {
	path string
	src  string
	want resultKind
	prg  cel.Program
}

// newEnv builds the CEL environment every expression of a definition compiles
// against. It is made per Parse so no CEL state is shared between definitions.
// Only the standard library, optional types and ironflow's own functions
// (functions) are on: each has a runtime cost, so the cost limit bounds them.
func newEnv() (*cel.Env, error) {
	obj := cel.MapType(cel.StringType, cel.DynType)
	opts := []cel.EnvOption{
		cel.Variable("input", obj),
		cel.Variable("state", obj),
		cel.Variable("workflow", obj),
		cel.Variable("now", cel.TimestampType),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.ParserExpressionSizeLimit(maxExprBytes),
		cel.ParserRecursionLimit(maxParseDepth),
		cel.ExpressionNodeLimit(maxExprNodes),
		cel.ASTValidators(cel.ValidateComprehensionNestingLimit(maxComprehensions), regexLiterals{}),
	}
	return cel.NewEnv(append(opts, functions()...)...)
}

// compileExpr parses, type-checks and plans src. A checked result type of dyn is
// accepted here and checked again when the expression runs.
func compileExpr(env *cel.Env, p *problems, path, src string, want resultKind) *expr {
	if strings.TrimSpace(src) == "" {
		p.add(path, "expression must not be empty")
		return nil
	}
	if len(src) > maxExprBytes {
		p.add(path, "expression is %d bytes long; the limit is %d", len(src), maxExprBytes)
		return nil
	}
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		msgs := make([]string, 0, len(iss.Errors()))
		for _, e := range iss.Errors() {
			loc := ""
			if e.Location != nil && e.Location.Line() > 0 {
				loc = fmt.Sprintf("%d:%d: ", e.Location.Line(), e.Location.Column()+1)
			}
			msgs = append(msgs, loc+e.Message)
		}
		if len(msgs) == 0 {
			msgs = append(msgs, iss.Err().Error())
		}
		p.add(path, "invalid expression: %s", strings.Join(msgs, "; "))
		return nil
	}
	if !outputMatches(ast.OutputType(), want) {
		p.add(path, "expression must evaluate to a %s, not %s", want, cel.FormatCELType(ast.OutputType()))
		return nil
	}
	prg, err := env.Program(ast, append(regexOptions(),
		cel.CostLimit(maxEvalCost),
		cel.CostTrackerOptions(append(sizeCosts(), regexCosts()...)...),
		cel.InterruptCheckFrequency(interruptEvery))...)
	if err != nil {
		p.add(path, "invalid expression: %v", err)
		return nil
	}
	return &expr{path: path, src: src, want: want, prg: prg}
}

func outputMatches(t *cel.Type, want resultKind) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case types.DynKind, types.AnyKind:
		return true
	case types.BoolKind:
		return want == wantBool
	case types.StringKind:
		return want == wantString
	case types.TimestampKind:
		return want == wantTimestamp
	case types.MapKind, types.NullTypeKind:
		return want == wantObject
	case types.ListKind:
		return want == wantList
	}
	return false
}

// sizeCosts make comparisons cost what they touch. cel-go counts "==" and "!="
// by the shallow size of the smaller operand and "in" by the number of list
// elements, so comparing two long lists of long strings, over and over in a
// macro, ran for seconds under the cost limit. Here each costs the deep size of
// its operands (deepSize), counted no further than the expression's limit.
func sizeCosts() []interpreter.CostTrackerOption {
	pair := func(args []ref.Val, _ ref.Val) *uint64 {
		if len(args) != 2 {
			return nil
		}
		c := 1 + deepSize(args[0], maxEvalCost) + deepSize(args[1], maxEvalCost)
		return &c
	}
	return []interpreter.CostTrackerOption{
		interpreter.OverloadCostTracker(overloads.Equals, pair),
		interpreter.OverloadCostTracker(overloads.NotEquals, pair),
		interpreter.OverloadCostTracker(overloads.InList, pair),
		mergeCost(),
	}
}

// Cost units deepSize charges per list element and per map entry. A unit of
// cel-go's own cost is one evaluation step, roughly a tenth of a microsecond;
// comparing a map entry (a lookup in the other map through reflection) takes
// about a microsecond, a list element a fifth of that.
const (
	listElemCost = 2
	mapEntryCost = 10
)

// deepSize is what comparing v costs: listElemCost per list element,
// mapEntryCost per map entry, a tenth of the length of a string or bytes
// (cel-go's traversal factor), one for a scalar. It stops counting at limit.
func deepSize(v ref.Val, limit uint64) uint64 {
	// Input and state data reach CEL as the Go values jsonToCEL made: size those
	// directly, without a CEL value per element.
	switch nv := v.Value().(type) {
	case map[string]any, []any:
		return nativeSize(nv, limit)
	}
	switch x := v.(type) {
	case types.String:
		return uint64(len(x))/10 + 1
	case types.Bytes:
		return uint64(len(x))/10 + 1
	case traits.Lister:
		n, ok := x.Size().(types.Int)
		if !ok {
			return 1
		}
		total := uint64(1)
		for i := types.Int(0); i < n && total < limit; i++ {
			total += listElemCost + deepSize(x.Get(i), limit-total)
		}
		return total
	case traits.Mapper:
		total := uint64(1)
		it := x.Iterator()
		for it.HasNext() == types.True && total < limit {
			k := it.Next()
			total += mapEntryCost + deepSize(k, limit-total)
			if total < limit {
				total += deepSize(x.Get(k), limit-total)
			}
		}
		return total
	}
	return 1
}

// nativeSize is deepSize of a value jsonToCEL made.
func nativeSize(v any, limit uint64) uint64 {
	switch x := v.(type) {
	case string:
		return uint64(len(x))/10 + 1
	case []any:
		total := uint64(1)
		for _, e := range x {
			if total >= limit {
				break
			}
			total += listElemCost + nativeSize(e, limit-total)
		}
		return total
	case map[string]any:
		total := uint64(1)
		for k, e := range x {
			if total >= limit {
				break
			}
			total += mapEntryCost + uint64(len(k))/10 + nativeSize(e, limit-total)
		}
		return total
	}
	return 1
}

// activation holds the CEL variables of one decision, its context and limits,
// and the cost its evaluations have spent so far: besides each expression's own
// limit, a decision has a total budget, so a transition with many expensive
// effects cannot multiply the worst case.
type activation struct {
	ctx      context.Context
	vars     map[string]any
	spent    *uint64 // shared by every activation of the decision
	maxBytes int
}

func newActivation(ctx context.Context, lim Limits, wf Ref, state string, stateData any, inType string, inData any, now time.Time) *activation {
	return &activation{ctx: ctx, maxBytes: lim.maxDataBytes(), spent: new(uint64), vars: map[string]any{
		"input":    map[string]any{"type": inType, "data": inData},
		"state":    map[string]any{"name": state, "data": stateData},
		"workflow": map[string]any{"type": wf.Type, "id": wf.ID},
		"now":      now.UTC(),
	}}
}

// with returns an activation of the same decision (context, limits and cost
// budget) whose variables are act's, with vars added or replaced.
func (act *activation) with(vars map[string]any) *activation {
	out := *act
	out.vars = make(map[string]any, len(act.vars)+len(vars))
	for k, v := range act.vars {
		out.vars[k] = v
	}
	for k, v := range vars {
		out.vars[k] = v
	}
	return &out
}

// withState is act seeing state name with data instead.
func (act *activation) withState(name string, data any) *activation {
	return act.with(map[string]any{"state": map[string]any{"name": name, "data": data}})
}

// eval runs the expression. Failures come back as a *ValidationError wrapping
// ErrEvaluation with the expression's path.
func (e *expr) eval(act *activation) (ref.Val, error) {
	if *act.spent >= maxDecisionCost {
		return nil, e.fail("the decision's expressions exceeded their total cost limit of %d", maxDecisionCost)
	}
	out, det, err := e.prg.ContextEval(act.ctx, act.vars)
	if det != nil && det.ActualCost() != nil {
		*act.spent += *det.ActualCost()
	}
	if err != nil {
		if ctxErr := act.ctx.Err(); ctxErr != nil {
			// Abandoned (the client went away) or over the wall-clock budget: the
			// caller tells which, so the context's error passes through unwrapped.
			return nil, fmt.Errorf("%s: evaluation interrupted: %w", e.path, ctxErr)
		}
		return nil, e.fail("%v", err)
	}
	if types.IsError(out) {
		return nil, e.fail("%v", out)
	}
	return out, nil
}

func (e *expr) fail(format string, args ...any) error {
	return &ValidationError{Err: ErrEvaluation, Errors: []FieldError{{Path: e.path, Message: fmt.Sprintf(format, args...)}}}
}

func (e *expr) evalBool(act *activation) (bool, error) {
	out, err := e.eval(act)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, e.fail("expression must evaluate to a bool, not %s", out.Type().TypeName())
	}
	return bool(b), nil
}

// evalString returns ok=false for null, so unique_key can opt an instance out.
func (e *expr) evalString(act *activation) (string, bool, error) {
	out, err := e.eval(act)
	if err != nil {
		return "", false, err
	}
	switch v := out.(type) {
	case types.String:
		return string(v), true, nil
	case types.Null:
		return "", false, nil
	}
	return "", false, e.fail("expression must evaluate to a string, not %s", out.Type().TypeName())
}

func (e *expr) evalTimestamp(act *activation) (time.Time, error) {
	out, err := e.eval(act)
	if err != nil {
		return time.Time{}, err
	}
	ts, ok := out.(types.Timestamp)
	if !ok {
		return time.Time{}, e.fail("expression must evaluate to a timestamp, not %s", out.Type().TypeName())
	}
	return ts.Time.UTC(), nil
}

// evalList returns the elements of a list result and their number n; items is
// nil when n is over limit, so a long list is not copied only to be refused.
func (e *expr) evalList(act *activation, limit int) (items []ref.Val, n int, err error) {
	out, err := e.eval(act)
	if err != nil {
		return nil, 0, err
	}
	l, ok := out.(traits.Lister)
	if !ok {
		return nil, 0, e.fail("expression must evaluate to a list, not %s", out.Type().TypeName())
	}
	size, ok := l.Size().(types.Int)
	if !ok {
		return nil, 0, e.fail("the list has no size")
	}
	if int64(size) > int64(limit) {
		return nil, int(size), nil
	}
	items = make([]ref.Val, 0, int(size))
	for i := types.Int(0); i < size; i++ {
		items = append(items, l.Get(i))
	}
	return items, int(size), nil
}

// evalObject returns the result as a compact JSON object; null becomes {}.
func (e *expr) evalObject(act *activation) (json.RawMessage, error) {
	out, err := e.eval(act)
	if err != nil {
		return nil, err
	}
	if _, ok := out.(types.Null); ok {
		return json.RawMessage(`{}`), nil
	}
	if _, ok := out.(traits.Mapper); !ok {
		return nil, e.fail("expression must evaluate to a map, not %s", out.Type().TypeName())
	}
	budget := &byteBudget{left: act.maxBytes}
	v, err := celToJSON(out, 0, budget)
	if errors.Is(err, errOverBudget) {
		return nil, e.tooLarge(act.maxBytes)
	}
	if err != nil {
		return nil, e.fail("%v", err)
	}
	b, err := marshalJSON(v)
	if err != nil {
		return nil, e.fail("result is not JSON: %v", err)
	}
	if len(b) > act.maxBytes {
		return nil, e.tooLarge(act.maxBytes)
	}
	return b, nil
}

func (e *expr) tooLarge(limit int) error {
	return &ValidationError{Err: ErrTooLarge, Errors: []FieldError{{Path: e.path,
		Message: fmt.Sprintf("the result is larger than %d bytes of JSON, the limit of every expression result", limit)}}}
}

// byteBudget counts down the JSON bytes a result may still take while celToJSON
// builds it, so an expression that repeats one large value many times fails as
// soon as the result outgrows the limit, before anything that size is built.
type byteBudget struct{ left int }

var errOverBudget = errors.New("result over the size limit")

func (b *byteBudget) spend(n int) error {
	b.left -= n
	if b.left < 0 {
		return errOverBudget
	}
	return nil
}

// celToJSON turns a CEL value into something encoding/json marshals, charging
// budget about the bytes each part takes as JSON.
func celToJSON(v ref.Val, depth int, budget *byteBudget) (any, error) {
	if depth > maxValueDepth {
		return nil, errors.New("result is nested too deeply")
	}
	if err := budget.spend(approxJSONSize(v)); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(x), nil
	case types.Int:
		return int64(x), nil
	case types.Uint:
		return uint64(x), nil
	case types.Double:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("result contains %v, which JSON cannot represent", f)
		}
		return f, nil
	case types.String:
		return string(x), nil
	case types.Bytes:
		return base64.StdEncoding.EncodeToString([]byte(x)), nil
	case types.Timestamp:
		return x.Time.UTC().Format(time.RFC3339Nano), nil
	case types.Duration:
		return x.Duration.String(), nil
	case *types.Optional:
		if !x.HasValue() {
			return nil, nil
		}
		return celToJSON(x.GetValue(), depth+1, budget)
	case *types.Err:
		return nil, x
	case traits.Mapper:
		out := map[string]any{}
		it := x.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			var key string
			switch kv := k.(type) {
			case types.String:
				key = string(kv)
			case types.Int, types.Uint, types.Bool:
				key = fmt.Sprint(kv.Value())
			default:
				return nil, fmt.Errorf("map key of type %s cannot be a JSON object key", k.Type().TypeName())
			}
			if err := budget.spend(len(key) + 3); err != nil {
				return nil, err
			}
			val, err := celToJSON(x.Get(k), depth+1, budget)
			if err != nil {
				return nil, err
			}
			out[key] = val
		}
		return out, nil
	case traits.Lister:
		n, ok := x.Size().(types.Int)
		if !ok {
			return nil, errors.New("list has no size")
		}
		out := make([]any, 0, int(n))
		for i := types.Int(0); i < n; i++ {
			val, err := celToJSON(x.Get(i), depth+1, budget)
			if err != nil {
				return nil, err
			}
			out = append(out, val)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %s cannot be turned into JSON", v.Type().TypeName())
}

// approxJSONSize is about the bytes v itself adds to a JSON document, not counting
// what a list or map holds (celToJSON charges that as it goes): a string's
// length and quotes, a key's share for map entries, a number's digits.
func approxJSONSize(v ref.Val) int {
	switch x := v.(type) {
	case types.String:
		return len(x) + 3 // quotes and a separator
	case types.Bytes:
		return base64.StdEncoding.EncodedLen(len(x)) + 3
	case types.Int:
		return len(strconv.FormatInt(int64(x), 10)) + 1
	case traits.Mapper:
		if n, ok := x.Size().(types.Int); ok {
			return 2 + int(n) // braces, a colon per entry (keys are charged as strings)
		}
	case traits.Lister:
		return 2
	}
	return 8
}

// jsonToCEL turns a value decoded with json.Number into the native shape CEL
// reads: every number a float64, so comparisons between JSON numbers are uniform.
func jsonToCEL(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s is out of range", x)
		}
		return f, nil
	case map[string]any:
		for k, e := range x {
			c, err := jsonToCEL(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	case []any:
		for i, e := range x {
			c, err := jsonToCEL(e)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	}
	return v, nil
}
