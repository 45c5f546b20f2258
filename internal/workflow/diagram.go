package workflow

import (
	"strconv"
	"strings"
)

// edge is one drawable transition.
type edge struct {
	from, to string
	label    []string // first line "input / Event", then effects and timers
}

// anyNode is the diagram node on_any transitions start from: "any other state".
// State names are lower case, so it never clashes with one.
const anyNode = "ANY"

// edges lists every transition of the definition in declaration order, on_any
// last (from anyNode). Rejecting branches are no transition and are left out. The
// label carries the effects, the transition's timers and, when the edge enters a
// state (it moves, or reenters), that state's timers.
func (d *Definition) edges() []edge {
	var out []edge
	add := func(from, in string, b *branch) {
		if b.isReject {
			return
		}
		to := from
		if b.to != "" {
			to = b.to
		}
		ev := in
		if b.event != "" {
			ev = b.event
		}
		head := in
		if b.cond != nil {
			head += " [if]"
		}
		label := []string{head + " / " + ev}
		if b.reenter {
			label = append(label, "reenter")
		}
		for _, e := range b.effects {
			line := "effect " + e.name
			if e.send != nil {
				line = "send " + e.name + " → " + e.send.workflowType
			}
			if e.forEach != nil {
				line += " for each " + e.forEach.src
			}
			label = append(label, line)
		}
		for _, t := range b.timers {
			label = append(label, t.describe())
		}
		if st, ok := d.states[to]; ok && (to != from || b.reenter) {
			for _, t := range st.timers {
				label = append(label, t.describe())
			}
		}
		for _, c := range b.cancel {
			if c.expr != nil {
				label = append(label, "cancel "+c.expr.src)
				continue
			}
			label = append(label, "cancel "+c.key)
		}
		out = append(out, edge{from: from, to: to, label: label})
	}
	for _, name := range d.stateOrder {
		st := d.states[name]
		for _, in := range st.onOrder {
			for _, b := range st.on[in].branches {
				add(name, in, b)
			}
		}
	}
	for _, in := range d.onAnyOrder {
		for _, b := range d.onAny[in].branches {
			add(anyNode, in, b)
		}
	}
	return out
}

func (d *Definition) initialTimers() []*timerDef {
	if s, ok := d.states[d.initial]; ok {
		return s.timers
	}
	return nil
}

func (t *timerDef) describe() string {
	when := "at"
	if t.at == nil {
		when = t.afterText
	}
	if t.forEach != nil {
		key := ""
		if t.keyExpr != nil {
			key = t.keyExpr.src
		}
		return "timer " + key + " " + when + " → " + t.inputType + " for each " + t.forEach.src
	}
	return "timer " + t.key + " " + when + " → " + t.inputType
}

// Mermaid returns the definition as a Mermaid stateDiagram-v2: [*] points at the
// initial state, every transition is an edge labelled "input / Event" followed by
// its effects (effect name; a send "send name → type"), timers it schedules (timer key 30m → input, including the
// timers of the state it enters) and timers it cancels (cancel key), and terminal
// states point at [*]. Guarded branches are marked [if], transitions that reenter
// their state "reenter", for_each effects and timers "for each <list>". on_any
// transitions start from one node, ANY, drawn as "any other state (on_any)": they
// apply to every non-terminal state without its own entry for the input.
func (d *Definition) Mermaid() string { return d.mermaid("") }

// MermaidHighlight is Mermaid with state current highlighted through a classDef;
// an unknown state highlights nothing.
func (d *Definition) MermaidHighlight(current string) string { return d.mermaid(current) }

func (d *Definition) mermaid(current string) string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	start := "    [*] --> " + d.initial
	if ts := d.initialTimers(); len(ts) > 0 {
		parts := make([]string, 0, len(ts))
		for _, t := range ts {
			parts = append(parts, t.describe())
		}
		start += ": " + strings.Join(parts, " ")
	}
	b.WriteString(start + "\n")
	for _, name := range d.stateOrder {
		if desc := d.states[name].description; desc != "" {
			b.WriteString("    " + name + ": " + mermaidText(desc) + "\n")
		}
	}
	if len(d.onAnyOrder) > 0 {
		b.WriteString("    state \"any other state (on_any)\" as " + anyNode + "\n")
	}
	for _, e := range d.edges() {
		b.WriteString("    " + e.from + " --> " + e.to + ": " + mermaidText(strings.Join(e.label, " ")) + "\n")
	}
	for _, name := range d.stateOrder {
		if d.states[name].terminal {
			b.WriteString("    " + name + " --> [*]\n")
		}
	}
	if _, ok := d.states[current]; ok {
		b.WriteString("    classDef current fill:#ffd54f,stroke:#f57f17,stroke-width:2px\n")
		b.WriteString("    class " + current + " current\n")
	}
	return b.String()
}

// mermaidText keeps free text from breaking the diagram syntax.
func mermaidText(s string) string {
	r := strings.NewReplacer("\n", " ", "\r", " ", ";", ",", "#", "", "%%", "%", "{", "(", "}", ")")
	return strings.TrimSpace(r.Replace(s))
}

// DOT returns the same diagram as a Graphviz digraph: a point for the start,
// double circles for terminal states, a filled circle after them, and the same
// edge labels as Mermaid, one item per line.
func (d *Definition) DOT() string {
	var b strings.Builder
	b.WriteString("digraph " + strconv.Quote(d.typ) + " {\n")
	b.WriteString("  rankdir=LR;\n")
	b.WriteString("  node [shape=box, style=rounded];\n")
	b.WriteString("  \"__start\" [shape=point, label=\"\"];\n")
	for _, name := range d.stateOrder {
		st := d.states[name]
		attrs := []string{}
		if st.terminal {
			attrs = append(attrs, "shape=doublecircle")
		}
		if st.description != "" {
			attrs = append(attrs, "tooltip="+dotLabel(st.description))
		}
		line := "  " + strconv.Quote(name)
		if len(attrs) > 0 {
			line += " [" + strings.Join(attrs, ", ") + "]"
		}
		b.WriteString(line + ";\n")
	}
	if len(d.onAnyOrder) > 0 {
		b.WriteString("  " + strconv.Quote(anyNode) + " [label=\"any other state (on_any)\", style=\"rounded,dashed\"];\n")
	}
	startLabel := ""
	for _, t := range d.initialTimers() {
		startLabel += t.describe() + "\n"
	}
	b.WriteString("  \"__start\" -> " + strconv.Quote(d.initial))
	if startLabel != "" {
		b.WriteString(" [label=" + dotLabel(strings.TrimSuffix(startLabel, "\n")) + "]")
	}
	b.WriteString(";\n")
	for _, e := range d.edges() {
		b.WriteString("  " + strconv.Quote(e.from) + " -> " + strconv.Quote(e.to) +
			" [label=" + dotLabel(strings.Join(e.label, "\n")) + "];\n")
	}
	hasTerminal := false
	for _, name := range d.stateOrder {
		if d.states[name].terminal {
			if !hasTerminal {
				b.WriteString("  \"__end\" [shape=point, width=0.2, label=\"\"];\n")
				hasTerminal = true
			}
			b.WriteString("  " + strconv.Quote(name) + " -> \"__end\";\n")
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// dotLabel quotes s as a DOT string whose line breaks render as new lines.
func dotLabel(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
