package postgres

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// rowWrite is an INSERT of rows of fixed columns: one row by VALUES, many rows by
// unnest, which takes one array per column, so a batch of any size is one statement
// with one text (and one cached prepared statement) and one set of index updates in
// one executor run, instead of a statement per row.
type rowWrite struct {
	one, many string
	cols      int
}

// newRowWrite builds the statements "head VALUES ($1::types[0], …) tail" and
// "head SELECT * FROM unnest($1::types[0][], …) tail". The casts type the columns of a
// head that names them in a CTE rather than in an INSERT.
func newRowWrite(head string, types []string, tail string) rowWrite {
	params := make([]string, len(types))
	arrays := make([]string, len(types))
	for i, t := range types {
		p := "$" + strconv.Itoa(i+1)
		params[i] = p + "::" + t
		arrays[i] = p + "::" + t + "[]"
	}
	return rowWrite{
		one:  head + " VALUES (" + strings.Join(params, ", ") + ")" + tail,
		many: head + " SELECT * FROM unnest(" + strings.Join(arrays, ", ") + ")" + tail,
		cols: len(types),
	}
}

func (w rowWrite) queueOne(b *pgx.Batch, row []any) { b.Queue(w.one, row...) }

// queue queues on b the write of rows (none: nothing), each of w.cols values.
func (w rowWrite) queue(b *pgx.Batch, rows [][]any) {
	switch len(rows) {
	case 0:
		return
	case 1:
		w.queueOne(b, rows[0])
		return
	}
	cols := make([]any, w.cols)
	for j := range cols {
		col := make([]any, len(rows))
		for i, row := range rows {
			col[i] = row[j]
		}
		cols[j] = col
	}
	b.Queue(w.many, cols...)
}

// instanceTypes are the types of sqlstore.InstanceColumns.
var instanceTypes = []string{"text", "text", "integer", "text", "json", "text", "bigint", "text", "timestamptz", "timestamptz", "timestamptz",
	"text", "text", "text", "text", "text"}

// The writes of the protocol's rows, with the values of the row functions below.
var (
	instanceInsert = newRowWrite(`INSERT INTO instances (`+sqlstore.InstanceColumns+`)`, instanceTypes, "")
	// instanceUpsert writes the instances of a batch that existed (Write); an
	// instance's parent and link are set when it is created and never change.
	instanceUpsert = newRowWrite(`INSERT INTO instances (`+sqlstore.InstanceColumns+`)`, instanceTypes, `
ON CONFLICT (type, id) DO UPDATE SET definition_version = excluded.definition_version,
    state_name = excluded.state_name, state_data = excluded.state_data, status = excluded.status,
    version = excluded.version, unique_key = excluded.unique_key, created_at = excluded.created_at,
    updated_at = excluded.updated_at, completed_at = excluded.completed_at`)
	eventInsert = newRowWrite(`INSERT INTO events (`+sqlstore.EventColumns+`)`,
		[]string{"text", "text", "bigint", "text", "text", "text", "json", "text", "text", "timestamptz"}, "")
	inputInsert = newRowWrite(`INSERT INTO inputs (`+sqlstore.InputColumns+`)`,
		[]string{"text", "text", "text", "text", "text", "text", "json", "text", "text", "text", "bigint", "bytea", "timestamptz"}, "")
	// A new effect is pending, with no attempt yet.
	effectInsert = newRowWrite(`INSERT INTO effects (id, workflow_type, workflow_id, seq, name, payload, status, attempts,
    next_attempt_at, created_at, updated_at, chain_depth, effect_key, max_attempts, initial_interval_ms,
    max_interval_ms, timeout_ms, state_scoped, on_dead, send_workflow_type, send_workflow_id, send_on_completed,
    send_on_failed, send_on_parent_end, item, item_index)`,
		[]string{"text", "text", "text", "bigint", "text", "json", "text", "integer", "timestamptz", "timestamptz", "timestamptz",
			"integer", "text", "integer", "bigint", "bigint", "bigint", "boolean", "text", "text", "text", "text", "text", "text",
			"json", "integer"}, "")
	// An attempt is numbered after the effect's earlier ones.
	attemptInsert = newRowWrite(`WITH v (effect_id, started_at, duration_ns, status_code, error, response, routed_outcome) AS (`,
		[]string{"text", "timestamptz", "bigint", "integer", "text", "bytea", "text"}, `)
INSERT INTO effect_attempts
    (effect_id, number, started_at, duration_ns, status_code, error, response, routed_outcome)
SELECT v.effect_id, coalesce((SELECT max(a.number) FROM effect_attempts a WHERE a.effect_id = v.effect_id), 0) + 1,
    v.started_at, v.duration_ns, v.status_code, v.error, v.response, v.routed_outcome
FROM v`)
	// An on_dead outcome, once there, stays (the input runs once per effect).
	effectUpdate = newRowWrite(`WITH v (id, status, next_attempt_at, last_error, delivered_at, updated_at, on_dead_outcome) AS (`,
		[]string{"text", "text", "timestamptz", "text", "timestamptz", "timestamptz", "text"}, `)
UPDATE effects e SET status = v.status, attempts = e.attempts + 1, next_attempt_at = v.next_attempt_at,
    last_error = v.last_error, delivered_at = v.delivered_at, locked_by = '', locked_until = NULL,
    updated_at = v.updated_at, on_dead_outcome = coalesce(nullif(e.on_dead_outcome, ''), v.on_dead_outcome)
FROM v WHERE e.id = v.id`)
	timerUpdate = newRowWrite(`WITH v (id, status, next_attempt_at, last_error, outcome, fired_at, updated_at) AS (`,
		[]string{"text", "text", "timestamptz", "text", "text", "timestamptz", "timestamptz"}, `)
UPDATE timers t SET status = v.status, attempts = t.attempts + 1, next_attempt_at = v.next_attempt_at,
    last_error = v.last_error, outcome = v.outcome, fired_at = v.fired_at, locked_by = '',
    locked_until = NULL, updated_at = v.updated_at
FROM v WHERE t.id = v.id`)
)

// params passes times and nullable times as themselves, JSON as jsonParam and an
// input's response as bytea, byte for byte.
var params = sqlstore.Params{
	Time:     func(t time.Time) any { return t },
	NullTime: func(t *time.Time) any { return t },
	JSON:     jsonParam,
	Response: func(r json.RawMessage) any { return []byte(r) },
}

// effectRow is the row effectInsert writes of a prepared (pending) effect.
func effectRow(e store.Effect) []any {
	return []any{e.ID, e.WorkflowType, e.WorkflowID, e.Seq, e.Name, jsonParam(e.Payload), store.EffectPending, 0,
		e.NextAttemptAt, e.CreatedAt, e.UpdatedAt, e.ChainDepth, e.Key, e.MaxAttempts, e.InitialInterval.Milliseconds(),
		e.MaxInterval.Milliseconds(), e.Timeout.Milliseconds(), e.StateScoped, e.OnDead, e.SendType, e.SendID,
		e.SendChild.OnCompleted, e.SendChild.OnFailed, e.SendChild.OnParentEnd, jsonParam(e.Item), e.ItemIndex}
}

func attemptRow(c sqlstore.EffectCompletion) []any {
	a := c.Attempt
	return []any{a.EffectID, a.StartedAt, int64(a.Duration), a.StatusCode, a.Error, []byte(a.Response), a.RoutedOutcome}
}

// jsonParam is a compacted JSON value as a json parameter: NULL when empty; a string,
// not []byte, which pgx sends as JSON text to both json and jsonb.
func jsonParam(raw json.RawMessage) any {
	if raw == nil {
		return nil
	}
	return string(raw)
}

// prefixed qualifies every column of a comma-separated column list with prefix ("e.").
func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}
