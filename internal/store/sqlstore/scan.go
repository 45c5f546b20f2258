package sqlstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

// The columns of each table, in the order the Scanners read them. Every backend names
// them alike; what differs is how it stores times and JSON (Scanners).
const (
	DefinitionColumns = `type, version, body, hash, created_at`
	InstanceColumns   = `type, id, definition_version, state_name, state_data, status, version, unique_key,
    created_at, updated_at, completed_at, parent_workflow_type, parent_workflow_id, on_completed, on_failed,
    on_parent_end`
	InputColumns = `id, workflow_type, workflow_id, idempotency_key, request_hash, type, data, source,
    outcome, reason, version, response, created_at`
	EventColumns = `workflow_type, workflow_id, seq, type, from_state, to_state, data, input_type,
    input_id, recorded_at`
	EffectColumns = `id, workflow_type, workflow_id, seq, name, payload, status, attempts, next_attempt_at,
    locked_by, locked_until, last_error, created_at, updated_at, delivered_at, chain_depth, effect_key,
    max_attempts, initial_interval_ms, max_interval_ms, timeout_ms, state_scoped, on_dead, on_dead_outcome,
    send_workflow_type, send_workflow_id, send_on_completed, send_on_failed, send_on_parent_end, item, item_index`
	TimerColumns = `id, workflow_type, workflow_id, key, fire_at, input_type, input_data, status, attempts,
    next_attempt_at, locked_by, locked_until, last_error, outcome, created_at, updated_at, fired_at`
	WebhookColumns = `workflow_type, url, secrets, status, created_at, updated_at`
)

// Row is one row of a result: a pgx.Row, *sql.Row or *sql.Rows.
type Row interface {
	Scan(dest ...any) error
}

// Scanners read the rows of each table. A backend says how it scans the three kinds of
// column it stores its own way, each a scan destination for the Go value: a time, a
// nullable time (NULL is nil) and a JSON value (stored compacted; NULL is nil). Times
// come out in UTC, durations kept in whole milliseconds as durations. A scanner with a
// rid parameter scans the row's rid first when it is not nil.
type Scanners struct {
	Time     func(*time.Time) any
	NullTime func(**time.Time) any
	JSON     func(*json.RawMessage) any
}

func withRID(rid *int64, dest ...any) []any {
	if rid == nil {
		return dest
	}
	return append([]any{rid}, dest...)
}

// NoRID adapts a scanner with a rid parameter to rows without one.
func NoRID[T any](scan func(Row, *int64) (T, error)) func(Row) (T, error) {
	return func(row Row) (T, error) { return scan(row, nil) }
}

// ListedOf adapts a scanner with a rid parameter to rows of a list, rid first.
func ListedOf[T any](scan func(Row, *int64) (T, error)) func(Row) (Listed[T], error) {
	return func(row Row) (Listed[T], error) {
		var l Listed[T]
		var err error
		l.Item, err = scan(row, &l.RID)
		return l, err
	}
}

func (c Scanners) Definition(row Row) (store.Definition, error) {
	var d store.Definition
	if err := row.Scan(&d.Type, &d.Version, c.JSON(&d.Body), &d.Hash, c.Time(&d.CreatedAt)); err != nil {
		return store.Definition{}, err
	}
	d.CreatedAt = d.CreatedAt.UTC()
	return d, nil
}

// InstanceDest are the scan destinations of InstanceColumns in i, for a query that
// reads more than an instance; Instance returns i with its times in UTC.
func (c Scanners) InstanceDest(i *store.Instance) []any {
	return []any{&i.Type, &i.ID, &i.DefinitionVersion, &i.StateName, c.JSON(&i.StateData), &i.Status, &i.Version,
		&i.UniqueKey, c.Time(&i.CreatedAt), c.Time(&i.UpdatedAt), c.NullTime(&i.CompletedAt), &i.ParentType,
		&i.ParentID, &i.Link.OnCompleted, &i.Link.OnFailed, &i.Link.OnParentEnd}
}

func (c Scanners) Instance(row Row, rid *int64) (store.Instance, error) {
	var in store.Instance
	if err := row.Scan(withRID(rid, c.InstanceDest(&in)...)...); err != nil {
		return store.Instance{}, err
	}
	return UTCInstance(in), nil
}

// UTCInstance is in with its times in UTC.
func UTCInstance(in store.Instance) store.Instance {
	in.CreatedAt, in.UpdatedAt, in.CompletedAt = in.CreatedAt.UTC(), in.UpdatedAt.UTC(), utcPtr(in.CompletedAt)
	return in
}

func (c Scanners) Input(row Row, rid *int64) (store.InputRecord, error) {
	var in store.InputRecord
	if err := row.Scan(withRID(rid, &in.ID, &in.WorkflowType, &in.WorkflowID, &in.IdempotencyKey, &in.RequestHash,
		&in.Type, c.JSON(&in.Data), &in.Source, &in.Outcome, &in.Reason, &in.Version, c.JSON(&in.Response),
		c.Time(&in.CreatedAt))...); err != nil {
		return store.InputRecord{}, err
	}
	in.CreatedAt = in.CreatedAt.UTC()
	return in, nil
}

func (c Scanners) Event(row Row) (store.Event, error) {
	var e store.Event
	if err := row.Scan(&e.WorkflowType, &e.WorkflowID, &e.Seq, &e.Type, &e.From, &e.To, c.JSON(&e.Data),
		&e.InputType, &e.InputID, c.Time(&e.RecordedAt)); err != nil {
		return store.Event{}, err
	}
	e.RecordedAt = e.RecordedAt.UTC()
	return e, nil
}

func (c Scanners) Effect(row Row, rid *int64) (store.Effect, error) {
	var e store.Effect
	var initial, maxInterval, timeout int64
	if err := row.Scan(withRID(rid, &e.ID, &e.WorkflowType, &e.WorkflowID, &e.Seq, &e.Name, c.JSON(&e.Payload),
		&e.Status, &e.Attempts, c.Time(&e.NextAttemptAt), &e.LockedBy, c.NullTime(&e.LockedUntil), &e.LastError,
		c.Time(&e.CreatedAt), c.Time(&e.UpdatedAt), c.NullTime(&e.DeliveredAt), &e.ChainDepth, &e.Key,
		&e.MaxAttempts, &initial, &maxInterval, &timeout, &e.StateScoped, &e.OnDead, &e.OnDeadOutcome, &e.SendType,
		&e.SendID, &e.SendChild.OnCompleted, &e.SendChild.OnFailed, &e.SendChild.OnParentEnd, c.JSON(&e.Item),
		&e.ItemIndex)...); err != nil {
		return store.Effect{}, err
	}
	e.InitialInterval, e.MaxInterval, e.Timeout = millis(initial), millis(maxInterval), millis(timeout)
	e.NextAttemptAt, e.CreatedAt, e.UpdatedAt = e.NextAttemptAt.UTC(), e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	e.LockedUntil, e.DeliveredAt = utcPtr(e.LockedUntil), utcPtr(e.DeliveredAt)
	return e, nil
}

func (c Scanners) Timer(row Row, rid *int64) (store.Timer, error) {
	var t store.Timer
	if err := row.Scan(withRID(rid, &t.ID, &t.WorkflowType, &t.WorkflowID, &t.Key, c.Time(&t.FireAt), &t.InputType,
		c.JSON(&t.InputData), &t.Status, &t.Attempts, c.Time(&t.NextAttemptAt), &t.LockedBy,
		c.NullTime(&t.LockedUntil), &t.LastError, &t.Outcome, c.Time(&t.CreatedAt), c.Time(&t.UpdatedAt),
		c.NullTime(&t.FiredAt))...); err != nil {
		return store.Timer{}, err
	}
	t.FireAt, t.NextAttemptAt, t.CreatedAt, t.UpdatedAt = t.FireAt.UTC(), t.NextAttemptAt.UTC(), t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	t.LockedUntil, t.FiredAt = utcPtr(t.LockedUntil), utcPtr(t.FiredAt)
	return t, nil
}

func (c Scanners) Webhook(row Row) (store.Webhook, error) {
	var w store.Webhook
	var secrets json.RawMessage
	if err := row.Scan(c.webhookDest(&w, &secrets)...); err != nil {
		return store.Webhook{}, err
	}
	return decodeWebhook(w, secrets)
}

// EffectEndpoint scans an effect row followed by the WebhookColumns of its type's
// endpoint, each coalesced to an empty value (the secrets NULL) when there is none:
// the endpoint's WorkflowType is then empty.
func (c Scanners) EffectEndpoint(row Row) (store.Effect, store.Webhook, error) {
	var w store.Webhook
	var secrets json.RawMessage
	e, err := c.Effect(joined{row, c.webhookDest(&w, &secrets)}, nil)
	if err != nil || w.WorkflowType == "" {
		return e, store.Webhook{}, err
	}
	w, err = decodeWebhook(w, secrets)
	return e, w, err
}

// webhookDest are the scan destinations of the WebhookColumns.
func (c Scanners) webhookDest(w *store.Webhook, secrets *json.RawMessage) []any {
	return []any{&w.WorkflowType, &w.URL, c.JSON(secrets), &w.Status, c.Time(&w.CreatedAt), c.Time(&w.UpdatedAt)}
}

// decodeWebhook finishes a scanned webhook: its secrets decoded, its times in UTC.
func decodeWebhook(w store.Webhook, secrets json.RawMessage) (store.Webhook, error) {
	var err error
	if w.Secrets, err = DecodeSecrets(secrets); err != nil {
		return store.Webhook{}, fmt.Errorf("webhook %s secrets: %w", w.WorkflowType, err)
	}
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	return w, nil
}

// joined is a row of two tables' columns, read by the first one's scanner: the second
// one's destinations follow the first one's.
type joined struct {
	Row
	more []any
}

func (j joined) Scan(dest ...any) error { return j.Row.Scan(append(dest, j.more...)...) }

// millis is a duration kept in whole milliseconds.
func millis(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
