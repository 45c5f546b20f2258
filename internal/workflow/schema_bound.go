package workflow

import (
	"errors"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Bounds of JSON Schema evaluation. A schema's fan-out is the most subschemas it
// can apply to one value of an input (allOf, anyOf, oneOf, not, if/then/else and
// $ref apply several to the same value, and several parents' properties or items
// to the same child). Validating an input costs at most its number of values
// times the fan-out, so a definition whose fan-out exceeds maxSchemaFanout is
// refused at PUT, and an input whose values times the fan-out exceed
// maxSchemaWork is refused before validation. Before these bounds an 18-level
// chain of $ref and anyOf took seconds and hundreds of megabytes per input.
const (
	maxSchemaFanout = 1000
	maxSchemaWork   = 2_000_000
)

// errSchemaUnbounded is why a schema's cost cannot be bounded.
var errSchemaUnbounded = errors.New("schema cost cannot be bounded")

// schemaFanout returns the fan-out of sch, or an error when it exceeds
// maxSchemaFanout or cannot be bounded: a $ref cycle (recursive schemas), or
// $dynamicRef and $recursiveRef, whose targets depend on the input.
func schemaFanout(sch *jsonschema.Schema) (int, error) {
	b := &fanout{local: map[*jsonschema.Schema]int{}, reach: map[*jsonschema.Schema]int{}, onStack: map[*jsonschema.Schema]bool{}}
	n, err := b.of(sch)
	if err != nil {
		return 0, err
	}
	if n > maxSchemaFanout {
		return 0, fmt.Errorf("%w: it may apply more than %d subschemas to one value (allOf, anyOf, oneOf and $ref multiply)", errSchemaUnbounded, maxSchemaFanout)
	}
	return n, nil
}

// fanout memoises, per subschema s applied once to a value: local[s], how many
// subschemas then apply to that same value, and reach[s], the most that apply to
// any one value below it. Counts saturate just above the limit.
type fanout struct {
	local   map[*jsonschema.Schema]int
	reach   map[*jsonschema.Schema]int
	onStack map[*jsonschema.Schema]bool
}

func sat(a, b int) int { return min(a+b, maxSchemaFanout+1) }

// of returns max(local, reach) of s.
func (f *fanout) of(s *jsonschema.Schema) (int, error) {
	if s == nil {
		return 0, nil
	}
	if _, done := f.local[s]; done {
		return max(f.local[s], f.reach[s]), nil
	}
	if f.onStack[s] {
		return 0, fmt.Errorf("%w: %s refers back to itself; recursive schemas are not supported", errSchemaUnbounded, s.Location)
	}
	if s.DynamicRef != nil || s.RecursiveRef != nil {
		return 0, fmt.Errorf("%w: %s uses $dynamicRef or $recursiveRef", errSchemaUnbounded, s.Location)
	}
	f.onStack[s] = true
	defer delete(f.onStack, s)

	// Subschemas applied to the same value.
	same := []*jsonschema.Schema{s.Ref, s.Not, s.If, s.Then, s.Else}
	same = append(same, s.AllOf...)
	same = append(same, s.AnyOf...)
	same = append(same, s.OneOf...)
	for _, d := range s.DependentSchemas {
		same = append(same, d)
	}
	for _, d := range s.Dependencies {
		if ds, ok := d.(*jsonschema.Schema); ok {
			same = append(same, ds)
		}
	}
	local, reach := 1, 0
	for _, c := range same {
		if c == nil {
			continue
		}
		if _, err := f.of(c); err != nil {
			return 0, err
		}
		local = sat(local, f.local[c])
		reach = sat(reach, f.reach[c])
	}

	// Subschemas applied to a member of an object: one property's schema, plus
	// every pattern and the fallbacks, which may apply to the same member.
	object, err := f.maxOf(mapValues(s.Properties))
	if err != nil {
		return 0, err
	}
	for _, c := range s.PatternProperties {
		if object, err = f.add(object, c); err != nil {
			return 0, err
		}
	}
	for _, c := range []*jsonschema.Schema{schemaOf(s.AdditionalProperties), s.UnevaluatedProperties, s.PropertyNames} {
		if object, err = f.add(object, c); err != nil {
			return 0, err
		}
	}
	// And to an element of an array.
	array, err := f.maxOf(s.PrefixItems)
	if err != nil {
		return 0, err
	}
	if list, ok := s.Items.([]*jsonschema.Schema); ok {
		n, err := f.maxOf(list)
		if err != nil {
			return 0, err
		}
		array = sat(array, n)
	}
	for _, c := range []*jsonschema.Schema{schemaOf(s.Items), schemaOf(s.AdditionalItems), s.Items2020, s.Contains, s.UnevaluatedItems, s.ContentSchema} {
		if array, err = f.add(array, c); err != nil {
			return 0, err
		}
	}
	reach = sat(reach, max(object, array))
	f.local[s], f.reach[s] = local, reach
	return max(local, reach), nil
}

func (f *fanout) add(n int, c *jsonschema.Schema) (int, error) {
	m, err := f.of(c)
	return sat(n, m), err
}

func (f *fanout) maxOf(list []*jsonschema.Schema) (int, error) {
	out := 0
	for _, c := range list {
		m, err := f.of(c)
		if err != nil {
			return 0, err
		}
		out = max(out, m)
	}
	return out, nil
}

func mapValues[K comparable](m map[K]*jsonschema.Schema) []*jsonschema.Schema {
	out := make([]*jsonschema.Schema, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// schemaOf returns v when it is a schema (keywords that may also be a boolean or
// a list hold it as any).
func schemaOf(v any) *jsonschema.Schema {
	s, _ := v.(*jsonschema.Schema)
	return s
}
