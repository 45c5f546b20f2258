package workflow

import (
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
)

// MergeFunc is the CEL function that merges two maps as an RFC 7386 JSON merge
// patch: merge(state.data.order, {'status': 'paid', 'draft': null}).
const MergeFunc = "merge"

// Overload ids of the functions ironflow adds to CEL; the cost trackers key on them.
const (
	addCalendarOverload = "add_calendar_timestamp_string"
	mergeOverload       = "merge_map_map"
)

// functions are the CEL functions ironflow adds to the standard library. Each is
// cost-bounded: add_calendar does a fixed amount of work (cel-go charges a call
// one unit), merge is charged by the size of what it touches (mergeCost).
func functions() []cel.EnvOption {
	obj := cel.MapType(cel.StringType, cel.DynType)
	return []cel.EnvOption{
		cel.Function(CalendarFunc,
			cel.Overload(addCalendarOverload, []*cel.Type{cel.TimestampType, cel.StringType}, cel.TimestampType,
				cel.BinaryBinding(addCalendarBinding))),
		cel.Function(MergeFunc,
			cel.Overload(mergeOverload, []*cel.Type{obj, obj}, obj,
				cel.BinaryBinding(mergeBinding))),
		cel.ASTValidators(calendarLiteralValidator{}),
	}
}

func addCalendarBinding(ts, dur ref.Val) ref.Val {
	t, ok := ts.(types.Timestamp)
	if !ok {
		return types.MaybeNoSuchOverloadErr(ts)
	}
	s, ok := dur.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(dur)
	}
	d, err := parseCalendarArg(string(s))
	if err != nil {
		return types.NewErr("%s: %v", CalendarFunc, err)
	}
	out, err := addCalendar(t.Time, d)
	if err != nil {
		return types.NewErr("%v", err)
	}
	return types.Timestamp{Time: out}
}

// parseCalendarArg parses the duration add_calendar adds: ISO 8601 only, since
// Go syntax has no months.
func parseCalendarArg(s string) (isoDuration, error) {
	if len(s) == 0 || s[0] != 'P' {
		return isoDuration{}, fmt.Errorf("%q is not an ISO 8601 duration such as P1M, P1Y or P1MT12H", s)
	}
	return parseISODuration(s)
}

// calendarLiteralValidator checks, at PUT, every add_calendar whose duration is a
// literal, so a misspelt 'P1X' is a 422 at its path rather than a failure when an
// input arrives.
type calendarLiteralValidator struct{}

func (calendarLiteralValidator) Name() string { return "ironflow.validator.add_calendar" }

func (calendarLiteralValidator) Validate(_ *cel.Env, _ cel.ValidatorConfig, a *ast.AST, iss *cel.Issues) {
	for _, call := range ast.MatchDescendants(ast.NavigateAST(a), ast.FunctionMatcher(CalendarFunc)) {
		args := call.AsCall().Args()
		if len(args) != 2 || args[1].Kind() != ast.LiteralKind {
			continue
		}
		s, ok := args[1].AsLiteral().(types.String)
		if !ok {
			continue
		}
		if _, err := parseCalendarArg(string(s)); err != nil {
			iss.ReportErrorAtID(args[1].ID(), "%s", err.Error())
		}
	}
}

func mergeBinding(a, b ref.Val) ref.Val {
	if _, ok := a.(traits.Mapper); !ok {
		return types.NewErr("%s: the first argument is a %s, not a map", MergeFunc, a.Type().TypeName())
	}
	if _, ok := b.(traits.Mapper); !ok {
		return types.NewErr("%s: the second argument is a %s, not a map", MergeFunc, b.Type().TypeName())
	}
	out, err := mergeValues(a, b, 0)
	if err != nil {
		return types.NewErr("%s: %v", MergeFunc, err)
	}
	return out
}

// mergeValues is RFC 7386 MergePatch(target, patch) on CEL values: a map patch
// merges into target key by key (null removes the key, maps merge recursively,
// anything else replaces); any other patch replaces target. Neither argument is
// changed. Keys must be strings, as in JSON.
func mergeValues(target, patch ref.Val, depth int) (ref.Val, error) {
	if depth > maxValueDepth {
		return nil, fmt.Errorf("the maps are nested more than %d deep", maxValueDepth)
	}
	p, ok := patch.(traits.Mapper)
	if !ok {
		return patch, nil
	}
	out := map[ref.Val]ref.Val{}
	if t, ok := target.(traits.Mapper); ok {
		it := t.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			if _, ok := k.(types.String); !ok {
				return nil, fmt.Errorf("map key of type %s is not a string", k.Type().TypeName())
			}
			out[k] = t.Get(k)
		}
	}
	it := p.Iterator()
	for it.HasNext() == types.True {
		k := it.Next()
		if _, ok := k.(types.String); !ok {
			return nil, fmt.Errorf("map key of type %s is not a string", k.Type().TypeName())
		}
		v := p.Get(k)
		if _, isNull := v.(types.Null); isNull {
			delete(out, k)
			continue
		}
		merged, err := mergeValues(out[k], v, depth+1)
		if err != nil {
			return nil, err
		}
		out[k] = merged
	}
	return types.NewRefValMap(types.DefaultTypeAdapter, out), nil
}

// mergeCost charges merge the deep size of both maps (deepSize), as comparisons
// are charged: it visits every key of both.
func mergeCost() interpreter.CostTrackerOption {
	return interpreter.OverloadCostTracker(mergeOverload, func(args []ref.Val, _ ref.Val) *uint64 {
		if len(args) != 2 {
			return nil
		}
		c := 1 + deepSize(args[0], maxEvalCost) + deepSize(args[1], maxEvalCost)
		return &c
	})
}
