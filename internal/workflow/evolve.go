package workflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Evolve applies e to s: the name becomes e.To and e.Data is merged into s.Data
// as an RFC 7386 JSON merge patch (null deletes a key, objects merge, anything
// else replaces). It never looks at a definition, so replaying history gives the
// same state forever. Empty or null event data changes no data. Errors: s.Data
// that is not a JSON object (wrapping ErrInvalidState), or e.Data that is
// neither an object nor null. The result's data is compact with sorted keys.
func Evolve(s State, e Event) (State, error) {
	var base any = map[string]any{}
	if len(bytes.TrimSpace(s.Data)) > 0 {
		v, err := decodeValue(s.Data)
		if err != nil {
			return State{}, fmt.Errorf("evolve: state data: %v: %w", err, ErrInvalidState)
		}
		if _, ok := v.(map[string]any); !ok {
			return State{}, fmt.Errorf("evolve: state data is %s, not an object: %w", jsonKind(s.Data), ErrInvalidState)
		}
		base = v
	}
	if len(bytes.TrimSpace(e.Data)) > 0 {
		patch, err := decodeValue(e.Data)
		if err != nil {
			return State{}, fmt.Errorf("evolve: event data: %w", err)
		}
		switch patch.(type) {
		case nil:
		case map[string]any:
			base = mergePatch(base, patch)
		default:
			return State{}, fmt.Errorf("evolve: event data is %s, not an object", jsonKind(e.Data))
		}
	}
	data, err := marshalJSON(base)
	if err != nil {
		return State{}, fmt.Errorf("evolve: %w", err)
	}
	return State{Name: e.To, Data: data}, nil
}

// mergePatch is RFC 7386 MergePatch(target, patch).
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// marshalJSON encodes v compactly without HTML escaping; map keys come out
// sorted, so equal values always give equal bytes.
func marshalJSON(v any) (json.RawMessage, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return json.RawMessage(strings.TrimSuffix(b.String(), "\n")), nil
}
