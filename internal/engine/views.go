package engine

import (
	"encoding/json"
	"time"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// WorkflowView is an instance as the API shows it.
type WorkflowView struct {
	Type              string         `json:"type" example:"order"`
	ID                string         `json:"id" example:"o-1"`
	DefinitionVersion int            `json:"definition_version" example:"1"`
	State             workflow.State `json:"state"`
	Status            string         `json:"status" example:"running" enums:"running,completed,failed,terminated"`
	Version           int64          `json:"version" example:"1"`
	CreatedAt         time.Time      `json:"created_at" format:"date-time"`
	UpdatedAt         time.Time      `json:"updated_at" format:"date-time"`
	CompletedAt       *time.Time     `json:"completed_at" format:"date-time" extensions:"x-nullable"`
	// Parent is the instance whose send with child created this one (absent for none).
	Parent *InstanceRef `json:"parent,omitempty"`
}

// InstanceRef names an instance: the target of a send, the parent of a child.
type InstanceRef struct {
	WorkflowType string `json:"workflow_type" example:"batch"`
	ID           string `json:"id" example:"b-1"`
}

// WorkflowCountsView is the number of instances in each status.
type WorkflowCountsView struct {
	Counts StatusCountsView `json:"counts"`
	// Capped: at least one status has more instances than Cap; its count reports Cap.
	Capped bool `json:"capped" example:"false"`
	// Cap is the most any count reports.
	Cap int64 `json:"cap" example:"10000"`
}

// StatusCountsView counts instances by status, each at most the cap.
type StatusCountsView struct {
	Running    int64 `json:"running" example:"12"`
	Completed  int64 `json:"completed" example:"30"`
	Failed     int64 `json:"failed" example:"1"`
	Terminated int64 `json:"terminated" example:"0"`
}

// EventView is one history entry as the API shows it.
type EventView struct {
	Seq        int64           `json:"seq" example:"1"`
	Type       string          `json:"type" example:"OrderPlaced"`
	From       string          `json:"from" example:"new"`
	To         string          `json:"to" example:"awaiting_payment"`
	Data       json.RawMessage `json:"data" swaggertype:"object"`
	InputType  string          `json:"input_type" example:"place"`
	RecordedAt time.Time       `json:"recorded_at" format:"date-time"`
}

// EffectRef names an effect an accepted input emitted.
type EffectRef struct {
	ID   string `json:"id" example:"01936f4e-8c1a-7b3e-9f00-1c2d3e4f5a6b"`
	Name string `json:"name" example:"reserve_stock"`
	// Key tells apart the effects a for_each emits, one per element (absent for an
	// effect without for_each).
	Key string `json:"key,omitempty" example:"sku-1"`
}

// TimerRef is a timer an accepted input scheduled.
type TimerRef struct {
	Key    string    `json:"key" example:"payment_timeout"`
	FireAt time.Time `json:"fire_at" format:"date-time"`
}

// TimerChanges lists the timers a decision scheduled and the keys it cancelled.
type TimerChanges struct {
	Scheduled []TimerRef `json:"scheduled"`
	Cancelled []string   `json:"cancelled"`
}

// Rejection says why an input was rejected.
type Rejection struct {
	Reason string `json:"reason" example:"payment is below the order total"`
	State  string `json:"state" example:"awaiting_payment"`
	Input  string `json:"input" example:"pay"`
}

// Result is the decision on one input; its JSON is the API response body.
type Result struct {
	Outcome   string        `json:"outcome" example:"accepted" enums:"accepted,rejected,already_completed"`
	Rejection *Rejection    `json:"rejection,omitempty"`
	Workflow  *WorkflowView `json:"workflow" extensions:"x-nullable"`
	Events    []EventView   `json:"events,omitempty"`
	Effects   []EffectRef   `json:"effects,omitempty"`
	Timers    *TimerChanges `json:"timers,omitempty"`
}

// InputView is one recorded input and its outcome.
type InputView struct {
	ID             string          `json:"id"`
	Type           string          `json:"type" example:"pay"`
	Data           json.RawMessage `json:"data" swaggertype:"object"`
	Source         string          `json:"source" example:"api" enums:"api,effect,timer"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Outcome        string          `json:"outcome" example:"accepted" enums:"accepted,rejected,already_completed"`
	Reason         string          `json:"reason,omitempty"`
	Version        int64           `json:"version" example:"2"`
	CreatedAt      time.Time       `json:"created_at" format:"date-time"`
}

// DefinitionView is one version of a workflow type's definition.
type DefinitionView struct {
	Type       string          `json:"type" example:"order"`
	Version    int             `json:"version" example:"1"`
	Definition json.RawMessage `json:"definition" swaggertype:"object"`
	CreatedAt  time.Time       `json:"created_at" format:"date-time"`
}

func workflowView(in *store.Instance) *WorkflowView {
	if in == nil {
		return nil
	}
	v := &WorkflowView{
		Type:              in.Type,
		ID:                in.ID,
		DefinitionVersion: in.DefinitionVersion,
		State:             workflow.State{Name: in.StateName, Data: in.StateData},
		Status:            in.Status,
		Version:           in.Version,
		CreatedAt:         in.CreatedAt,
		UpdatedAt:         in.UpdatedAt,
		CompletedAt:       in.CompletedAt,
	}
	if in.ParentType != "" {
		v.Parent = &InstanceRef{WorkflowType: in.ParentType, ID: in.ParentID}
	}
	return v
}

func eventView(e store.Event) EventView {
	return EventView{
		Seq:        e.Seq,
		Type:       e.Type,
		From:       e.From,
		To:         e.To,
		Data:       e.Data,
		InputType:  e.InputType,
		RecordedAt: e.RecordedAt,
	}
}

func inputView(r store.InputRecord) InputView {
	return InputView{
		ID:             r.ID,
		Type:           r.Type,
		Data:           r.Data,
		Source:         r.Source,
		IdempotencyKey: r.IdempotencyKey,
		Outcome:        r.Outcome,
		Reason:         r.Reason,
		Version:        r.Version,
		CreatedAt:      r.CreatedAt,
	}
}

func definitionView(d store.Definition) DefinitionView {
	return DefinitionView{Type: d.Type, Version: d.Version, Definition: d.Body, CreatedAt: d.CreatedAt}
}

// EffectView is an outbox row as the API shows it.
type EffectView struct {
	ID           string `json:"id"`
	WorkflowType string `json:"workflow_type" example:"order"`
	WorkflowID   string `json:"workflow_id" example:"o-1"`
	Seq          int64  `json:"seq" example:"1"`
	Name         string `json:"name" example:"reserve_stock"`
	// Key tells apart the effects a for_each emits (absent without for_each).
	Key           string          `json:"key,omitempty" example:"sku-1"`
	Payload       json.RawMessage `json:"payload" swaggertype:"object"`
	Status        string          `json:"status" example:"pending" enums:"pending,delivered,dead,cancelled"`
	Attempts      int             `json:"attempt_count" example:"0"`
	NextAttemptAt time.Time       `json:"next_attempt_at" format:"date-time"`
	LastError     string          `json:"last_error,omitempty"`
	CreatedAt     time.Time       `json:"created_at" format:"date-time"`
	UpdatedAt     time.Time       `json:"updated_at" format:"date-time"`
	DeliveredAt   *time.Time      `json:"delivered_at" format:"date-time" extensions:"x-nullable"`
	// Scope is "state" for an effect cancelled, undelivered, when its instance leaves
	// the state it was emitted into, "instance" otherwise.
	Scope string `json:"scope" example:"instance" enums:"instance,state"`
	// OnDeadOutcome is the outcome of the effect's on_dead input once it ran (accepted,
	// rejected, already_completed). It runs once per effect: an effect retried by an
	// operator that dies again does not run it again.
	OnDeadOutcome string `json:"on_dead_outcome,omitempty" example:"accepted"`
	// Send names the instance a send effect delivers its input (the payload, {"type",
	// "data"}) to; absent for a webhook effect.
	Send *InstanceRef `json:"send,omitempty"`
	// AttemptLog is filled by the single-effect read only.
	AttemptLog []AttemptView `json:"attempts,omitempty"`
}

// AttemptView is one delivery attempt.
type AttemptView struct {
	Number        int       `json:"number" example:"1"`
	StartedAt     time.Time `json:"started_at" format:"date-time"`
	DurationMS    float64   `json:"duration_ms" example:"12.5"`
	StatusCode    int       `json:"status_code,omitempty" example:"200"`
	Error         string    `json:"error,omitempty"`
	Response      string    `json:"response,omitempty"`
	RoutedOutcome string    `json:"routed_outcome,omitempty" example:"accepted"`
}

// TimerView is a timer as the API shows it.
type TimerView struct {
	ID            string         `json:"id"`
	WorkflowType  string         `json:"workflow_type" example:"order"`
	WorkflowID    string         `json:"workflow_id" example:"o-1"`
	Key           string         `json:"key" example:"payment_timeout"`
	FireAt        time.Time      `json:"fire_at" format:"date-time"`
	Input         workflow.Input `json:"input"`
	Status        string         `json:"status" example:"pending" enums:"pending,fired,cancelled,dead"`
	Attempts      int            `json:"attempt_count" example:"0"`
	NextAttemptAt time.Time      `json:"next_attempt_at" format:"date-time"`
	LastError     string         `json:"last_error,omitempty"`
	Outcome       string         `json:"outcome,omitempty" example:"accepted"`
	CreatedAt     time.Time      `json:"created_at" format:"date-time"`
	UpdatedAt     time.Time      `json:"updated_at" format:"date-time"`
	FiredAt       *time.Time     `json:"fired_at" format:"date-time" extensions:"x-nullable"`
}

func effectView(e store.Effect) EffectView {
	v := EffectView{
		ID:            e.ID,
		WorkflowType:  e.WorkflowType,
		WorkflowID:    e.WorkflowID,
		Seq:           e.Seq,
		Name:          e.Name,
		Key:           e.Key,
		Payload:       e.Payload,
		Status:        e.Status,
		Attempts:      e.Attempts,
		NextAttemptAt: e.NextAttemptAt,
		LastError:     e.LastError,
		CreatedAt:     e.CreatedAt,
		UpdatedAt:     e.UpdatedAt,
		DeliveredAt:   e.DeliveredAt,
		Scope:         workflow.ScopeInstance,
		OnDeadOutcome: e.OnDeadOutcome,
	}
	if e.StateScoped {
		v.Scope = workflow.ScopeState
	}
	if e.SendType != "" && e.Name != EndChildrenEffect { // that one sends nothing: it ends the children
		v.Send = &InstanceRef{WorkflowType: e.SendType, ID: e.SendID}
	}
	return v
}

func attemptView(a store.Attempt) AttemptView {
	return AttemptView{
		Number:        a.Number,
		StartedAt:     a.StartedAt,
		DurationMS:    float64(a.Duration.Microseconds()) / 1000,
		StatusCode:    a.StatusCode,
		Error:         a.Error,
		Response:      a.Response,
		RoutedOutcome: a.RoutedOutcome,
	}
}

func timerView(t store.Timer) TimerView {
	return TimerView{
		ID:            t.ID,
		WorkflowType:  t.WorkflowType,
		WorkflowID:    t.WorkflowID,
		Key:           t.Key,
		FireAt:        t.FireAt,
		Input:         workflow.Input{Type: t.InputType, Data: t.InputData},
		Status:        t.Status,
		Attempts:      t.Attempts,
		NextAttemptAt: t.NextAttemptAt,
		LastError:     t.LastError,
		Outcome:       t.Outcome,
		CreatedAt:     t.CreatedAt,
		UpdatedAt:     t.UpdatedAt,
		FiredAt:       t.FiredAt,
	}
}
