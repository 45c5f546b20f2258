package workflow

import (
	"encoding/json"
	"strconv"
	"time"
)

// Bounds of an effect's own delivery policy, checked when a definition is parsed.
const (
	MinEffectAttempts  = 1
	MaxEffectAttempts  = 100
	MinRetryInterval   = 10 * time.Millisecond
	MaxRetryInterval   = 24 * time.Hour
	MinEffectTimeout   = 100 * time.Millisecond
	MaxEffectTimeout   = 5 * time.Minute
	ScopeInstance      = "instance"
	ScopeState         = "state"
	defaultEffectScope = ScopeInstance
)

// EffectPolicy is how one effect is delivered. A zero field means the server's
// setting.
type EffectPolicy struct {
	// MaxAttempts is the attempt budget before the effect is dead.
	MaxAttempts int
	// InitialInterval and MaxInterval bound the backoff between attempts.
	InitialInterval time.Duration
	MaxInterval     time.Duration
	// Timeout bounds one attempt.
	Timeout time.Duration
	// StateScoped: the effect belongs to the state its transition enters and is
	// cancelled, undelivered, when the instance leaves that state. Never set on an
	// effect emitted on entering a terminal state.
	StateScoped bool
}

// parseEffectPolicy reads the optional retry, timeout and scope members of the effect
// at path into eff.
func (ps *parser) parseEffectPolicy(eff *effectDef, path string, f map[string]json.RawMessage) {
	if raw, ok := f["retry"]; ok {
		ps.parseRetry(eff, pointer(path, "retry"), raw)
	}
	if raw, ok := f["timeout"]; ok {
		if d, ok := ps.boundedDuration(pointer(path, "timeout"), raw, MinEffectTimeout, MaxEffectTimeout); ok {
			eff.policy.Timeout = d
		}
	}
	eff.scope = defaultEffectScope
	if raw, ok := f["scope"]; ok {
		if s, ok := ps.str(pointer(path, "scope"), raw); ok {
			switch s {
			case ScopeInstance, ScopeState:
				eff.scope = s
			default:
				ps.p.add(pointer(path, "scope"), "must be %q or %q, not %q", ScopeState, ScopeInstance, s)
			}
		}
	}
	eff.policy.StateScoped = eff.scope == ScopeState
	ps.d.stateScoped = ps.d.stateScoped || eff.policy.StateScoped
}

func (ps *parser) parseRetry(eff *effectDef, path string, raw json.RawMessage) {
	f, ok := ps.fields(path, raw, "max_attempts", "initial_interval", "max_interval")
	if !ok {
		return
	}
	if raw, ok := f["max_attempts"]; ok {
		n, err := strconv.Atoi(string(raw))
		switch {
		case jsonKind(raw) != "a number" || err != nil:
			ps.p.add(pointer(path, "max_attempts"), "must be a whole number, not %s", string(raw))
		case n < MinEffectAttempts || n > MaxEffectAttempts:
			ps.p.add(pointer(path, "max_attempts"), "must be between %d and %d, not %d", MinEffectAttempts, MaxEffectAttempts, n)
		default:
			eff.policy.MaxAttempts = n
		}
	}
	initial, okInitial := time.Duration(0), false
	if raw, ok := f["initial_interval"]; ok {
		initial, okInitial = ps.boundedDuration(pointer(path, "initial_interval"), raw, MinRetryInterval, MaxRetryInterval)
		if okInitial {
			eff.policy.InitialInterval = initial
		}
	}
	if raw, ok := f["max_interval"]; ok {
		d, ok := ps.boundedDuration(pointer(path, "max_interval"), raw, MinRetryInterval, MaxRetryInterval)
		switch {
		case ok && okInitial && d < initial:
			ps.p.add(pointer(path, "max_interval"), "must not be shorter than initial_interval (%s)", initial)
		case ok:
			eff.policy.MaxInterval = d
		}
	}
}

// boundedDuration reads a duration string at path that must lie in [lo, hi].
func (ps *parser) boundedDuration(path string, raw json.RawMessage, lo, hi time.Duration) (time.Duration, bool) {
	s, ok := ps.str(path, raw)
	if !ok {
		return 0, false
	}
	d, ok := ps.duration(path, s)
	if !ok {
		return 0, false
	}
	if d < lo || d > hi {
		ps.p.add(path, "duration %q must be between %s and %s", s, lo, hi)
		return 0, false
	}
	return d, true
}

// duration parses a duration of the definition, reporting a malformed or negative
// one at path: the one parser of every duration a definition holds.
func (ps *parser) duration(path, s string) (time.Duration, bool) {
	d, err := ParseDuration(s)
	switch {
	case err != nil:
		ps.p.add(path, "%v", err)
		return 0, false
	case d < 0:
		ps.p.add(path, "duration %q must not be negative", s)
		return 0, false
	}
	return d, true
}
