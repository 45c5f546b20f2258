package workflow

import (
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// What a child does when its parent ends (Child.OnParentEnd).
const (
	// ParentEndTerminate: the child, still running, is terminated (the default).
	ParentEndTerminate = "terminate"
	// ParentEndAbandon: the child runs on.
	ParentEndAbandon = "abandon"
)

// MaxIDLength is the most characters an instance id has.
const MaxIDLength = 200

// ValidID reports whether id can name an instance: 1 to MaxIDLength printable
// characters of valid UTF-8.
func ValidID(id string) bool {
	if id == "" || !utf8.ValidString(id) || utf8.RuneCountInString(id) > MaxIDLength {
		return false
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Send is where a send effect delivers its input: to the instance ID of WorkflowType
// (created when the input may create it). Child, when set, links an instance the
// input creates to the sender as its parent.
type Send struct {
	WorkflowType string
	ID           string
	Child        *Child
}

// Child is how a child instance answers to its parent: the parent's input types sent
// when it completes and when it fails or is terminated ("" for none), and what it does
// when the parent ends first (ParentEndTerminate or ParentEndAbandon).
type Child struct {
	OnCompleted string
	OnFailed    string
	OnParentEnd string
}

// sendDef is an effect's send: the target type, the id and input data expressions, the
// input type and the child link.
type sendDef struct {
	workflowType string
	id           *expr
	inputType    string
	data         *expr // nil: {}
	child        *Child
}

// childSend is a send with a child that terminates with its parent, on a transition to
// the state to: checked once every state is known (a transition into a terminal state
// cannot start such a child).
type childSend struct{ path, to string }

// parseSend reads the send member of an effect at path; compile compiles the
// expressions (with item and index under for_each).
func (ps *parser) parseSend(eff *effectDef, path string, raw json.RawMessage, compile func(string, string, resultKind) *expr) {
	f, ok := ps.fields(path, raw, "workflow_type", "id", "input", "child")
	if !ok {
		return
	}
	s := &sendDef{}
	if raw, ok := f["workflow_type"]; ok {
		if t, ok := ps.name(pointer(path, "workflow_type"), raw, "workflow type"); ok {
			s.workflowType = t
		}
	} else {
		ps.p.add(pointer(path, "workflow_type"), "is required")
	}
	if raw, ok := f["id"]; ok {
		if src, ok := ps.str(pointer(path, "id"), raw); ok {
			s.id = compile(pointer(path, "id"), src, wantString)
		}
	} else {
		ps.p.add(pointer(path, "id"), "is required")
	}
	if raw, ok := f["input"]; ok {
		ps.parseSendInput(s, pointer(path, "input"), raw, compile)
	} else {
		ps.p.add(pointer(path, "input"), "is required")
	}
	if raw, ok := f["child"]; ok {
		s.child = ps.parseChild(pointer(path, "child"), raw)
	}
	eff.send = s
}

func (ps *parser) parseSendInput(s *sendDef, path string, raw json.RawMessage, compile func(string, string, resultKind) *expr) {
	f, ok := ps.fields(path, raw, "type", "data")
	if !ok {
		return
	}
	if raw, ok := f["type"]; ok {
		if t, ok := ps.name(pointer(path, "type"), raw, "input name"); ok {
			s.inputType = t
		}
	} else {
		ps.p.add(pointer(path, "type"), "is required")
	}
	if raw, ok := f["data"]; ok {
		if src, ok := ps.str(pointer(path, "data"), raw); ok {
			s.data = compile(pointer(path, "data"), src, wantObject)
		}
	}
}

// parseChild reads send.child: on_completed and on_failed name inputs of this
// definition (the parent's), on_parent_end is terminate (the default) or abandon.
func (ps *parser) parseChild(path string, raw json.RawMessage) *Child {
	f, ok := ps.fields(path, raw, "on_completed", "on_failed", "on_parent_end")
	if !ok {
		return nil
	}
	c := &Child{OnParentEnd: ParentEndTerminate}
	for _, m := range []struct {
		key string
		to  *string
	}{{"on_completed", &c.OnCompleted}, {"on_failed", &c.OnFailed}} {
		raw, ok := f[m.key]
		if !ok {
			continue
		}
		if t, ok := ps.str(pointer(path, m.key), raw); ok {
			if _, declared := ps.d.inputs[t]; !declared {
				ps.p.add(pointer(path, m.key), "input %q is not declared in inputs: the child's ending is an input of this workflow", t)
			}
			*m.to = t
		}
	}
	if raw, ok := f["on_parent_end"]; ok {
		if v, ok := ps.str(pointer(path, "on_parent_end"), raw); ok {
			if v != ParentEndTerminate && v != ParentEndAbandon {
				ps.p.add(pointer(path, "on_parent_end"), "must be %q or %q, not %q", ParentEndTerminate, ParentEndAbandon, v)
			}
			c.OnParentEnd = v
		}
	}
	return c
}

// checkChildSends refuses a send of a child that terminates with its parent on a
// transition into a terminal state: the parent ends in that transaction, so the child
// would be started only to be terminated.
func (ps *parser) checkChildSends() {
	for _, c := range ps.childSends {
		if ps.d.IsTerminal(c.to) {
			ps.p.add(c.path, "a child that is terminated when its parent ends cannot be sent on a transition into the terminal state %q; use \"on_parent_end\": \"abandon\"", c.to)
		}
	}
}

// HasChildren reports whether an instance of the definition can have children that are
// terminated when it ends (a send with child and on_parent_end terminate).
func (d *Definition) HasChildren() bool { return d.children }

// eval evaluates the send under act: the target, and the input as the effect's payload
// {"type", "data"}. Errors: those of the expressions; ErrEvaluation at the id when it
// is not a valid instance id.
func (s *sendDef) eval(act *activation) (*Send, json.RawMessage, error) {
	id, ok, err := s.id.evalString(act)
	if err != nil {
		return nil, nil, err
	}
	if !ok || !ValidID(id) {
		return nil, nil, s.id.fail("the id %q is not an instance id: 1 to %d printable characters", id, MaxIDLength)
	}
	data := json.RawMessage(`{}`)
	if s.data != nil {
		if data, err = s.data.evalObject(act); err != nil {
			return nil, nil, err
		}
	}
	payload, err := json.Marshal(Input{Type: s.inputType, Data: data})
	if err != nil {
		return nil, nil, fmt.Errorf("encode the input of a send: %w", err)
	}
	send := &Send{WorkflowType: s.workflowType, ID: id}
	if s.child != nil {
		c := *s.child
		send.Child = &c
	}
	return send, payload, nil
}
