package workflow

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
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
)

// resultKind is what an expression must evaluate to.
type resultKind int

const (
	wantBool resultKind = iota
	wantString
	wantTimestamp
	wantObject
)

func (k resultKind) String() string {
	switch k {
	case wantBool:
		return "bool"
	case wantString:
		return "string"
	case wantTimestamp:
		return "timestamp"
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
// Only the standard library and optional types are on: their functions all have
// cost estimates, so the runtime cost limit bounds them.
func newEnv() (*cel.Env, error) {
	obj := cel.MapType(cel.StringType, cel.DynType)
	return cel.NewEnv(
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
		cel.RegexProgramSizeLimit(maxRegexProgram),
		cel.ASTValidators(cel.ValidateComprehensionNestingLimit(maxComprehensions)),
	)
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
	prg, err := env.Program(ast, cel.CostLimit(maxEvalCost))
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
	}
	return false
}

// activation holds the CEL variables of one decision and the cost its
// evaluations have spent so far: besides each expression's own limit, a decision
// has a total budget, so a transition with many expensive effects cannot
// multiply the worst case.
type activation struct {
	vars  map[string]any
	spent uint64
}

func newActivation(wf Ref, state string, stateData any, inType string, inData any, now time.Time) *activation {
	return &activation{vars: map[string]any{
		"input":    map[string]any{"type": inType, "data": inData},
		"state":    map[string]any{"name": state, "data": stateData},
		"workflow": map[string]any{"type": wf.Type, "id": wf.ID},
		"now":      now.UTC(),
	}}
}

// eval runs the expression. Failures come back as a *ValidationError wrapping
// ErrEvaluation with the expression's path.
func (e *expr) eval(act *activation) (ref.Val, error) {
	if act.spent >= maxDecisionCost {
		return nil, e.fail("the decision's expressions exceeded their total cost limit of %d", maxDecisionCost)
	}
	out, det, err := e.prg.Eval(act.vars)
	if det != nil && det.ActualCost() != nil {
		act.spent += *det.ActualCost()
	}
	if err != nil {
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
	v, err := celToJSON(out, 0)
	if err != nil {
		return nil, e.fail("%v", err)
	}
	b, err := marshalJSON(v)
	if err != nil {
		return nil, e.fail("result is not JSON: %v", err)
	}
	return b, nil
}

// celToJSON turns a CEL value into something encoding/json marshals.
func celToJSON(v ref.Val, depth int) (any, error) {
	if depth > maxValueDepth {
		return nil, errors.New("result is nested too deeply")
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
		return celToJSON(x.GetValue(), depth+1)
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
			val, err := celToJSON(x.Get(k), depth+1)
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
			val, err := celToJSON(x.Get(i), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, val)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %s cannot be turned into JSON", v.Type().TypeName())
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
