package workflow

import (
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	celfunctions "github.com/google/cel-go/common/functions"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// matches() is cel-go's, with two changes.
//
// cel-go charges a call after it ran, by the length of the string times the length of
// the pattern, while RE2's time grows with the string times the compiled pattern's
// program: a pattern of 2,400 characters (a program under the 1000-instruction limit)
// ran 0.9 s on a 100 KB string before the cost limit stopped the expression, 9 s on a
// megabyte, and neither the decision's time budget nor a departed client can interrupt
// a call. Here a call is charged by the program instead of the pattern's length, and
// a call whose charge alone is over an expression's cost limit fails before it runs.
//
// cel-go sizes a pattern's program without simplifying it first, which panics on a
// counted repetition (`a{2,5}`): at PUT for a literal pattern, at decide time for one
// read from the input. Here the pattern is simplified, as regexp.Compile does.

// regexProgramSize returns the size of pattern's compiled program, as RE2 runs it. A
// pattern whose repetitions alone would make it far larger than maxRegexProgram is
// refused without being expanded: `(a{1000}){1000}` parses in microseconds and
// compiles to a million instructions.
func regexProgramSize(pattern string) (int, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0, err
	}
	if n := expandedSize(re, 8*maxRegexProgram); n > 8*maxRegexProgram {
		return 0, fmt.Errorf("regex program size exceeds limit of %d", maxRegexProgram)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0, err
	}
	return len(prog.Inst), nil
}

// expandedSize estimates the nodes of re once its repetitions are expanded, counting no
// further than limit.
func expandedSize(re *syntax.Regexp, limit int) int {
	n := 1 + len(re.Rune)
	for _, sub := range re.Sub {
		n += expandedSize(sub, limit)
		if n > limit {
			return limit + 1
		}
	}
	if re.Op == syntax.OpRepeat {
		times := re.Max
		if times < 0 {
			times = re.Min + 1
		}
		if times > 0 && n > limit/times {
			return limit + 1
		}
		n *= max(times, 1)
	}
	return min(n, limit+1)
}

// maxCachedPattern is the longest pattern regexSizes keeps.
const maxCachedPattern = 4 << 10

// regexSizes remembers the program sizes of recent patterns: the cost tracker sizes
// the pattern of every call again after it ran.
var regexSizes = struct {
	sync.Mutex
	m map[string]int
}{m: map[string]int{}}

func cachedProgramSize(pattern string) (int, error) {
	regexSizes.Lock()
	n, ok := regexSizes.m[pattern]
	regexSizes.Unlock()
	if ok {
		return n, nil
	}
	n, err := regexProgramSize(pattern)
	if err != nil {
		return 0, err
	}
	if len(pattern) > maxCachedPattern {
		return n, nil
	}
	regexSizes.Lock()
	if len(regexSizes.m) >= 256 {
		clear(regexSizes.m)
	}
	regexSizes.m[pattern] = n
	regexSizes.Unlock()
	return n, nil
}

// matchCost is what matching a string of n bytes against a program of size
// instructions costs: cel-go's factors (a tenth per character, a quarter per pattern
// character), the program's size in place of the pattern's length.
func matchCost(n, size int) uint64 {
	return uint64(math.Ceil((1+float64(n))*0.1)) * uint64(math.Ceil(float64(size)*0.25))
}

// matches is the implementation of both matches() overloads.
func matches(str, pat ref.Val) ref.Val {
	s, ok := str.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(str)
	}
	p, ok := pat.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(pat)
	}
	size, err := cachedProgramSize(string(p))
	if err != nil {
		return types.WrapErr(err)
	}
	if size > maxRegexProgram {
		return types.NewErr("regex program size %d exceeds limit of %d", size, maxRegexProgram)
	}
	if c := matchCost(len(s), size); c > maxEvalCost {
		return types.NewErr("matches() on %d bytes with a pattern of %d instructions costs %d, over the limit of %d", len(s), size, c, maxEvalCost)
	}
	re, err := regexp.Compile(string(p))
	if err != nil {
		return types.WrapErr(err)
	}
	return types.Bool(re.MatchString(string(s)))
}

// regexOptions replace matches() and its cost in a program.
func regexOptions() []cel.ProgramOption {
	return []cel.ProgramOption{
		cel.Functions(
			&celfunctions.Overload{Operator: overloads.Matches, Binary: matches},
			&celfunctions.Overload{Operator: overloads.MatchesString, Binary: matches}),
	}
}

// regexCosts charge matches() by its pattern's program (matchCost).
func regexCosts() []interpreter.CostTrackerOption {
	charge := func(args []ref.Val, _ ref.Val) *uint64 {
		if len(args) != 2 {
			return nil
		}
		s, ok1 := args[0].(types.String)
		p, ok2 := args[1].(types.String)
		if !ok1 || !ok2 {
			return nil
		}
		// A call refused before it ran (matches) cost sizing its pattern, which grows
		// with the pattern's length: charged so, since a macro goes on calling after
		// an error, and with the call's own error left to name the reason.
		refused := uint64(math.Ceil(float64(len(p))*0.25)) + 1
		size, err := cachedProgramSize(string(p))
		if err != nil || size > maxRegexProgram {
			return &refused
		}
		c := matchCost(len(s), size)
		if c > maxEvalCost {
			return &refused
		}
		return &c
	}
	return []interpreter.CostTrackerOption{
		interpreter.OverloadCostTracker(overloads.Matches, charge),
		interpreter.OverloadCostTracker(overloads.MatchesString, charge),
	}
}

// regexLiterals refuses, at PUT, a literal pattern of matches() that does not compile
// or whose program is over maxRegexProgram.
type regexLiterals struct{}

func (regexLiterals) Name() string { return "ironflow.validator.regex_literals" }

func (regexLiterals) Validate(_ *cel.Env, _ cel.ValidatorConfig, a *ast.AST, iss *cel.Issues) {
	for _, call := range ast.MatchDescendants(ast.NavigateAST(a), ast.FunctionMatcher(overloads.Matches)) {
		args := call.AsCall().Args()
		if len(args) == 0 {
			continue
		}
		lit := args[len(args)-1]
		if lit.Kind() != ast.LiteralKind {
			continue
		}
		pattern, ok := lit.AsLiteral().Value().(string)
		if !ok {
			continue
		}
		size, err := regexProgramSize(pattern)
		switch {
		case err != nil:
			iss.ReportErrorAtID(lit.ID(), "invalid regular expression: %v", err)
		case size > maxRegexProgram:
			iss.ReportErrorAtID(lit.ID(), "%s", fmt.Sprintf("regex program size %d exceeds limit of %d", size, maxRegexProgram))
		}
	}
}
