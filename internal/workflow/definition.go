package workflow

import (
	"encoding/json"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Definition is a parsed, validated and compiled workflow definition. It is
// immutable and safe for concurrent use; build it once per type and version with
// Parse and reuse it for every decision.
type Definition struct {
	typ         string
	description string
	initial     string
	uniqueKey   *expr
	inputs      map[string]*inputDef
	inputOrder  []string
	states      map[string]*stateDef
	stateOrder  []string
	onAny       map[string]*handler // input → transitions of every non-terminal state without its own
	onAnyOrder  []string
	limits      Limits
	stateScoped bool                  // some effect has scope "state"
	onDead      map[string]*effectDef // effects with on_dead, by path
	children    bool                  // some send has a child terminated when its parent ends
}

type inputDef struct {
	name        string
	description string
	schema      *jsonschema.Schema // nil: any data
	fanout      int                // of schema (schemaFanout)
}

type stateDef struct {
	name        string
	description string
	terminal    bool
	failed      bool // terminal: "failed": entering it fails the instance
	timers      []*timerDef
	on          map[string]*handler
	onOrder     []string
}

// handler is on[input]: one transition (a single branch) or guarded branches.
type handler struct {
	input    string
	branches []*branch
}

type branch struct {
	path     string // of the branch object, for error paths
	cond     *expr  // nil: always
	isReject bool
	reject   string
	to       string // "": stay
	reenter  bool   // staying leaves the state and enters it again
	event    string // "": the input type
	data     *expr  // nil: the input data
	effects  []*effectDef
	timers   []*timerDef
	cancel   []cancelDef
}

type effectDef struct {
	path    string // of the effect object
	name    string
	payload *expr  // nil: the event data
	scope   string // ScopeInstance or ScopeState
	policy  EffectPolicy
	onDead  *onDeadDef // nil: none
	forEach *expr      // a list: one effect per element; nil: one effect
	key     *expr      // with forEach: the key per element; nil: string(index)
	send    *sendDef   // nil: a webhook effect
}

// cancelDef is one cancel_timers entry: a key the definition declares, or an
// expression that computes one (a for_each timer's).
type cancelDef struct {
	key  string
	expr *expr // nil: key
}

type timerDef struct {
	path      string // of the timer object
	forEach   *expr  // a list: one timer per element (transition timers only)
	keyExpr   *expr  // with forEach: the key per element, instead of key
	dataExpr  *expr  // with forEach: input data per element; nil: inputData
	key       string
	after     time.Duration
	afterText string
	at        *expr // nil: now + after
	inputType string
	inputData json.RawMessage // compact; nil when absent
}

// Ref names an instance. CEL sees it as workflow {type, id}.
type Ref struct {
	Type string
	ID   string
}

// State is an instance's state. Data is always a JSON object.
type State struct {
	Name string          `json:"name"`
	Data json.RawMessage `json:"data"`
}

// Input is something sent to an instance. Empty Data means {}.
type Input struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Type returns the workflow type name the definition was parsed for.
func (d *Definition) Type() string { return d.typ }

// Description returns the definition's description ("" when absent).
func (d *Definition) Description() string { return d.description }

// InitialState returns the state a new instance starts in: the initial state
// with data {}.
func (d *Definition) InitialState() State {
	return State{Name: d.initial, Data: json.RawMessage(`{}`)}
}

// IsTerminal reports whether state is declared terminal. Unknown states are not.
func (d *Definition) IsTerminal(state string) bool {
	s, ok := d.states[state]
	return ok && s.terminal
}

// Ending kinds of a terminal state (EndStatus).
const (
	EndCompleted = "completed"
	EndFailed    = "failed"
)

// EndStatus returns how entering state ends an instance: EndCompleted for
// "terminal": true, EndFailed for "terminal": "failed", "" for a state that is not
// terminal (or unknown).
func (d *Definition) EndStatus(state string) string {
	s, ok := d.states[state]
	switch {
	case !ok || !s.terminal:
		return ""
	case s.failed:
		return EndFailed
	}
	return EndCompleted
}

// ScopesEffectsToStates reports whether some effect of the definition has scope
// "state", so that leaving a state may have effects to cancel (Decision.LeavesState).
func (d *Definition) ScopesEffectsToStates() bool { return d.stateScoped }

// HasUniqueKey reports whether the definition declares unique_key.
func (d *Definition) HasUniqueKey() bool { return d.uniqueKey != nil }

// States returns the state names in the order the definition declares them.
func (d *Definition) States() []string { return append([]string(nil), d.stateOrder...) }

// Inputs returns the input type names in the order the definition declares them.
func (d *Definition) Inputs() []string { return append([]string(nil), d.inputOrder...) }
