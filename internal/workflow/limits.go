package workflow

import (
	"fmt"
)

// DefaultMaxDataBytes is the default of Limits.MaxDataBytes: 256 KiB.
const DefaultMaxDataBytes = 256 << 10

// DefaultMaxForEach is the default of Limits.MaxForEach.
const DefaultMaxForEach = 1000

// forEachBytesFactor bounds the JSON the for_each effects and timers of one
// decision produce together: this many times Limits.MaxDataBytes (4 MiB by
// default), so a thousand copies of a large value are refused, not written.
const forEachBytesFactor = 16

// Limits bound what one decision may produce. The zero value means the defaults.
type Limits struct {
	// MaxForEach caps the elements the for_each lists of one transition give
	// together (effects and timers); beyond it a decision fails with ErrTooLarge.
	// 0 means DefaultMaxForEach.
	MaxForEach int
	// MaxDataBytes caps the compact JSON of every expression result that becomes
	// data (event data, effect payloads, timer input data), the event data an input
	// records as it is, and the state data after the event. Beyond it a decision
	// fails with ErrTooLarge. 0 means DefaultMaxDataBytes.
	MaxDataBytes int
}

func (l Limits) maxDataBytes() int {
	if l.MaxDataBytes <= 0 {
		return DefaultMaxDataBytes
	}
	return l.MaxDataBytes
}

func (l Limits) maxForEach() int {
	if l.MaxForEach <= 0 {
		return DefaultMaxForEach
	}
	return l.MaxForEach
}

// ParseWithLimits is Parse for a definition whose decisions are bounded by lim
// instead of the defaults. Errors are those of Parse.
func ParseWithLimits(typ string, body []byte, lim Limits) (*Definition, error) {
	d, err := Parse(typ, body)
	if err != nil {
		return nil, err
	}
	d.limits = lim
	return d, nil
}

// Limits returns the limits the definition's decisions run under.
func (d *Definition) Limits() Limits { return d.limits }

// tooLarge is the ErrTooLarge of a document of n bytes at path, whose limit is max.
func tooLarge(path, what string, n, max int) error {
	return &ValidationError{Err: ErrTooLarge, Errors: []FieldError{{Path: path,
		Message: fmt.Sprintf("%s is %d bytes of JSON; the limit is %d", what, n, max)}}}
}
