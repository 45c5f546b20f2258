package http

import (
	"fmt"
	"net/http"
	"time"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/workflow"
)

// maxDeliverAfter bounds how far ahead an input may be scheduled.
const maxDeliverAfter = 10 * 365 * 24 * time.Hour

// ScheduledInput answers an input sent with deliver_after or deliver_at (202): it is
// stored as a durable timer and decided when the timer fires.
type ScheduledInput struct {
	Outcome string           `json:"outcome" example:"scheduled" enums:"scheduled"`
	Timer   engine.TimerView `json:"timer"`
}

// scheduleInput stores req as a delayed input. It cannot be conditional or a dry run:
// the decision happens when the timer fires. With an Idempotency-Key a retry answers
// the timer the first request scheduled (Idempotent-Replayed: true), whatever became
// of it, and schedules nothing.
func (s *Server) scheduleInput(w http.ResponseWriter, r *http.Request, typ, id, key string, req InputRequest, conditional, dryRun bool) error {
	invalid := func(path, msg string) error {
		return &workflow.ValidationError{Err: errInvalidRequest, Errors: []workflow.FieldError{{Path: path, Message: msg}}}
	}
	switch {
	case req.DeliverAfter != "" && req.DeliverAt != "":
		return invalid("/deliver_at", "set either deliver_after or deliver_at, not both")
	case conditional:
		return invalid("/expected_version", "a delayed input cannot be conditional (If-Match, expected_version): it is decided when it fires")
	case dryRun:
		return fmt.Errorf("%w: dry_run cannot be combined with deliver_after or deliver_at", engine.ErrInvalidArgument)
	}
	now := s.engine.Now()
	var fireAt time.Time
	if req.DeliverAfter != "" {
		d, err := time.ParseDuration(req.DeliverAfter)
		if err != nil || d < 0 || d > maxDeliverAfter {
			return invalid("/deliver_after", "must be a non-negative Go duration such as 90s, 30m or 2h45m, at most 87600h")
		}
		fireAt = now.Add(d)
	} else {
		t, err := time.Parse(time.RFC3339Nano, req.DeliverAt)
		if err != nil || t.After(now.Add(maxDeliverAfter)) {
			return invalid("/deliver_at", "must be an RFC 3339 time such as 2030-01-02T15:04:05Z, at most ten years ahead")
		}
		fireAt = t
	}
	tv, replayed, err := s.engine.ScheduleInputWithKey(r.Context(), typ, id, key, workflow.Input{Type: req.Type, Data: req.Data}, fireAt)
	if err != nil {
		return err
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	return writeJSON(w, http.StatusAccepted, ScheduledInput{Outcome: "scheduled", Timer: tv})
}
