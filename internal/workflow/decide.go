package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Decision is what one input does to an instance.
type Decision struct {
	// Accepted is false when the input was rejected; Reason says why.
	Accepted bool
	Reason   string
	// Event is the one event an accepted input records.
	Event Event
	// Effects are the effects to put in the outbox, in definition order.
	Effects []Effect
	// Timers are timers to schedule: the transition's timers, then the timers
	// of the state being entered. Keys are unique; a later one replaces an
	// earlier one with the same key.
	Timers []Timer
	// CancelTimers are keys to cancel: the timers of the state being left, then
	// the transition's cancel_timers. Keys are unique. A key can be both here
	// and in Timers (leaving and entering states that share a timer key): apply
	// cancels first, so it ends scheduled.
	CancelTimers []string
	// NewState is Evolve(state, Event) when accepted, the unchanged state when
	// rejected.
	NewState State
	// Completed reports that NewState is terminal.
	Completed bool
	// Failed reports that NewState is terminal with "terminal": "failed": the
	// instance ends failed rather than completed.
	Failed bool
	// LeavesState reports that the instance leaves the state it was in (a transition
	// to another state, or one that stays with "reenter": true): its undelivered
	// state-scoped effects are cancelled, in the transaction that records the
	// decision. It is false for the input that creates an instance.
	LeavesState bool
}

// Event is the fact an accepted input records. Evolve applies it to a state.
type Event struct {
	Type      string          `json:"type"`
	From      string          `json:"from"`
	To        string          `json:"to"`
	Data      json.RawMessage `json:"data"`
	InputType string          `json:"input_type"`
}

// Effect is a side effect to deliver. Payload is a JSON object. Policy is how it is
// delivered (zero fields: the server's settings). OnDead, when the effect declares
// on_dead, locates its declaration for Definition.OnDeadInput ("" otherwise). Key
// tells apart the effects a for_each emits, one per element: the effect's key
// expression, or the element's index ("0", "1", …); it is unique per name within a
// decision, and "" for an effect without for_each. Send, for an effect declared with
// send, is the instance its input goes to; its Payload is then that input {"type",
// "data"}. Item and Index, for an effect of a for_each whose on_dead has a data
// expression, are the element it was emitted for, as compact JSON (at most the data
// limit), and its position: what that expression sees as item and index when the
// effect dies (DeadEffect). Item is nil for every other effect, which keeps nothing
// no expression will read.
type Effect struct {
	Name    string
	Key     string
	Payload json.RawMessage
	Policy  EffectPolicy
	OnDead  string
	Send    *Send
	Item    json.RawMessage
	Index   int
}

// Timer is an input to execute at FireAt. Input.Data is empty when the
// definition gives none (meaning {}).
type Timer struct {
	Key    string
	FireAt time.Time
	Input  Input
}

// Decide decides what input in does to an existing instance wf in state. It is
// pure: the same arguments always give the same Decision, and it never panics.
//
// A rejection is not an error: it is a Decision with Accepted false. Errors:
// ErrUnknownInput (wrapped) when the input type is not declared;
// *ValidationError wrapping ErrInvalidInput when its data is not JSON or fails
// the schema; *ValidationError wrapping ErrEvaluation when an expression fails;
// ErrInvalidState (wrapped) when state cannot belong to d.
//
// Staying in a state (no "to", or "to" naming the current state) neither leaves
// nor enters it, so its state timers are left alone, unless the transition has
// "reenter": true: then the state is left and entered again (LeavesState). An input
// the state has no entry for is decided by the definition's on_any entry for it,
// if any. Use DecideNew for the input that creates an instance.
func Decide(d *Definition, wf Ref, state State, in Input, now time.Time) (Decision, error) {
	return decide(context.Background(), d, wf, state, in, now, false)
}

// DecideContext is Decide that stops evaluating expressions once ctx is done: a
// decision whose client went away, or that overran its time budget, is abandoned
// with an error wrapping ctx.Err(). ctx changes nothing else: the decision stays
// pure.
func DecideContext(ctx context.Context, d *Definition, wf Ref, state State, in Input, now time.Time) (Decision, error) {
	return decide(ctx, d, wf, state, in, now, false)
}

// DecideNew decides the input that creates instance wf: it runs from
// d.InitialState() and treats the instance as entering the initial state, so
// when the first transition stays there the initial state's timers are
// scheduled, and when it moves on they are neither scheduled nor cancelled (they
// never existed) while the target state's timers are scheduled. Errors are those
// of Decide. A rejected first input creates nothing.
func DecideNew(d *Definition, wf Ref, in Input, now time.Time) (Decision, error) {
	return DecideNewContext(context.Background(), d, wf, in, now)
}

// DecideNewContext is DecideNew abandoned once ctx is done, as DecideContext.
func DecideNewContext(ctx context.Context, d *Definition, wf Ref, in Input, now time.Time) (Decision, error) {
	if d == nil {
		return Decision{}, fmt.Errorf("decide: nil definition: %w", ErrInvalidDefinition)
	}
	return decide(ctx, d, wf, d.InitialState(), in, now, true)
}

func decide(ctx context.Context, d *Definition, wf Ref, state State, in Input, now time.Time, creating bool) (Decision, error) {
	if d == nil {
		return Decision{}, fmt.Errorf("decide: nil definition: %w", ErrInvalidDefinition)
	}
	st, ok := d.states[state.Name]
	if !ok {
		return Decision{}, fmt.Errorf("state %q is not in the definition of %q: %w", state.Name, d.typ, ErrInvalidState)
	}
	inRaw, inVal, err := d.checkInput(in)
	if err != nil {
		return Decision{}, err
	}
	inCEL, err := jsonToCEL(inVal)
	if err != nil {
		return Decision{}, &ValidationError{Err: ErrInvalidInput, Errors: []FieldError{{Path: "/data", Message: err.Error()}}}
	}
	stateCEL, err := decodeStateData(state.Data)
	if err != nil {
		return Decision{}, err
	}
	reject := func(format string, args ...any) (Decision, error) {
		return Decision{Reason: fmt.Sprintf(format, args...), NewState: state}, nil
	}

	h, ok := st.on[in.Type]
	if !ok && !st.terminal {
		// A state's own entry for an input wins over on_any.
		h, ok = d.onAny[in.Type]
	}
	if !ok {
		return reject("input '%s' is not accepted in state '%s'", in.Type, state.Name)
	}
	act := newActivation(ctx, d.limits, wf, state.Name, stateCEL, in.Type, inCEL, now)
	var b *branch
	for _, cand := range h.branches {
		if cand.cond == nil {
			b = cand
			break
		}
		ok, err := cand.cond.evalBool(act)
		if err != nil {
			return Decision{}, err
		}
		if ok {
			b = cand
			break
		}
	}
	if b == nil {
		return reject("no branch of input '%s' matched in state '%s'", in.Type, state.Name)
	}
	if b.isReject {
		return reject("%s", b.reject)
	}

	to := state.Name
	if b.to != "" {
		to = b.to
	}
	ev := Event{Type: in.Type, From: state.Name, To: to, InputType: in.Type}
	if b.event != "" {
		ev.Type = b.event
	}
	if b.data != nil {
		if ev.Data, err = b.data.evalObject(act); err != nil {
			return Decision{}, err
		}
	} else if ev.Data, err = defaultEventData(inRaw); err != nil {
		return Decision{}, err
	} else if max := d.limits.maxDataBytes(); len(ev.Data) > max {
		return Decision{}, tooLarge("/data", "the input data, recorded as the event data,", len(ev.Data), max)
	}

	// A transition leaves its state when it moves, or when it stays with reenter:
	// the state's timers are cancelled and scheduled again, its scoped effects
	// cancelled. Creating an instance enters its state without leaving one.
	leaving := to != state.Name || b.reenter
	terminal := d.IsTerminal(to)
	dec := Decision{Accepted: true, Event: ev, LeavesState: leaving && !creating}
	fan := &fanOut{act: act, max: d.limits.maxForEach(), limit: d.limits.maxForEach(), bytesLeft: forEachBytesFactor * d.limits.maxDataBytes()}
	for _, e := range b.effects {
		policy := e.policy
		// The effects of an ending are always delivered: no state is left after it.
		policy.StateScoped = policy.StateScoped && !terminal
		if e.forEach != nil {
			if dec.Effects, err = fan.effects(dec.Effects, e, ev.Data, policy); err != nil {
				return Decision{}, err
			}
			continue
		}
		ef, err := e.emit(act, ev.Data, policy)
		if err != nil {
			return Decision{}, err
		}
		dec.Effects = append(dec.Effects, ef)
	}

	if dec.LeavesState {
		for _, t := range st.timers {
			dec.CancelTimers = addKey(dec.CancelTimers, t.key)
		}
	}
	for _, c := range b.cancel {
		k := c.key
		if c.expr != nil {
			key, ok, err := c.expr.evalString(act)
			if err != nil {
				return Decision{}, err
			}
			if msg := checkTimerKey(key, ok); msg != "" {
				return Decision{}, c.expr.fail("the key %q: %s", key, msg)
			}
			k = key
		}
		dec.CancelTimers = addKey(dec.CancelTimers, k)
	}
	// The transition's timers see what every expression of the transition sees:
	// the state before the input.
	for _, t := range b.timers {
		if t.forEach != nil {
			if dec.Timers, err = fan.timers(d, dec.Timers, t, now); err != nil {
				return Decision{}, err
			}
			continue
		}
		tm, err := t.schedule(act, now)
		if err != nil {
			return Decision{}, err
		}
		dec.Timers = addTimer(dec.Timers, tm)
	}

	if dec.NewState, err = Evolve(state, ev); err != nil {
		return Decision{}, err
	}
	if max := d.limits.maxDataBytes(); len(dec.NewState.Data) > max {
		return Decision{}, tooLarge("/state/data", "the state data after the event", len(dec.NewState.Data), max)
	}
	if leaving || creating {
		// The timers of the state being entered belong to that state: an at
		// expression sees the state as entered, after the event.
		var entered *activation
		for _, t := range d.states[to].timers {
			if t.at != nil && entered == nil {
				data, err := decodeStateData(dec.NewState.Data)
				if err != nil {
					return Decision{}, err
				}
				entered = act.withState(to, data)
			}
			tm, err := t.schedule(entered, now)
			if err != nil {
				return Decision{}, err
			}
			dec.Timers = addTimer(dec.Timers, tm)
		}
	}
	dec.Completed = terminal
	dec.Failed = d.EndStatus(to) == EndFailed
	return dec, nil
}

// ValidateInput checks that in is declared and that its data is JSON and passes
// the input's schema. Errors: ErrUnknownInput (wrapped), or a *ValidationError
// wrapping ErrInvalidInput whose paths point into the input ("/data/amount").
// Empty data is checked as {}.
func (d *Definition) ValidateInput(in Input) error {
	_, _, err := d.checkInput(in)
	return err
}

// UniqueKey evaluates unique_key for the input that creates instance wf, with
// state being the initial state. ok is false when the definition has no
// unique_key or the expression yields null or "" (that instance opts out of
// uniqueness). Errors are those of ValidateInput, or a *ValidationError wrapping
// ErrEvaluation with path "/unique_key".
func (d *Definition) UniqueKey(wf Ref, in Input, now time.Time) (key string, ok bool, err error) {
	if d.uniqueKey == nil {
		return "", false, nil
	}
	_, v, err := d.checkInput(in)
	if err != nil {
		return "", false, err
	}
	c, err := jsonToCEL(v)
	if err != nil {
		return "", false, &ValidationError{Err: ErrInvalidInput, Errors: []FieldError{{Path: "/data", Message: err.Error()}}}
	}
	key, ok, err = d.uniqueKey.evalString(newActivation(context.Background(), d.limits, wf, d.initial, map[string]any{}, in.Type, c, now))
	if err != nil || key == "" {
		return "", false, err
	}
	return key, true, nil
}

// checkInput returns the input's data compacted and decoded (numbers as
// json.Number) once it is declared and valid.
func (d *Definition) checkInput(in Input) (json.RawMessage, any, error) {
	def, ok := d.inputs[in.Type]
	if !ok {
		return nil, nil, fmt.Errorf("input type %q of workflow type %q: %w", in.Type, d.typ, ErrUnknownInput)
	}
	raw := in.Data
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage(`{}`)
	}
	invalid := func(p problems) error {
		return &ValidationError{Err: ErrInvalidInput, Errors: p.list}
	}
	var p problems
	v, ok := def.checkData(&p, "/data", raw)
	if !ok {
		return nil, nil, invalid(p)
	}
	c, err := compactJSON(raw)
	if err != nil {
		p.add("/data", "invalid JSON: %v", err)
		return nil, nil, invalid(p)
	}
	return c, v, nil
}

// decodeStateData decodes state data for CEL; it must be a JSON object.
func decodeStateData(raw json.RawMessage) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}, nil
	}
	v, err := decodeValue(raw)
	if err != nil {
		return nil, fmt.Errorf("state data: %v: %w", err, ErrInvalidState)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("state data is %s, not an object: %w", jsonKind(raw), ErrInvalidState)
	}
	if _, err := jsonToCEL(obj); err != nil {
		return nil, fmt.Errorf("state data: %v: %w", err, ErrInvalidState)
	}
	return obj, nil
}

// defaultEventData is the event data of a transition without a data
// expression: the input data as sent, null meaning {}.
func defaultEventData(inRaw json.RawMessage) (json.RawMessage, error) {
	switch jsonKind(inRaw) {
	case "an object":
		return inRaw, nil
	case "null":
		return json.RawMessage(`{}`), nil
	}
	return nil, &ValidationError{Err: ErrInvalidInput, Errors: []FieldError{{
		Path:    "/data",
		Message: fmt.Sprintf("is %s, but this transition records the input data as its event data, which must be an object", jsonKind(inRaw)),
	}}}
}

// emit evaluates the effect under act: its payload (eventData without a payload
// expression), or for a send its target and input.
func (e *effectDef) emit(act *activation, eventData json.RawMessage, policy EffectPolicy) (Effect, error) {
	ef := Effect{Name: e.name, Payload: eventData, Policy: policy}
	if e.onDead != nil {
		ef.OnDead = e.path
	}
	var err error
	switch {
	case e.send != nil:
		ef.Send, ef.Payload, err = e.send.eval(act)
	case e.payload != nil:
		ef.Payload, err = e.payload.evalObject(act)
	}
	if err != nil {
		return Effect{}, err
	}
	return ef, nil
}

func (t *timerDef) schedule(act *activation, now time.Time) (Timer, error) {
	tm := Timer{Key: t.key, Input: Input{Type: t.inputType, Data: t.inputData}}
	if t.at != nil {
		at, err := t.at.evalTimestamp(act)
		if err != nil {
			return Timer{}, err
		}
		tm.FireAt = at
	} else {
		tm.FireAt = now.UTC().Add(t.after)
	}
	return tm, nil
}

func addKey(keys []string, k string) []string {
	for _, have := range keys {
		if have == k {
			return keys
		}
	}
	return append(keys, k)
}

func addTimer(timers []Timer, t Timer) []Timer {
	for i := range timers {
		if timers[i].Key == t.Key {
			timers[i] = t
			return timers
		}
	}
	return append(timers, t)
}
