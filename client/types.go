package client

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Outcomes of a decision (Result.Outcome).
const (
	OutcomeAccepted         = "accepted"
	OutcomeRejected         = "rejected"
	OutcomeAlreadyCompleted = "already_completed"
	// OutcomeScheduled is the outcome of an input sent with DeliverAfter or DeliverAt.
	OutcomeScheduled = "scheduled"
)

// Workflow is an instance: its state, status and version.
type Workflow struct {
	Type              string     `json:"type"`
	ID                string     `json:"id"`
	DefinitionVersion int        `json:"definition_version"`
	State             State      `json:"state"`
	Status            string     `json:"status"`
	Version           int64      `json:"version"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
	CompletedAt       *time.Time `json:"completed_at"`
	// Parent is the instance whose send with child created this one; nil for none.
	Parent *InstanceRef `json:"parent,omitempty"`
}

// InstanceRef names an instance: a workflow's parent, a send effect's target.
type InstanceRef struct {
	WorkflowType string `json:"workflow_type"`
	ID           string `json:"id"`
}

// State is a workflow's current state: its name and its data.
type State struct {
	Name string          `json:"name"`
	Data json.RawMessage `json:"data"`
}

// Event is one entry of a workflow's history.
type Event struct {
	Seq        int64           `json:"seq"`
	Type       string          `json:"type"`
	From       string          `json:"from"`
	To         string          `json:"to"`
	Data       json.RawMessage `json:"data"`
	InputType  string          `json:"input_type"`
	RecordedAt time.Time       `json:"recorded_at"`
}

// Result is the decision on one input. Rejected and already-completed inputs are
// results too (the server answers them with 409), not errors.
type Result struct {
	Outcome   string      `json:"outcome"`
	Rejection *Rejection  `json:"rejection,omitempty"`
	Workflow  *Workflow   `json:"workflow"`
	Events    []Event     `json:"events,omitempty"`
	Effects   []EffectRef `json:"effects,omitempty"`
	Timers    *struct {
		Scheduled []struct {
			Key    string    `json:"key"`
			FireAt time.Time `json:"fire_at"`
		} `json:"scheduled"`
		Cancelled []string `json:"cancelled"`
	} `json:"timers,omitempty"`
	// Timer is the timer a delayed input (OutcomeScheduled) was stored as.
	Timer *Timer `json:"timer,omitempty"`
	// Replayed is true when the answer is the one an earlier request with the same
	// idempotency key got (Idempotent-Replayed: true).
	Replayed bool `json:"-"`
}

// Rejection says why an input was rejected.
type Rejection struct {
	Reason string `json:"reason"`
	State  string `json:"state"`
	Input  string `json:"input"`
}

// EffectRef names an effect an accepted input emitted.
type EffectRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Definition is one version of a workflow type's definition.
type Definition struct {
	Type       string          `json:"type"`
	Version    int             `json:"version"`
	Definition json.RawMessage `json:"definition"`
	CreatedAt  time.Time       `json:"created_at"`
}

// InputRecord is one input an instance received and its outcome.
type InputRecord struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	Data           json.RawMessage `json:"data"`
	Source         string          `json:"source"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Outcome        string          `json:"outcome"`
	Reason         string          `json:"reason,omitempty"`
	Version        int64           `json:"version"`
	CreatedAt      time.Time       `json:"created_at"`
}

// Effect is an effect (an outbox row) and, from GetEffect, its delivery attempts.
type Effect struct {
	ID            string          `json:"id"`
	WorkflowType  string          `json:"workflow_type"`
	WorkflowID    string          `json:"workflow_id"`
	Seq           int64           `json:"seq"`
	Name          string          `json:"name"`
	Payload       json.RawMessage `json:"payload"`
	Status        string          `json:"status"`
	Attempts      int             `json:"attempt_count"`
	NextAttemptAt time.Time       `json:"next_attempt_at"`
	LastError     string          `json:"last_error,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	DeliveredAt   *time.Time      `json:"delivered_at"`
	// Send is the instance a send effect delivers its input (the payload) to; nil for
	// a webhook effect.
	Send       *InstanceRef `json:"send,omitempty"`
	AttemptLog []Attempt    `json:"attempts,omitempty"`
}

// Attempt is one delivery attempt of an effect.
type Attempt struct {
	Number        int       `json:"number"`
	StartedAt     time.Time `json:"started_at"`
	DurationMS    float64   `json:"duration_ms"`
	StatusCode    int       `json:"status_code,omitempty"`
	Error         string    `json:"error,omitempty"`
	Response      string    `json:"response,omitempty"`
	RoutedOutcome string    `json:"routed_outcome,omitempty"`
}

// Timer is a durable timer or a delayed input.
type Timer struct {
	ID           string    `json:"id"`
	WorkflowType string    `json:"workflow_type"`
	WorkflowID   string    `json:"workflow_id"`
	Key          string    `json:"key"`
	FireAt       time.Time `json:"fire_at"`
	Input        struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data,omitempty"`
	} `json:"input"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempt_count"`
	NextAttemptAt time.Time  `json:"next_attempt_at"`
	LastError     string     `json:"last_error,omitempty"`
	Outcome       string     `json:"outcome,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	FiredAt       *time.Time `json:"fired_at"`
}

// Page is one page of a list; NextCursor is "" on the last page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Problem is an RFC 9457 problem the server answered with; it is the error of every
// call that failed on the server's side. Type says which problem (for example
// "type_not_found", "invalid_definition", "unique_key_conflict").
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
}

// FieldError is one validation problem and the JSON pointer to where it is.
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Error implements error: the status, type and detail, then each field error.
func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", p.Status, p.Type)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, e := range p.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", e.Path, e.Message)
	}
	return b.String()
}
