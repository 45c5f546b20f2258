package workflow

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/google/cel-go/cel"
)

// Size limits of one definition.
const (
	maxStates   = 1000
	maxInputs   = 1000
	maxBranches = 100 // per on[input]
	maxEffects  = 100 // per transition
	maxTimers   = 100 // per state or transition
	maxCancels  = 100 // per transition
)

const (
	namePattern  = "^[a-z][a-z0-9_]{0,62}$"
	eventPattern = "^[A-Za-z][A-Za-z0-9_]{0,62}$"
)

// validName reports whether s matches namePattern (type, state, input, effect and
// timer names).
func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validEventName reports whether s matches eventPattern.
func validEventName(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(isLetter(c) || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// Parse parses and validates the definition body of workflow type typ, compiling
// every CEL expression and input schema once. Unknown fields are errors. On any
// problem it returns a *ValidationError wrapping ErrInvalidDefinition that lists
// every problem found with its JSON pointer into body; the type name's own
// problem has the empty path.
func Parse(typ string, body []byte) (*Definition, error) {
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("build expression environment: %w", err)
	}
	newParser := func(sizeOnly bool) *parser {
		return &parser{
			env:       env,
			d:         &Definition{typ: typ, inputs: map[string]*inputDef{}, states: map[string]*stateDef{}},
			timerKeys: map[string]bool{},
			edges:     map[string][]string{},
			sizeOnly:  sizeOnly,
		}
	}
	// A first pass only measures the CEL source: a definition over the budget is
	// refused before any of it is type-checked.
	sized := newParser(true)
	sized.parse(body)
	if sized.exprOver {
		return nil, &ValidationError{Err: ErrInvalidDefinition, Errors: []FieldError{sized.overAt}}
	}
	ps := newParser(false)
	if !validName(typ) {
		ps.p.add("", "workflow type %q must match %s", typ, namePattern)
	}
	ps.parse(body)
	if len(ps.p.list) > 0 {
		return nil, &ValidationError{Err: ErrInvalidDefinition, Errors: ps.p.list}
	}
	return ps.d, nil
}

// maxDefinitionExprBytes bounds the CEL source of one definition, all
// expressions together. Type-checking a long chain of comparisons costs time that
// grows with the square of its length (about 0.1 s for one 4 KiB chain), so a
// megabyte of them kept a PUT busy for half a minute.
const maxDefinitionExprBytes = 32 << 10

// compileExpr compiles one expression of the definition unless the definition's
// expressions together exceed maxDefinitionExprBytes.
func (ps *parser) compileExpr(path, src string, want resultKind) *expr {
	return ps.compileExprIn(ps.env, path, src, want)
}

// compileItemExpr compiles an expression of a for_each element: it also sees item
// (the element) and index (its position, an int).
func (ps *parser) compileItemExpr(path, src string, want resultKind) *expr {
	if ps.itemEnv == nil && !ps.sizeOnly {
		env, err := ps.env.Extend(cel.Variable("item", cel.DynType), cel.Variable("index", cel.IntType))
		if err != nil {
			ps.p.add(path, "cannot build the for_each expression environment: %v", err)
			return nil
		}
		ps.itemEnv = env
	}
	return ps.compileExprIn(ps.itemEnv, path, src, want)
}

// compileExprIn is compileExpr against env.
func (ps *parser) compileExprIn(env *cel.Env, path, src string, want resultKind) *expr {
	ps.exprBytes += len(src)
	if ps.exprBytes > maxDefinitionExprBytes && !ps.exprOver {
		ps.exprOver = true
		ps.overAt = FieldError{Path: path, Message: fmt.Sprintf("the definition's expressions add up to more than %d bytes, the limit", maxDefinitionExprBytes)}
	}
	if ps.sizeOnly || ps.exprOver {
		return nil
	}
	return compileExpr(env, &ps.p, path, src, want)
}

type cancelRef struct{ path, key string }

type parser struct {
	env        *cel.Env
	itemEnv    *cel.Env // env with item and index, made at the first for_each
	p          problems
	d          *Definition
	timerKeys  map[string]bool     // every timer key defined anywhere
	cancelRefs []cancelRef         // every cancel_timers entry
	edges      map[string][]string // state → target states
	exprBytes  int                 // CEL source seen so far
	exprOver   bool                // exprBytes passed the limit, at overAt
	overAt     FieldError
	sizeOnly   bool     // measure the CEL source, compile nothing
	deadEnv    *cel.Env // env with effect, for on_dead data (onDeadEnv)
	deadEach   *cel.Env // deadEnv with item and index, for an effect with for_each
	deadEnvErr error
	childSends []childSend // sends of children that end with their parent (checkChildSends)
}

// fields splits an object into known members, reporting unknown ones.
func (ps *parser) fields(path string, raw json.RawMessage, known ...string) (map[string]json.RawMessage, bool) {
	members, err := decodeObject(raw)
	if err != nil {
		ps.p.add(path, "%v", err)
		return nil, false
	}
	out := make(map[string]json.RawMessage, len(members))
	for _, m := range members {
		ok := false
		for _, k := range known {
			if m.key == k {
				ok = true
				break
			}
		}
		if !ok {
			ps.p.add(pointer(path, m.key), "unknown field")
			continue
		}
		out[m.key] = m.val
	}
	return out, true
}

func (ps *parser) str(path string, raw json.RawMessage) (string, bool) {
	s, err := decodeString(raw)
	if err != nil {
		ps.p.add(path, "%v", err)
		return "", false
	}
	return s, true
}

// name reads the string at path, which must match namePattern; what names its kind in
// the problem ("effect name"). ok is false when it is no string.
func (ps *parser) name(path string, raw json.RawMessage, what string) (string, bool) {
	s, ok := ps.str(path, raw)
	if ok && !validName(s) {
		ps.p.add(path, "%s %q must match %s", what, s, namePattern)
	}
	return s, ok
}

func (ps *parser) parse(body []byte) {
	f, ok := ps.fields("", body, "description", "initial_state", "unique_key", "inputs", "states", "on_any")
	if !ok {
		return
	}
	if raw, ok := f["description"]; ok {
		ps.d.description, _ = ps.str("/description", raw)
	}
	if raw, ok := f["inputs"]; ok {
		ps.parseInputs(raw)
	}
	statesOK := false
	if raw, ok := f["states"]; ok {
		statesOK = ps.parseStates(raw)
	} else {
		ps.p.add("/states", "is required")
	}
	if raw, ok := f["initial_state"]; ok {
		if s, ok := ps.str("/initial_state", raw); ok {
			ps.d.initial = s
			if init, known := ps.d.states[s]; statesOK && !known {
				ps.p.add("/initial_state", "unknown state %q", s)
			} else if known && init.terminal {
				ps.p.add("/initial_state", "the initial state %q cannot be terminal: no instance could ever start", s)
			}
		}
	} else {
		ps.p.add("/initial_state", "is required")
	}
	if raw, ok := f["on_any"]; ok && statesOK {
		ps.parseOnAny(raw)
	}
	if raw, ok := f["unique_key"]; ok {
		if s, ok := ps.str("/unique_key", raw); ok {
			ps.d.uniqueKey = ps.compileExpr("/unique_key", s, wantString)
		}
	}
	ps.checkChildSends()
	for _, ref := range ps.cancelRefs {
		if !ps.timerKeys[ref.key] {
			ps.p.add(ref.path, "no timer with key %q is defined", ref.key)
		}
	}
	if _, ok := ps.d.states[ps.d.initial]; ok {
		ps.checkReachable()
	}
}

func (ps *parser) parseInputs(raw json.RawMessage) {
	members, err := decodeObject(raw)
	if err != nil {
		ps.p.add("/inputs", "%v", err)
		return
	}
	if len(members) > maxInputs {
		ps.p.add("/inputs", "declares %d inputs; the limit is %d", len(members), maxInputs)
		return
	}
	for _, m := range members {
		path := pointer("/inputs", m.key)
		if !validName(m.key) {
			ps.p.add(path, "input name %q must match %s", m.key, namePattern)
		}
		in := &inputDef{name: m.key}
		ps.d.inputs[m.key] = in
		ps.d.inputOrder = append(ps.d.inputOrder, m.key)
		f, ok := ps.fields(path, m.val, "schema", "description")
		if !ok {
			continue
		}
		if raw, ok := f["description"]; ok {
			in.description, _ = ps.str(pointer(path, "description"), raw)
		}
		if raw, ok := f["schema"]; ok {
			if !ps.sizeOnly {
				in.schema, in.fanout = compileSchema(&ps.p, pointer(path, "schema"), m.key, raw)
			}
		}
	}
}

func (ps *parser) parseStates(raw json.RawMessage) bool {
	members, err := decodeObject(raw)
	if err != nil {
		ps.p.add("/states", "%v", err)
		return false
	}
	if len(members) == 0 {
		ps.p.add("/states", "must declare at least one state")
		return false
	}
	if len(members) > maxStates {
		ps.p.add("/states", "declares %d states; the limit is %d", len(members), maxStates)
		return false
	}
	// Collect every name first so transitions may target states declared later.
	for _, m := range members {
		if !validName(m.key) {
			ps.p.add(pointer("/states", m.key), "state name %q must match %s", m.key, namePattern)
		}
		ps.d.states[m.key] = &stateDef{name: m.key, on: map[string]*handler{}}
		ps.d.stateOrder = append(ps.d.stateOrder, m.key)
	}
	for _, m := range members {
		ps.parseState(ps.d.states[m.key], pointer("/states", m.key), m.val)
	}
	return true
}

func (ps *parser) parseState(st *stateDef, path string, raw json.RawMessage) {
	f, ok := ps.fields(path, raw, "terminal", "description", "timers", "on")
	if !ok {
		return
	}
	if raw, ok := f["terminal"]; ok {
		if s, err := decodeString(raw); err == nil {
			if s != EndFailed {
				ps.p.add(pointer(path, "terminal"), "must be true, false or \"failed\", not %q", s)
			}
			st.terminal, st.failed = s == EndFailed, s == EndFailed
		} else if b, err := decodeBool(raw); err == nil {
			st.terminal = b
		} else {
			ps.p.add(pointer(path, "terminal"), "must be true, false or \"failed\", not %s", jsonKind(raw))
		}
	}
	if raw, ok := f["description"]; ok {
		st.description, _ = ps.str(pointer(path, "description"), raw)
	}
	if raw, ok := f["timers"]; ok {
		st.timers = ps.parseTimers(pointer(path, "timers"), raw, false)
		if st.terminal && len(st.timers) > 0 {
			ps.p.add(pointer(path, "timers"), "a terminal state cannot have timers")
		}
	}
	raw, ok = f["on"]
	if !ok {
		return
	}
	onPath := pointer(path, "on")
	members, err := decodeObject(raw)
	if err != nil {
		ps.p.add(onPath, "%v", err)
		return
	}
	if st.terminal && len(members) > 0 {
		ps.p.add(onPath, "a terminal state cannot have transitions")
	}
	for _, m := range members {
		hPath := pointer(onPath, m.key)
		if _, ok := ps.d.inputs[m.key]; !ok {
			ps.p.add(hPath, "input %q is not declared in inputs", m.key)
		}
		h := ps.parseHandler(st.name, hPath, m.val)
		if h == nil {
			continue
		}
		h.input = m.key
		st.on[m.key] = h
		st.onOrder = append(st.onOrder, m.key)
	}
}

// anyState is the from of on_any transitions while they are parsed: they apply to
// many states, so their targets are no edge of one state.
const anyState = ""

// parseOnAny parses the top-level on_any: per input, transitions (one or guarded
// branches) for every non-terminal state that has no on entry of its own for it.
// Each counts as an edge from every such state when reachability is checked.
func (ps *parser) parseOnAny(raw json.RawMessage) {
	members, err := decodeObject(raw)
	if err != nil {
		ps.p.add("/on_any", "%v", err)
		return
	}
	ps.d.onAny = map[string]*handler{}
	for _, m := range members {
		hPath := pointer("/on_any", m.key)
		if _, ok := ps.d.inputs[m.key]; !ok {
			ps.p.add(hPath, "input %q is not declared in inputs", m.key)
		}
		h := ps.parseHandler(anyState, hPath, m.val)
		if h == nil {
			continue
		}
		h.input = m.key
		ps.d.onAny[m.key] = h
		ps.d.onAnyOrder = append(ps.d.onAnyOrder, m.key)
		for _, name := range ps.d.stateOrder {
			st := ps.d.states[name]
			if st.terminal || st.on[m.key] != nil {
				continue
			}
			for _, b := range h.branches {
				if _, known := ps.d.states[b.to]; known && b.to != name {
					ps.edges[name] = append(ps.edges[name], b.to)
				}
			}
		}
	}
}

func (ps *parser) parseHandler(from, path string, raw json.RawMessage) *handler {
	switch jsonKind(raw) {
	case "an object":
		b := ps.parseBranch(from, path, raw, false)
		if b == nil {
			return nil
		}
		return &handler{branches: []*branch{b}}
	case "an array":
		elems, err := decodeArray(raw)
		if err != nil {
			ps.p.add(path, "%v", err)
			return nil
		}
		if len(elems) == 0 {
			ps.p.add(path, "must list at least one branch")
			return nil
		}
		if len(elems) > maxBranches {
			ps.p.add(path, "lists %d branches; the limit is %d", len(elems), maxBranches)
			return nil
		}
		h := &handler{}
		always := -1
		for i, e := range elems {
			bPath := pointer(path, strconv.Itoa(i))
			if always >= 0 && always == i-1 {
				ps.p.add(bPath, "unreachable: branch %d has no if, so it always matches", always)
			}
			b := ps.parseBranch(from, bPath, e, true)
			if b == nil {
				continue
			}
			if b.cond == nil && always < 0 {
				always = i
			}
			h.branches = append(h.branches, b)
		}
		return h
	default:
		ps.p.add(path, "must be a transition object or a list of branches, not %s", jsonKind(raw))
		return nil
	}
}

func (ps *parser) parseBranch(from, path string, raw json.RawMessage, inList bool) *branch {
	f, ok := ps.fields(path, raw, "if", "reject", "to", "reenter", "event", "data", "effects", "timers", "cancel_timers")
	if !ok {
		return nil
	}
	b := &branch{path: path}
	if raw, ok := f["if"]; ok {
		if !inList {
			ps.p.add(pointer(path, "if"), "if is only allowed in a list of branches")
		} else if s, ok := ps.str(pointer(path, "if"), raw); ok {
			b.cond = ps.compileExpr(pointer(path, "if"), s, wantBool)
			if b.cond == nil {
				// Keep the branch guarded so a broken if does not also report
				// the branches after it as unreachable.
				b.cond = &expr{path: pointer(path, "if")}
			}
		}
	}
	if raw, ok := f["reject"]; ok {
		b.isReject = true
		if s, ok := ps.str(pointer(path, "reject"), raw); ok {
			if s == "" {
				ps.p.add(pointer(path, "reject"), "reason must not be empty")
			}
			b.reject = s
		}
		for _, k := range []string{"to", "reenter", "event", "data", "effects", "timers", "cancel_timers"} {
			if _, ok := f[k]; ok {
				ps.p.add(pointer(path, k), "not allowed in a branch that rejects")
			}
		}
		return b
	}
	if raw, ok := f["to"]; ok {
		if s, ok := ps.str(pointer(path, "to"), raw); ok {
			if _, known := ps.d.states[s]; !known {
				ps.p.add(pointer(path, "to"), "unknown state %q", s)
			} else if s != from && from != anyState {
				ps.edges[from] = append(ps.edges[from], s)
			}
			b.to = s
		}
	}
	if raw, ok := f["reenter"]; ok {
		rPath := pointer(path, "reenter")
		v, err := decodeBool(raw)
		switch {
		case err != nil:
			ps.p.add(rPath, "must be true or false, not %s", jsonKind(raw))
		case !v:
		case from == anyState && b.to != "":
			ps.p.add(rPath, "an on_any transition that reenters stays in the state the input arrives in, so it cannot have a to")
		case b.to != "" && b.to != from:
			ps.p.add(rPath, "only a transition that stays in its state can reenter it; this one moves to %q", b.to)
		default:
			b.reenter = true
		}
	}
	if raw, ok := f["event"]; ok {
		if s, ok := ps.str(pointer(path, "event"), raw); ok {
			if !validEventName(s) {
				ps.p.add(pointer(path, "event"), "event name %q must match %s", s, eventPattern)
			}
			b.event = s
		}
	}
	if raw, ok := f["data"]; ok {
		if s, ok := ps.str(pointer(path, "data"), raw); ok {
			b.data = ps.compileExpr(pointer(path, "data"), s, wantObject)
		}
	}
	if raw, ok := f["effects"]; ok {
		b.effects = ps.parseEffects(pointer(path, "effects"), b.to, raw)
	}
	if raw, ok := f["timers"]; ok {
		b.timers = ps.parseTimers(pointer(path, "timers"), raw, true)
	}
	if raw, ok := f["cancel_timers"]; ok {
		b.cancel = ps.parseCancels(pointer(path, "cancel_timers"), raw)
	}
	return b
}

// parseEffects parses a transition's effects; to is the state it moves to ("": it
// stays).
func (ps *parser) parseEffects(path, to string, raw json.RawMessage) []*effectDef {
	elems, err := decodeArray(raw)
	if err != nil {
		ps.p.add(path, "%v", err)
		return nil
	}
	if len(elems) > maxEffects {
		ps.p.add(path, "lists %d effects; the limit is %d", len(elems), maxEffects)
		return nil
	}
	var out []*effectDef
	for i, e := range elems {
		ePath := pointer(path, strconv.Itoa(i))
		f, ok := ps.fields(ePath, e, "name", "payload", "retry", "timeout", "scope", "on_dead", "for_each", "key", "send")
		if !ok {
			continue
		}
		eff := &effectDef{path: ePath}
		compile := ps.compileExpr
		if raw, ok := f["for_each"]; ok {
			if s, ok := ps.str(pointer(ePath, "for_each"), raw); ok {
				eff.forEach = ps.compileExpr(pointer(ePath, "for_each"), s, wantList)
			}
			compile = ps.compileItemExpr
		}
		if raw, ok := f["key"]; ok {
			if _, each := f["for_each"]; !each {
				ps.p.add(pointer(ePath, "key"), "key names the effects of a for_each; this effect has no for_each")
			} else if s, ok := ps.str(pointer(ePath, "key"), raw); ok {
				eff.key = compile(pointer(ePath, "key"), s, wantString)
			}
		}
		if raw, ok := f["name"]; ok {
			if s, ok := ps.name(pointer(ePath, "name"), raw, "effect name"); ok {
				eff.name = s
			}
		} else {
			ps.p.add(pointer(ePath, "name"), "is required")
		}
		if raw, ok := f["send"]; ok {
			ps.parseSend(eff, pointer(ePath, "send"), raw, compile)
			if _, ok := f["payload"]; ok {
				ps.p.add(pointer(ePath, "payload"), "a send effect has no payload: what it sends is send.input")
			}
			if eff.send != nil && eff.send.child != nil && eff.send.child.OnParentEnd == ParentEndTerminate {
				ps.d.children = true
				if to != "" {
					ps.childSends = append(ps.childSends, childSend{path: pointer(ePath, "send", "child"), to: to})
				}
			}
		} else if raw, ok := f["payload"]; ok {
			if s, ok := ps.str(pointer(ePath, "payload"), raw); ok {
				eff.payload = compile(pointer(ePath, "payload"), s, wantObject)
			}
		}
		ps.parseEffectPolicy(eff, ePath, f)
		if raw, ok := f["on_dead"]; ok {
			_, each := f["for_each"]
			ps.parseOnDead(eff, pointer(ePath, "on_dead"), raw, each)
		}
		out = append(out, eff)
	}
	return out
}

// parseTimers parses a timers list: a state's, or a transition's (onTransition),
// whose timers may have for_each.
func (ps *parser) parseTimers(path string, raw json.RawMessage, onTransition bool) []*timerDef {
	elems, err := decodeArray(raw)
	if err != nil {
		ps.p.add(path, "%v", err)
		return nil
	}
	if len(elems) > maxTimers {
		ps.p.add(path, "lists %d timers; the limit is %d", len(elems), maxTimers)
		return nil
	}
	var out []*timerDef
	seen := map[string]bool{}
	for i, e := range elems {
		tPath := pointer(path, strconv.Itoa(i))
		f, ok := ps.fields(tPath, e, "key", "after", "at", "input", "for_each")
		if !ok {
			continue
		}
		t := &timerDef{path: tPath}
		compile := ps.compileExpr
		if raw, ok := f["for_each"]; ok {
			if !onTransition {
				ps.p.add(pointer(tPath, "for_each"), "for_each is only allowed on a transition's timers: a state's timers are armed once per entry")
			} else if s, ok := ps.str(pointer(tPath, "for_each"), raw); ok {
				t.forEach = ps.compileExpr(pointer(tPath, "for_each"), s, wantList)
				// Keep a broken for_each recognisable, so key and data are not
				// read as literals.
				if t.forEach == nil {
					t.forEach = &expr{path: pointer(tPath, "for_each")}
				}
			}
			compile = ps.compileItemExpr
		}
		if raw, ok := f["key"]; ok && t.forEach != nil {
			// With for_each the key is an expression: one key per element.
			if s, ok := ps.str(pointer(tPath, "key"), raw); ok {
				t.keyExpr = compile(pointer(tPath, "key"), s, wantString)
			}
		} else if ok {
			if s, ok := ps.str(pointer(tPath, "key"), raw); ok {
				switch {
				case !validName(s):
					ps.p.add(pointer(tPath, "key"), "timer key %q must match %s", s, namePattern)
				case seen[s]:
					ps.p.add(pointer(tPath, "key"), "duplicate timer key %q", s)
				}
				seen[s] = true
				ps.timerKeys[s] = true
				t.key = s
			}
		} else {
			ps.p.add(pointer(tPath, "key"), "is required")
		}
		rawAfter, hasAfter := f["after"]
		rawAt, hasAt := f["at"]
		switch {
		case hasAfter && hasAt:
			ps.p.add(tPath, "set either after or at, not both")
		case !hasAfter && !hasAt:
			ps.p.add(tPath, "one of after or at is required")
		case hasAfter:
			if s, ok := ps.str(pointer(tPath, "after"), rawAfter); ok {
				dur, _ := ps.duration(pointer(tPath, "after"), s)
				t.after, t.afterText = dur, s
			}
		default:
			if s, ok := ps.str(pointer(tPath, "at"), rawAt); ok {
				t.at = compile(pointer(tPath, "at"), s, wantTimestamp)
			}
		}
		if raw, ok := f["input"]; ok {
			ps.parseTimerInput(t, pointer(tPath, "input"), raw)
		} else {
			ps.p.add(pointer(tPath, "input"), "is required")
		}
		out = append(out, t)
	}
	return out
}

// parseTimerInput checks the input a timer fires, including its literal data
// against the input's schema, so a timer can never fire an input that fails.
func (ps *parser) parseTimerInput(t *timerDef, path string, raw json.RawMessage) {
	f, ok := ps.fields(path, raw, "type", "data")
	if !ok {
		return
	}
	raw, ok = f["type"]
	if !ok {
		ps.p.add(pointer(path, "type"), "is required")
		return
	}
	s, ok := ps.str(pointer(path, "type"), raw)
	if !ok {
		return
	}
	t.inputType = s
	in, declared := ps.d.inputs[s]
	if !declared {
		ps.p.add(pointer(path, "type"), "input %q is not declared in inputs", s)
	}
	data := json.RawMessage(`{}`)
	if raw, ok := f["data"]; ok && t.forEach != nil && jsonKind(raw) == "a string" {
		// A for_each timer's data may be an expression per element; its result
		// is checked against the schema when the timer is scheduled.
		if s, ok := ps.str(pointer(path, "data"), raw); ok {
			t.dataExpr = ps.compileItemExpr(pointer(path, "data"), s, wantObject)
		}
		return
	}
	if raw, ok := f["data"]; ok {
		c, err := compactJSON(raw)
		if err != nil {
			ps.p.add(pointer(path, "data"), "invalid JSON: %v", err)
			return
		}
		t.inputData, data = c, c
	}
	if declared {
		in.checkData(&ps.p, pointer(path, "data"), data)
	}
}

// parseCancels parses cancel_timers: each entry a declared key, or {"key": "<CEL>"}
// computing one, for the timers a for_each scheduled.
func (ps *parser) parseCancels(path string, raw json.RawMessage) []cancelDef {
	elems, err := decodeArray(raw)
	if err != nil {
		ps.p.add(path, "%v", err)
		return nil
	}
	if len(elems) > maxCancels {
		ps.p.add(path, "lists %d keys; the limit is %d", len(elems), maxCancels)
		return nil
	}
	var out []cancelDef
	for i, e := range elems {
		kPath := pointer(path, strconv.Itoa(i))
		if jsonKind(e) == "an object" {
			f, ok := ps.fields(kPath, e, "key")
			if !ok {
				continue
			}
			raw, ok := f["key"]
			if !ok {
				ps.p.add(pointer(kPath, "key"), "is required")
				continue
			}
			if s, ok := ps.str(pointer(kPath, "key"), raw); ok {
				if x := ps.compileExpr(pointer(kPath, "key"), s, wantString); x != nil {
					out = append(out, cancelDef{expr: x})
				}
			}
			continue
		}
		s, ok := ps.str(kPath, e)
		if !ok {
			continue
		}
		if !validName(s) {
			ps.p.add(kPath, "timer key %q must match %s", s, namePattern)
			continue
		}
		ps.cancelRefs = append(ps.cancelRefs, cancelRef{path: kPath, key: s})
		out = append(out, cancelDef{key: s})
	}
	return out
}

// checkReachable reports every state no chain of transitions leads to from the
// initial state.
func (ps *parser) checkReachable() {
	seen := map[string]bool{ps.d.initial: true}
	queue := []string{ps.d.initial}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, t := range ps.edges[s] {
			if !seen[t] {
				seen[t] = true
				queue = append(queue, t)
			}
		}
	}
	for _, name := range ps.d.stateOrder {
		if !seen[name] {
			ps.p.add(pointer("/states", name), "state is unreachable from initial state %q", ps.d.initial)
		}
	}
}
