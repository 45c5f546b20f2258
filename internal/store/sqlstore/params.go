package sqlstore

import (
	"encoding/json"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

// Params builds the values of the protocol's rows, in the order of the column lists. A
// backend says how it passes what it stores its own way: a time, a nullable time, a
// JSON value and an input's response, kept byte for byte (for both, nil is NULL).
type Params struct {
	Time     func(time.Time) any
	NullTime func(*time.Time) any
	JSON     func(json.RawMessage) any
	Response func(json.RawMessage) any
}

// MapRows is the row of each of xs.
func MapRows[T any](xs []T, row func(T) []any) [][]any {
	rows := make([][]any, len(xs))
	for i, x := range xs {
		rows[i] = row(x)
	}
	return rows
}

// Instance is the row of InstanceColumns.
func (p Params) Instance(in *store.Instance) []any {
	return []any{in.Type, in.ID, in.DefinitionVersion, in.StateName, p.JSON(in.StateData), in.Status, in.Version,
		in.UniqueKey, p.Time(in.CreatedAt), p.Time(in.UpdatedAt), p.NullTime(in.CompletedAt), in.ParentType, in.ParentID,
		in.Link.OnCompleted, in.Link.OnFailed, in.Link.OnParentEnd}
}

// Event is the row of EventColumns.
func (p Params) Event(e store.Event) []any {
	return []any{e.WorkflowType, e.WorkflowID, e.Seq, e.Type, e.From, e.To, p.JSON(e.Data), e.InputType, e.InputID,
		p.Time(e.RecordedAt)}
}

// Input is the row of InputColumns.
func (p Params) Input(in store.InputRecord) []any {
	return []any{in.ID, in.WorkflowType, in.WorkflowID, in.IdempotencyKey, in.RequestHash, in.Type, p.JSON(in.Data),
		in.Source, in.Outcome, in.Reason, in.Version, p.Response(in.Response), p.Time(in.CreatedAt)}
}

// EffectCompletion is the update of a completed effect: id, status, next_attempt_at,
// last_error, delivered_at, updated_at, on_dead_outcome.
func (p Params) EffectCompletion(c EffectCompletion) []any {
	return []any{c.ID, c.Status, p.Time(c.NextAttemptAt), c.Attempt.Error, p.NullTime(c.DeliveredAt), p.Time(c.Now),
		c.OnDeadOutcome}
}

// TimerCompletion is the update of a completed timer: id, status, next_attempt_at,
// last_error, outcome, fired_at, updated_at.
func (p Params) TimerCompletion(c TimerCompletion) []any {
	return []any{c.ID, c.Status, p.Time(c.NextAttemptAt), c.Error, c.Outcome, p.NullTime(c.FiredAt), p.Time(c.Now)}
}

// StatsQuery counts pending and dead rows, due or not; Scanners.Stats reads its row.
const StatsQuery = `SELECT
    (SELECT count(*) FROM effects WHERE status = 'pending'),
    (SELECT min(created_at) FROM effects WHERE status = 'pending'),
    (SELECT count(*) FROM effects WHERE status = 'dead'),
    (SELECT count(*) FROM effects WHERE status = 'cancelled'),
    (SELECT count(*) FROM timers WHERE status = 'pending'),
    (SELECT count(*) FROM timers WHERE status = 'dead')`

func (c Scanners) Stats(row Row) (store.Stats, error) {
	var st store.Stats
	err := row.Scan(&st.PendingEffects, c.NullTime(&st.OldestPendingEffect), &st.DeadEffects, &st.CancelledEffects,
		&st.PendingTimers, &st.DeadTimers)
	st.OldestPendingEffect = utcPtr(st.OldestPendingEffect)
	return st, err
}
