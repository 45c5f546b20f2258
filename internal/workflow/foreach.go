package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// maxTimerKeyLen bounds a timer key a for_each computes.
const maxTimerKeyLen = 200

// fanOut expands the for_each effects and timers of one decision. Together they
// may give at most limit elements and bytesLeft bytes of JSON (payloads and timer
// data), so a for_each over a long list of large values is refused before it is
// built, not written.
type fanOut struct {
	act        *activation
	max        int // elements one transition may give
	limit      int // elements still allowed
	bytesLeft  int
	effectKeys map[string]bool // name + "\x00" + key of every keyed effect so far
}

// take counts n more elements of the for_each at e.
func (f *fanOut) take(e *expr, n int) error {
	if n > f.limit {
		return &ValidationError{Err: ErrTooLarge, Errors: []FieldError{{Path: e.path,
			Message: fmt.Sprintf("for_each gives %d elements; with the transition's other for_each elements that is more than %d, the limit", n, f.max)}}}
	}
	f.limit -= n
	return nil
}

// spend counts the JSON the element at path produced.
func (f *fanOut) spend(path string, n int, max int) error {
	f.bytesLeft -= n
	if f.bytesLeft < 0 {
		return &ValidationError{Err: ErrTooLarge, Errors: []FieldError{{Path: path,
			Message: fmt.Sprintf("the for_each effects and timers of this decision produce more than %d bytes of JSON together, the limit (%d times the data limit)", forEachBytesFactor*max, forEachBytesFactor)}}}
	}
	return nil
}

// items evaluates a for_each list, counted against the decision's elements.
func (f *fanOut) items(e *expr) ([]ref.Val, error) {
	items, n, err := e.evalList(f.act, f.limit)
	if err != nil {
		return nil, err
	}
	if err := f.take(e, n); err != nil {
		return nil, err
	}
	return items, nil
}

// element is the activation of element i of a for_each: item and index in scope.
func (f *fanOut) element(item ref.Val, i int) *activation {
	return f.act.with(map[string]any{"item": item, "index": types.Int(i)})
}

// effects appends one effect per element of e's for_each to out. Errors: those of
// the expressions, ErrTooLarge (elements or bytes over the limits), ErrEvaluation
// at the key when two elements give the same key.
func (f *fanOut) effects(out []Effect, e *effectDef, eventData []byte, policy EffectPolicy) ([]Effect, error) {
	items, err := f.items(e.forEach)
	if err != nil {
		return nil, err
	}
	if f.effectKeys == nil {
		f.effectKeys = map[string]bool{}
	}
	for i, item := range items {
		act := f.element(item, i)
		key := strconv.Itoa(i)
		if e.key != nil {
			k, ok, err := e.key.evalString(act)
			if err != nil {
				return nil, err
			}
			if !ok || k == "" {
				return nil, e.key.fail("element %d gives an empty key; every effect of a for_each needs one", i)
			}
			if len(k) > maxTimerKeyLen {
				return nil, e.key.fail("element %d gives a key of %d bytes; the limit is %d", i, len(k), maxTimerKeyLen)
			}
			key = k
		}
		if f.effectKeys[e.name+"\x00"+key] {
			path := e.forEach.path
			if e.key != nil {
				path = e.key.path
			}
			return nil, &ValidationError{Err: ErrEvaluation, Errors: []FieldError{{Path: path,
				Message: fmt.Sprintf("element %d gives the key %q, which another %s effect of this transition already has: keys must be unique", i, key, e.name)}}}
		}
		f.effectKeys[e.name+"\x00"+key] = true
		ef, err := e.emit(act, eventData, policy)
		if err != nil {
			return nil, err
		}
		if err := f.spend(e.forEach.path, len(ef.Payload), act.maxBytes); err != nil {
			return nil, err
		}
		if e.onDead != nil && e.onDead.data != nil {
			// on_dead sees the element when the effect dies, on a state that has moved
			// on from the one the list came from: the effect keeps it, and it counts
			// against the decision's bytes as a payload does.
			if ef.Item, err = elementJSON(e.forEach, item, i, act.maxBytes); err != nil {
				return nil, err
			}
			if err := f.spend(e.forEach.path, len(ef.Item), act.maxBytes); err != nil {
				return nil, err
			}
			ef.Index = i
		}
		ef.Key = key
		out = append(out, ef)
	}
	return out, nil
}

// elementJSON is element i of the for_each at e as compact JSON of at most max bytes,
// the data limit. Errors, at e's path: ErrTooLarge beyond max; ErrEvaluation for an
// element JSON cannot hold (NaN, a type) or nested too deeply.
func elementJSON(e *expr, item ref.Val, i, max int) (json.RawMessage, error) {
	tooLarge := func() error {
		return &ValidationError{Err: ErrTooLarge, Errors: []FieldError{{Path: e.path,
			Message: fmt.Sprintf("element %d is larger than %d bytes of JSON, the limit of the element an on_dead sees", i, max)}}}
	}
	v, err := celToJSON(item, 0, &byteBudget{left: max})
	if errors.Is(err, errOverBudget) {
		return nil, tooLarge()
	}
	if err != nil {
		return nil, e.fail("element %d cannot be kept as JSON for on_dead: %v", i, err)
	}
	b, err := marshalJSON(v)
	if err != nil {
		return nil, e.fail("element %d cannot be kept as JSON for on_dead: %v", i, err)
	}
	if len(b) > max {
		return nil, tooLarge()
	}
	return b, nil
}

// timers appends one timer per element of t's for_each to out, which holds the
// transition's timers so far. Errors: those of the expressions, ErrTooLarge,
// ErrEvaluation at the key when it is empty, too long, has a ':' or a control
// character, or repeats a key of the transition; ErrEvaluation at the input data
// when it fails the input's schema.
func (f *fanOut) timers(d *Definition, out []Timer, t *timerDef, now time.Time) ([]Timer, error) {
	items, err := f.items(t.forEach)
	if err != nil {
		return nil, err
	}
	for i, item := range items {
		act := f.element(item, i)
		key, ok, err := t.keyExpr.evalString(act)
		if err != nil {
			return nil, err
		}
		if msg := checkTimerKey(key, ok); msg != "" {
			return nil, t.keyExpr.fail("element %d gives the key %q: %s", i, key, msg)
		}
		for _, have := range out {
			if have.Key == key {
				return nil, t.keyExpr.fail("element %d gives the key %q, which another timer of this transition already has: keys must be unique", i, key)
			}
		}
		tm, err := t.schedule(act, now)
		if err != nil {
			return nil, err
		}
		tm.Key = key
		if t.dataExpr != nil {
			data, err := t.dataExpr.evalObject(act)
			if err != nil {
				return nil, err
			}
			var p problems
			if in, ok := d.inputs[t.inputType]; ok {
				in.checkData(&p, t.dataExpr.path, data)
			}
			if len(p.list) > 0 {
				return nil, &ValidationError{Err: ErrEvaluation, Errors: p.list}
			}
			if err := f.spend(t.dataExpr.path, len(data), act.maxBytes); err != nil {
				return nil, err
			}
			tm.Input.Data = data
		}
		out = append(out, tm)
	}
	return out, nil
}

// checkTimerKey says what is wrong with a computed timer key, "" when nothing.
// ':' is reserved for the keys of delayed inputs.
func checkTimerKey(key string, ok bool) string {
	switch {
	case !ok || key == "":
		return "a timer key must not be empty"
	case len(key) > maxTimerKeyLen:
		return fmt.Sprintf("a timer key is at most %d bytes", maxTimerKeyLen)
	}
	for _, r := range key {
		if r == ':' || unicode.IsControl(r) {
			return "a timer key has no ':' and no control characters"
		}
	}
	return ""
}
