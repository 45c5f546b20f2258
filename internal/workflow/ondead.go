package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// onDeadDef is an effect's on_dead: the input that runs on the instance when the effect
// dies.
type onDeadDef struct {
	inputType string
	data      *expr // nil: {}
}

// DeadEffect is what an on_dead expression sees of the effect that died, as effect
// {id, name, key, attempts, last_status, last_error}, and, for an effect of a
// for_each, as item and index: Item and Index are the element the effect was
// emitted for and its position, as Effect kept them (nil Item: none was kept).
type DeadEffect struct {
	ID         string
	Name       string
	Key        string
	Attempts   int    // attempts made in the budget it spent
	LastStatus int    // status code of the last attempt, 0 when no response arrived
	LastError  string // why the last attempt failed
	Item       json.RawMessage
	Index      int
}

// parseOnDead reads the on_dead member of the effect at path: a declared input type
// and an optional data expression that also sees effect, and item and index when the
// effect has a for_each (each), as its payload does.
func (ps *parser) parseOnDead(eff *effectDef, path string, raw json.RawMessage, each bool) {
	f, ok := ps.fields(path, raw, "type", "data")
	if !ok {
		return
	}
	od := &onDeadDef{}
	if raw, ok := f["type"]; ok {
		if s, ok := ps.str(pointer(path, "type"), raw); ok {
			if _, declared := ps.d.inputs[s]; !declared {
				ps.p.add(pointer(path, "type"), "input %q is not declared in inputs", s)
			}
			od.inputType = s
		}
	} else {
		ps.p.add(pointer(path, "type"), "is required")
	}
	if raw, ok := f["data"]; ok {
		if s, ok := ps.str(pointer(path, "data"), raw); ok {
			od.data = ps.compileExprIn(ps.onDeadEnv(each), pointer(path, "data"), s, wantObject)
		}
	}
	eff.onDead = od
	if ps.d.onDead == nil {
		ps.d.onDead = map[string]*effectDef{}
	}
	ps.d.onDead[eff.path] = eff
}

// onDeadEnv is the expression environment of on_dead data: the definition's, with
// effect besides, and item and index with each (an effect with for_each). Without
// for_each an expression that names item fails to compile, as its payload would.
// Each is built once per Parse, on first use.
func (ps *parser) onDeadEnv(each bool) *cel.Env {
	if ps.deadEnv == nil && ps.deadEnvErr == nil {
		ps.deadEnv, ps.deadEnvErr = ps.env.Extend(cel.Variable("effect", cel.MapType(cel.StringType, cel.DynType)))
	}
	if each && ps.deadEach == nil && ps.deadEnvErr == nil {
		ps.deadEach, ps.deadEnvErr = ps.deadEnv.Extend(cel.Variable("item", cel.DynType), cel.Variable("index", cel.IntType))
	}
	switch {
	case ps.deadEnvErr != nil:
		return ps.env // reported by compiling against an env without effect
	case each:
		return ps.deadEach
	}
	return ps.deadEnv
}

// OnDeadInput returns the on_dead input of the effect declared at effectPath (the
// store's Effect.OnDead) that died as dead, for the instance wf in state: its type,
// and its data evaluated with effect in scope ({} without a data expression). For an
// effect declared with for_each, item and index are dead.Item (decoded as state data
// is: numbers are doubles) and dead.Index; with no Item kept (a row written before
// elements were kept) item is null and index -1. Errors: ErrInvalidDefinition
// (wrapped) when no effect with on_dead is declared there; a *ValidationError wrapping
// ErrEvaluation or ErrTooLarge when the expression fails; ErrInvalidState (wrapped)
// for state data that is not an object, or a kept item that is not JSON. Decide the
// input as any other.
func (d *Definition) OnDeadInput(ctx context.Context, wf Ref, state State, effectPath string, dead DeadEffect, now time.Time) (Input, error) {
	eff := d.onDead[effectPath]
	if eff == nil || eff.onDead == nil {
		return Input{}, fmt.Errorf("no effect with on_dead at %q in the definition of %q: %w", effectPath, d.typ, ErrInvalidDefinition)
	}
	in := Input{Type: eff.onDead.inputType, Data: json.RawMessage(`{}`)}
	if eff.onDead.data == nil {
		return in, nil
	}
	stateCEL, err := decodeStateData(state.Data)
	if err != nil {
		return Input{}, err
	}
	act := newActivation(ctx, d.limits, wf, state.Name, stateCEL, in.Type, map[string]any{}, now)
	act.vars["effect"] = map[string]any{
		"id": dead.ID, "name": dead.Name, "key": dead.Key, "attempts": int64(dead.Attempts),
		"last_status": int64(dead.LastStatus), "last_error": dead.LastError,
	}
	if eff.forEach != nil {
		if act.vars["item"], act.vars["index"], err = deadItem(dead); err != nil {
			return Input{}, err
		}
	}
	if in.Data, err = eff.onDead.data.evalObject(act); err != nil {
		return Input{}, err
	}
	return in, nil
}

// deadItem is what an on_dead expression sees as item and index of dead: its element
// decoded as state data is, and its position; null and -1 when no element was kept.
// Errors: ErrInvalidState (wrapped) for an element that is not JSON.
func deadItem(dead DeadEffect) (any, types.Int, error) {
	if dead.Item == nil {
		return nil, -1, nil
	}
	v, err := decodeValue(dead.Item)
	if err == nil {
		v, err = jsonToCEL(v)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("effect %s item: %v: %w", dead.ID, err, ErrInvalidState)
	}
	return v, types.Int(dead.Index), nil
}
