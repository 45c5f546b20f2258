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

// edges lists every transition of the definition in declaration order. Rejecting
// branches are no transition and are left out. The label carries the effects,
// the transition's timers and, when the edge enters a state, that state's timers.
func (d *Definition) edges() []edge {
	var out []edge
	for _, name := range d.stateOrder {
		st := d.states[name]
		for _, in := range st.onOrder {
			for _, b := range st.on[in].branches {
				if b.isReject {
					continue
				}
				to := name
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
				for _, e := range b.effects {
					label = append(label, "effect "+e.name)
				}
				for _, t := range b.timers {
					label = append(label, t.describe())
				}
				if to != name {
					for _, t := range d.states[to].timers {
						label = append(label, t.describe())
					}
				}
				for _, k := range b.cancel {
					label = append(label, "cancel "+k)
				}
				out = append(out, edge{from: name, to: to, label: label})
			}
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
	return "timer " + t.key + " " + when + " → " + t.inputType
}

// Mermaid returns the definition as a Mermaid stateDiagram-v2: [*] points at the
// initial state, every transition is an edge labelled "input / Event" followed by
// its effects (effect name), timers it schedules (timer key 30m → input, including the
// timers of the state it enters) and timers it cancels (cancel key), and terminal
// states point at [*]. Guarded branches are marked [if].
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
