package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/cel-go/cel"
)

// onDeadDef is an effect's on_dead: the input that runs on the instance when the effect
// dies.
type onDeadDef struct {
	inputType string
	data      *expr // nil: {}
}

// DeadEffect is what an on_dead expression sees of the effect that died, as effect
// {id, name, key, attempts, last_status, last_error}.
type DeadEffect struct {
	ID         string
	Name       string
	Key        string
	Attempts   int    // attempts made in the budget it spent
	LastStatus int    // status code of the last attempt, 0 when no response arrived
	LastError  string // why the last attempt failed
}

// parseOnDead reads the on_dead member of the effect at path: a declared input type
// and an optional data expression that also sees effect.
func (ps *parser) parseOnDead(eff *effectDef, path string, raw json.RawMessage) {
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
			od.data = ps.compileExprIn(ps.onDeadEnv(), pointer(path, "data"), s, wantObject)
		}
	}
	eff.onDead = od
	if ps.d.onDead == nil {
		ps.d.onDead = map[string]*effectDef{}
	}
	ps.d.onDead[eff.path] = eff
}

// onDeadEnv is the expression environment of on_dead data: the definition's, with
// effect besides. Built once per Parse, on first use.
func (ps *parser) onDeadEnv() *cel.Env {
	if ps.deadEnv == nil && ps.deadEnvErr == nil {
		ps.deadEnv, ps.deadEnvErr = ps.env.Extend(cel.Variable("effect", cel.MapType(cel.StringType, cel.DynType)))
	}
	if ps.deadEnvErr != nil {
		return ps.env // reported by compiling against an env without effect
	}
	return ps.deadEnv
}

// OnDeadInput returns the on_dead input of the effect declared at effectPath (the
// store's Effect.OnDead) that died as dead, for the instance wf in state: its type,
// and its data evaluated with effect in scope ({} without a data expression). Errors:
// ErrInvalidDefinition (wrapped) when no effect with on_dead is declared there; a
// *ValidationError wrapping ErrEvaluation or ErrTooLarge when the expression fails;
// ErrInvalidState (wrapped) for state data that is not an object. Decide the input as
// any other.
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
	if in.Data, err = eff.onDead.data.evalObject(act); err != nil {
		return Input{}, err
	}
	return in, nil
}
