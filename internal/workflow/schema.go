package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// noLoader refuses every URL, so a schema can only $ref itself or the bundled
// meta-schemas: compiling a definition never touches the network or the disk.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("loading %q is not allowed: schemas must be self-contained", url)
}

// compileSchema compiles an input's JSON Schema (draft 2020-12 unless it says
// otherwise), with format assertions on, and returns it with its fan-out
// (schemaFanout). Each schema gets its own compiler so $id values of different
// inputs cannot collide. A schema whose cost cannot be bounded is refused.
func compileSchema(p *problems, path, input string, raw json.RawMessage) (*jsonschema.Schema, int) {
	doc, err := decodeValue(raw)
	if err != nil {
		p.add(path, "invalid JSON: %v", err)
		return nil, 0
	}
	switch doc.(type) {
	case map[string]any, bool:
	default:
		p.add(path, "schema must be an object or a boolean, not %s", jsonKind(raw))
		return nil, 0
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	loc := "urn:ironflow:input:" + input
	if err := c.AddResource(loc, doc); err != nil {
		p.add(path, "invalid schema: %v", err)
		return nil, 0
	}
	sch, err := c.Compile(loc)
	if err != nil {
		p.add(path, "invalid schema: %s", oneLine(err.Error()))
		return nil, 0
	}
	fan, err := schemaFanout(sch)
	if err != nil {
		p.add(path, "%v", err)
		return nil, 0
	}
	return sch, fan
}

// checkData checks data sent to input def, at base in the document it came from:
// JSON that CheckJSON accepts, small enough to validate within maxSchemaWork,
// and valid against the schema. It returns the data decoded (numbers as
// json.Number) and whether it passed; each problem is added to p.
func (def *inputDef) checkData(p *problems, base string, raw []byte) (any, bool) {
	// Before anything decodes it: a duplicate key would be decided on one value
	// and recorded with both, and a number beyond float64 costs the schema
	// validator seconds.
	values, err := scanJSON(raw)
	if err != nil {
		var je *JSONError
		if errors.As(err, &je) {
			p.add(base+je.Path, "%s", je.Message)
		} else {
			p.add(base, "%v", err)
		}
		return nil, false
	}
	if def.schema != nil && values*def.fanout > maxSchemaWork {
		p.add(base, "has %d values; this input's schema applies up to %d subschemas to each, and validation is capped at %d", values, def.fanout, maxSchemaWork)
		return nil, false
	}
	v, err := decodeValue(raw)
	if err != nil {
		p.add(base, "invalid JSON: %v", err)
		return nil, false
	}
	if def.schema != nil {
		n := len(p.list)
		validateAgainst(def.schema, p, base, v)
		if len(p.list) > n {
			return nil, false
		}
	}
	return v, true
}

// validateAgainst validates v and reports each leaf failure at base + its
// instance location, sorted by path for a stable answer.
func validateAgainst(sch *jsonschema.Schema, p *problems, base string, v any) {
	err := sch.Validate(v)
	if err == nil {
		return
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		p.add(base, "%v", err)
		return
	}
	var leaves []FieldError
	collectLeaves(ve, base, &leaves)
	sort.SliceStable(leaves, func(i, j int) bool { return leaves[i].Path < leaves[j].Path })
	p.list = append(p.list, leaves...)
}

func collectLeaves(ve *jsonschema.ValidationError, base string, out *[]FieldError) {
	if len(ve.Causes) == 0 {
		msg := "is invalid"
		if u := ve.BasicOutput(); u != nil && u.Error != nil {
			msg = oneLine(u.Error.String())
		}
		*out = append(*out, FieldError{Path: pointer(base, ve.InstanceLocation...), Message: msg})
		return
	}
	for _, c := range ve.Causes {
		collectLeaves(c, base, out)
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
