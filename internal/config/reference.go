package config

import (
	"strings"
)

// Setting describes one configuration knob for documentation: the environment
// variable, the flag that mirrors it, its default and what it does.
type Setting struct {
	// Env is the environment variable, e.g. IRONFLOW_LISTEN_ADDR.
	Env string
	// Flag is the command-line flag without dashes, e.g. listen-addr.
	Flag string
	// Default is the value used when neither is set ("" when there is none).
	Default string
	// Usage says what the setting does.
	Usage string
	// Secret settings may be read from the file named by Env + "_FILE".
	Secret bool
}

// Reference lists every setting Load understands, in the order -help prints them.
// docs/OPERATIONS.md's configuration table is generated from it.
func Reference() []Setting {
	set := settings()
	out := make([]Setting, 0, len(set))
	for _, s := range set {
		out = append(out, Setting{Env: s.env, Flag: flagName(s.env), Default: s.def, Usage: s.usage, Secret: s.secret})
	}
	return out
}

// ReferenceMarkdown renders Reference as a Markdown table.
func ReferenceMarkdown() string {
	var b strings.Builder
	b.WriteString("| variable | flag | default | meaning |\n|---|---|---|---|\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, s := range Reference() {
		def := "—"
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		usage := s.Usage
		if s.Secret {
			usage += "; may be read from the file named by `" + s.Env + "_FILE`"
		}
		b.WriteString("| `" + s.Env + "` | `-" + s.Flag + "` | " + cell(def) + " | " + cell(usage) + " |\n")
	}
	return b.String()
}
