package workflow

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors callers branch on. They are returned wrapped; use errors.Is.
var (
	// ErrInvalidDefinition means a definition body failed to parse or validate.
	// Parse returns it inside a *ValidationError listing every problem.
	ErrInvalidDefinition = errors.New("invalid definition")
	// ErrUnknownInput means the input type is not declared in the definition.
	ErrUnknownInput = errors.New("unknown input type")
	// ErrInvalidInput means the input data is not JSON or fails the input's schema.
	// It comes inside a *ValidationError whose paths point into the input
	// ("/data/amount").
	ErrInvalidInput = errors.New("invalid input")
	// ErrEvaluation means a CEL expression failed at decide time (a missing field,
	// a wrong result type, the cost limit). It comes inside a *ValidationError whose
	// path points at the expression in the definition.
	ErrEvaluation = errors.New("expression evaluation failed")
	// ErrTooLarge means a decision would produce more JSON than its limit allows:
	// an expression result, the event data, an effect payload or the state data
	// after the event (Limits.MaxDataBytes). It comes inside a *ValidationError
	// whose path points at the expression, or at "/data" or "/state".
	ErrTooLarge = errors.New("too large")
	// ErrInvalidState means the state handed to Decide cannot belong to the
	// definition: an unknown state name or data that is not a JSON object. It is a
	// bug or a definition/version mix-up in the caller, never the client's fault.
	ErrInvalidState = errors.New("invalid state")
)

// FieldError is one problem and where it is: Path is a JSON pointer (RFC 6901)
// into the document at fault, e.g. "/states/paid/on/pay/0/if" in a definition or
// "/data/amount" in an input.
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// ValidationError carries every problem found. Err is the sentinel it wraps:
// ErrInvalidDefinition from Parse, ErrInvalidInput from ValidateInput and Decide,
// ErrEvaluation from Decide and UniqueKey.
type ValidationError struct {
	Err    error
	Errors []FieldError
}

// Error summarises the sentinel and the first few problems.
func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("validation failed")
	}
	const shown = 3
	for i, fe := range e.Errors {
		if i == shown {
			fmt.Fprintf(&b, "; and %d more", len(e.Errors)-shown)
			break
		}
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if fe.Path != "" {
			b.WriteString(fe.Path)
			b.WriteString(": ")
		}
		b.WriteString(fe.Message)
	}
	return b.String()
}

// Unwrap returns the sentinel, so errors.Is(err, ErrInvalidDefinition) works.
func (e *ValidationError) Unwrap() error { return e.Err }

// problems collects FieldErrors while walking a document.
type problems struct {
	list []FieldError
}

func (p *problems) add(path, format string, args ...any) {
	p.list = append(p.list, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

// pointer appends RFC 6901 escaped tokens to a JSON pointer.
func pointer(base string, tokens ...string) string {
	var b strings.Builder
	b.WriteString(base)
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}
