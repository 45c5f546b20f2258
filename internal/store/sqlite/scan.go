package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// errNoRows is what a one-row read returns when the row is absent.
var errNoRows = sql.ErrNoRows

// Times are stored as INTEGER microseconds since the Unix epoch: sortable, exact to the
// microsecond (as in Postgres) and free of time zones.

func toMicros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// micros scans an INTEGER time column; a nil *time.Time target keeps NULL.
type micros struct{ t *time.Time }

func (m micros) Scan(v any) error {
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("time column holds %T", v)
	}
	*m.t = fromMicros(n)
	return nil
}

// nullMicros scans a nullable INTEGER time column.
type nullableMicros struct{ t **time.Time }

func (m nullableMicros) Scan(v any) error {
	if v == nil {
		*m.t = nil
		return nil
	}
	var t time.Time
	if err := (micros{&t}).Scan(v); err != nil {
		return err
	}
	*m.t = &t
	return nil
}

// jsonText is a compacted JSON value (the store compacts before writing) as a TEXT
// value; nil is NULL.
func jsonText(raw json.RawMessage) any {
	if raw == nil {
		return nil
	}
	return string(raw)
}

// jsonColumn scans a TEXT JSON column; NULL is nil.
type jsonColumn struct{ raw *json.RawMessage }

func (c jsonColumn) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.raw = nil
	case string:
		*c.raw = json.RawMessage(v)
	case []byte:
		*c.raw = append(json.RawMessage(nil), v...)
	default:
		return fmt.Errorf("json column holds %T", v)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// Columns and scanners of each table. A scanner with a rid parameter scans the row's
// rid first when it is not nil.

func withRID(rid *int64, dest ...any) []any {
	if rid == nil {
		return dest
	}
	return append([]any{rid}, dest...)
}

const definitionCols = `type, version, body, hash, created_at`

func scanDefinition(sc scanner) (store.Definition, error) {
	var d store.Definition
	err := sc.Scan(&d.Type, &d.Version, jsonColumn{&d.Body}, &d.Hash, micros{&d.CreatedAt})
	return d, err
}

const instanceCols = `type, id, definition_version, state_name, state_data, status, version, unique_key,
	created_at, updated_at, completed_at`

func scanInstance(sc scanner, rid *int64) (store.Instance, error) {
	var i store.Instance
	err := sc.Scan(withRID(rid, instanceDest(&i)...)...)
	return i, err
}

// instanceDest are the scan destinations of instanceCols in i.
func instanceDest(i *store.Instance) []any {
	return []any{&i.Type, &i.ID, &i.DefinitionVersion, &i.StateName, jsonColumn{&i.StateData}, &i.Status, &i.Version,
		&i.UniqueKey, micros{&i.CreatedAt}, micros{&i.UpdatedAt}, nullableMicros{&i.CompletedAt}}
}

const inputCols = `id, workflow_type, workflow_id, idempotency_key, request_hash, type, data, source, outcome,
	reason, version, response, created_at`

func scanInput(sc scanner, rid *int64) (store.InputRecord, error) {
	var in store.InputRecord
	err := sc.Scan(withRID(rid, &in.ID, &in.WorkflowType, &in.WorkflowID, &in.IdempotencyKey, &in.RequestHash, &in.Type,
		jsonColumn{&in.Data}, &in.Source, &in.Outcome, &in.Reason, &in.Version, jsonColumn{&in.Response},
		micros{&in.CreatedAt})...)
	return in, err
}

const eventCols = `workflow_type, workflow_id, seq, type, from_state, to_state, data, input_type, input_id, recorded_at`

func scanEvent(sc scanner, _ *int64) (store.Event, error) {
	var e store.Event
	err := sc.Scan(&e.WorkflowType, &e.WorkflowID, &e.Seq, &e.Type, &e.From, &e.To, jsonColumn{&e.Data},
		&e.InputType, &e.InputID, micros{&e.RecordedAt})
	return e, err
}

const effectCols = `id, workflow_type, workflow_id, seq, name, payload, status, attempts, next_attempt_at,
	locked_by, locked_until, last_error, created_at, updated_at, delivered_at, chain_depth, effect_key,
	max_attempts, initial_interval_ms, max_interval_ms, timeout_ms, state_scoped, on_dead, on_dead_outcome`

func scanEffect(sc scanner, rid *int64) (store.Effect, error) {
	var e store.Effect
	var initial, maxInterval, timeout int64
	err := sc.Scan(withRID(rid, &e.ID, &e.WorkflowType, &e.WorkflowID, &e.Seq, &e.Name, jsonColumn{&e.Payload},
		&e.Status, &e.Attempts, micros{&e.NextAttemptAt}, &e.LockedBy, nullableMicros{&e.LockedUntil}, &e.LastError,
		micros{&e.CreatedAt}, micros{&e.UpdatedAt}, nullableMicros{&e.DeliveredAt}, &e.ChainDepth, &e.Key,
		&e.MaxAttempts, &initial, &maxInterval, &timeout, &e.StateScoped, &e.OnDead, &e.OnDeadOutcome)...)
	e.InitialInterval, e.MaxInterval, e.Timeout = time.Duration(initial)*time.Millisecond,
		time.Duration(maxInterval)*time.Millisecond, time.Duration(timeout)*time.Millisecond
	return e, err
}

const timerCols = `id, workflow_type, workflow_id, key, fire_at, input_type, input_data, status, attempts,
	next_attempt_at, locked_by, locked_until, last_error, outcome, created_at, updated_at, fired_at`

func scanTimer(sc scanner, rid *int64) (store.Timer, error) {
	var t store.Timer
	err := sc.Scan(withRID(rid, &t.ID, &t.WorkflowType, &t.WorkflowID, &t.Key, micros{&t.FireAt}, &t.InputType,
		jsonColumn{&t.InputData}, &t.Status, &t.Attempts, micros{&t.NextAttemptAt}, &t.LockedBy,
		nullableMicros{&t.LockedUntil}, &t.LastError, &t.Outcome, micros{&t.CreatedAt}, micros{&t.UpdatedAt},
		nullableMicros{&t.FiredAt})...)
	return t, err
}

const webhookCols = `workflow_type, url, secrets, status, created_at, updated_at`

func scanWebhook(sc scanner) (store.Webhook, error) {
	var w store.Webhook
	var secrets string
	if err := sc.Scan(&w.WorkflowType, &w.URL, &secrets, &w.Status, micros{&w.CreatedAt}, micros{&w.UpdatedAt}); err != nil {
		return store.Webhook{}, err
	}
	var err error
	if w.Secrets, err = sqlstore.DecodeSecrets([]byte(secrets)); err != nil {
		return store.Webhook{}, fmt.Errorf("webhook %s secrets: %w", w.WorkflowType, err)
	}
	return w, nil
}
