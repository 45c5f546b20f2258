package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

// Execute decides and records one input in one write transaction: idempotency replay,
// expected-version check, p.Decide against the current instance, then the Write. Errors:
// store.ErrIdempotencyMismatch, store.ErrVersionMismatch, store.ErrUniqueKeyConflict,
// the DecideFunc's own error unchanged, or store.ErrUnavailable.
//
// The single writer serialises Execute calls, so the instance is locked for the whole
// decision; a DecideFunc must not call the store's write methods. The decision runs on
// the writer goroutine, inside its own savepoint of a group transaction (writer.go),
// with ctx stripped of its cancellation; p.Decide's error fails this input alone.
func (s *Store) Execute(ctx context.Context, p store.ExecuteParams) (store.ExecuteResult, error) {
	if p.Decide == nil {
		return store.ExecuteResult{}, errors.New("sqlite: execute: no DecideFunc")
	}
	if p.DryRun {
		return s.dryRun(ctx, p)
	}
	var res store.ExecuteResult
	var sg signals
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		res, sg, err = execute(ctx, tx, p)
		return err
	})
	if err != nil {
		return store.ExecuteResult{}, mapErr("execute", err)
	}
	s.notify.send(sg)
	return res, nil
}

// dryRun runs the checks and the decision on the reader pool and writes nothing. It
// does not hold the writer, so it neither waits for nor delays real inputs.
func (s *Store) dryRun(ctx context.Context, p store.ExecuteParams) (store.ExecuteResult, error) {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return store.ExecuteResult{}, mapErr("execute", err)
	}
	defer func() { _ = tx.Rollback() }()
	res, replayed, current, def, err := precheck(ctx, tx, p)
	if err != nil {
		return store.ExecuteResult{}, mapErr("execute", err)
	}
	if replayed {
		return res, nil
	}
	w, err := decideWrite(ctx, p, current, def)
	if err != nil {
		return store.ExecuteResult{}, mapErr("execute", err)
	}
	return store.ExecuteResult{Input: w.Input, Write: w}, nil
}

// querier is a read transaction on the reader pool or the writer's *wtx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// precheck does what comes before a decision: the idempotency replay (replayed true and
// res filled), the instance load, the expected-version check and the load of the
// definition the decision is made by (nil when the type has none).
func precheck(ctx context.Context, q querier, p store.ExecuteParams) (res store.ExecuteResult, replayed bool, current *store.Instance, def *store.Definition, err error) {
	if p.IdempotencyKey != "" {
		rec, err := scanInput(q.QueryRowContext(ctx, sqlInputByKey, p.WorkflowType, p.WorkflowID, p.IdempotencyKey))
		switch {
		case err == nil:
			if rec.RequestHash != p.RequestHash {
				return res, false, nil, nil, fmt.Errorf("key %q: %w", p.IdempotencyKey, store.ErrIdempotencyMismatch)
			}
			return store.ExecuteResult{Input: rec, Replayed: true}, true, nil, nil, nil
		case !errors.Is(err, sql.ErrNoRows):
			return res, false, nil, nil, err
		}
	}
	inst, err := scanInstance(q.QueryRowContext(ctx, sqlInstance, p.WorkflowType, p.WorkflowID))
	switch {
	case err == nil:
		current = &inst
	case !errors.Is(err, sql.ErrNoRows):
		return res, false, nil, nil, err
	}
	if err := checkVersion(p, current); err != nil {
		return res, false, nil, nil, err
	}
	def, err = loadDefinition(ctx, q, p.WorkflowType, definitionVersion(current))
	if err != nil {
		return res, false, nil, nil, err
	}
	return res, false, current, def, nil
}

// definitionVersion is the definition version a decision on current is made by: the
// pinned one, or 0 (the latest) for an instance that does not exist yet.
func definitionVersion(current *store.Instance) int {
	if current == nil {
		return 0
	}
	return current.DefinitionVersion
}

// loadDefinition returns version of typ's definition (0: the latest); nil when there
// is none.
func loadDefinition(ctx context.Context, q querier, typ string, version int) (*store.Definition, error) {
	d, err := getDefinition(ctx, q, typ, version)
	switch {
	case err == nil:
		return &d, nil
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	}
	return nil, err
}

// checkVersion checks p.ExpectedVersion, if set, against the current instance.
func checkVersion(p store.ExecuteParams, current *store.Instance) error {
	if p.ExpectedVersion == nil {
		return nil
	}
	var have int64
	if current != nil {
		have = current.Version
	}
	// 0 means "must not exist"; an instance always has at least one event.
	if (current == nil && *p.ExpectedVersion != 0) || (current != nil && have != *p.ExpectedVersion) {
		return fmt.Errorf("instance at version %d, expected %d: %w", have, *p.ExpectedVersion, store.ErrVersionMismatch)
	}
	return nil
}

// execute is the one "decide and write an input inside tx" helper that Execute,
// CompleteEffect and CompleteTimer share. p.DryRun is not consulted: callers that may
// not write do not call it.
func execute(ctx context.Context, tx *wtx, p store.ExecuteParams) (store.ExecuteResult, signals, error) {
	res, replayed, current, def, err := precheck(ctx, tx, p)
	if err != nil || replayed {
		return res, signals{}, err
	}
	w, err := decideWrite(ctx, p, current, def)
	if err != nil {
		return store.ExecuteResult{}, signals{}, err
	}
	sg, err := applyWrite(ctx, tx, current, w)
	if err != nil {
		return store.ExecuteResult{}, signals{}, err
	}
	return store.ExecuteResult{Input: w.Input, Write: w}, sg, nil
}

// decideWrite calls p.Decide on current and def and prepares the Write it returns
// (prepareWrite). A DecideFunc's error comes back as a decideError.
func decideWrite(ctx context.Context, p store.ExecuteParams, current *store.Instance, def *store.Definition) (*store.Write, error) {
	w, err := p.Decide(ctx, current, def)
	if err != nil {
		return nil, decideError{err}
	}
	if w == nil {
		return nil, errors.New("DecideFunc returned no write")
	}
	if err := prepareWrite(p, current, w); err != nil {
		return nil, err
	}
	return w, nil
}

// prepareWrite checks w against the current instance and fills what the DecideFunc may
// leave out: identities from p, ids, seqs continuing the history, timestamps (the input
// record's CreatedAt, or now), the instance version (its last seq) and the input's
// idempotency fields. It changes w in place so the caller sees what was written.
func prepareWrite(p store.ExecuteParams, current *store.Instance, w *store.Write) error {
	in := &w.Input
	now := nowOr(in.CreatedAt)
	if in.ID == "" {
		in.ID = newID()
	}
	in.WorkflowType, in.WorkflowID = p.WorkflowType, p.WorkflowID
	if in.IdempotencyKey == "" {
		in.IdempotencyKey = p.IdempotencyKey
	}
	if in.RequestHash == "" {
		in.RequestHash = p.RequestHash
	}
	if in.Source == "" {
		in.Source = store.SourceAPI
	}
	if in.Outcome == "" {
		return errors.New("input record has no outcome")
	}
	in.CreatedAt = now

	var prevSeq int64
	if current != nil {
		prevSeq = current.Version
	}
	if len(w.Events) > 0 && w.Instance == nil {
		return errors.New("events without an instance row")
	}
	for i := range w.Events {
		e := &w.Events[i]
		want := prevSeq + int64(i) + 1
		if e.Seq == 0 {
			e.Seq = want
		}
		if e.Seq != want {
			return fmt.Errorf("event seq %d does not continue the history at %d", e.Seq, want)
		}
		e.WorkflowType, e.WorkflowID = p.WorkflowType, p.WorkflowID
		e.InputID = in.ID
		if e.InputType == "" {
			e.InputType = in.Type
		}
		e.RecordedAt = nowOr(orTime(e.RecordedAt, now))
	}
	lastSeq := prevSeq + int64(len(w.Events))
	if inst := w.Instance; inst != nil {
		inst.Type, inst.ID = p.WorkflowType, p.WorkflowID
		inst.Version = lastSeq
		if inst.Status == "" {
			inst.Status = store.StatusRunning
		}
		if current != nil {
			inst.CreatedAt = current.CreatedAt
		} else {
			inst.CreatedAt = nowOr(orTime(inst.CreatedAt, now))
		}
		inst.UpdatedAt = nowOr(orTime(inst.UpdatedAt, now))
		if inst.CompletedAt != nil {
			t := inst.CompletedAt.UTC()
			inst.CompletedAt = &t
		}
		if inst.Status == store.StatusCompleted && inst.CompletedAt == nil {
			t := inst.UpdatedAt
			inst.CompletedAt = &t
		}
	}
	if in.Version == 0 {
		in.Version = lastSeq
	}
	for i := range w.Effects {
		e := &w.Effects[i]
		if e.ID == "" {
			e.ID = newID()
		}
		e.WorkflowType, e.WorkflowID = p.WorkflowType, p.WorkflowID
		if e.Seq == 0 {
			e.Seq = lastSeq
		}
		e.Status = store.EffectPending
		e.Attempts = 0
		e.LockedBy, e.LockedUntil, e.DeliveredAt, e.LastError = "", nil, nil, ""
		e.CreatedAt = nowOr(orTime(e.CreatedAt, now))
		e.UpdatedAt = e.CreatedAt
		e.NextAttemptAt = e.CreatedAt
	}
	for i := range w.Timers {
		t := &w.Timers[i]
		t.WorkflowType, t.WorkflowID = p.WorkflowType, p.WorkflowID
		prepareTimer(t, now)
	}
	return nil
}

// prepareTimer fills a new pending timer.
func prepareTimer(t *store.Timer, now time.Time) {
	if t.ID == "" {
		t.ID = newID()
	}
	t.Status = store.TimerPending
	t.Attempts = 0
	t.LockedBy, t.LockedUntil, t.FiredAt, t.LastError, t.Outcome = "", nil, nil, "", ""
	t.FireAt = t.FireAt.UTC()
	t.NextAttemptAt = t.FireAt
	t.CreatedAt = nowOr(orTime(t.CreatedAt, now))
	t.UpdatedAt = t.CreatedAt
}

func orTime(t, fallback time.Time) time.Time {
	if t.IsZero() {
		return fallback
	}
	return t
}

// applyWrite writes a prepared Write: instance row, events, effects, timer cancels and
// schedules, and the input record.
func applyWrite(ctx context.Context, tx *wtx, current *store.Instance, w *store.Write) (signals, error) {
	if w.Instance != nil {
		if err := upsertInstance(ctx, tx, w.Instance); err != nil {
			return signals{}, err
		}
	}
	for _, e := range w.Events {
		args, err := eventArgs(e)
		if err != nil {
			return signals{}, err
		}
		if _, err := tx.ExecContext(ctx, eventInsert.one(), args...); err != nil {
			return signals{}, fmt.Errorf("insert event %d: %w", e.Seq, err)
		}
	}
	sg, err := applySideRows(ctx, tx, w)
	if err != nil {
		return sg, err
	}
	if err := insertInput(ctx, tx, &w.Input); err != nil {
		return sg, err
	}
	return sg, nil
}

// eventArgs are the values of eventInsert for e.
func eventArgs(e store.Event) ([]any, error) {
	data, err := jsonText(e.Data)
	if err != nil {
		return nil, fmt.Errorf("event %d data: %w", e.Seq, err)
	}
	return []any{e.WorkflowType, e.WorkflowID, e.Seq, e.Type, e.From, e.To, data, e.InputType, e.InputID,
		toMicros(e.RecordedAt)}, nil
}

// applySideRows writes what a Write holds besides its instance, events and input
// record: effects, timer cancellations and new timers.
func applySideRows(ctx context.Context, tx *wtx, w *store.Write) (signals, error) {
	var sg signals
	for _, e := range w.Effects {
		payload, err := jsonText(e.Payload)
		if err != nil {
			return sg, fmt.Errorf("effect %s payload: %w", e.Name, err)
		}
		if _, err := tx.ExecContext(ctx, sqlInsertEffect,
			e.ID, e.WorkflowType, e.WorkflowID, e.Seq, e.Name, payload, e.Status,
			toMicros(e.NextAttemptAt), toMicros(e.CreatedAt), toMicros(e.UpdatedAt)); err != nil {
			return sg, fmt.Errorf("insert effect %s: %w", e.Name, err)
		}
		sg.effects = true
	}
	if len(w.CancelTimerKeys) > 0 {
		if err := cancelTimerKeys(ctx, tx, w.Input.WorkflowType, w.Input.WorkflowID, w.CancelTimerKeys, w.Input.CreatedAt); err != nil {
			return sg, err
		}
	}
	for i := range w.Timers {
		if err := insertTimer(ctx, tx, &w.Timers[i]); err != nil {
			return sg, err
		}
		sg.timers = true
	}
	return sg, nil
}

func upsertInstance(ctx context.Context, tx *wtx, inst *store.Instance) error {
	args, err := instanceArgs(inst)
	if err != nil {
		return err
	}
	if err := checkUniqueKey(ctx, tx, inst); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, instanceUpsert.one(), args...)
	if isUniqueViolation(err) && strings.Contains(err.Error(), "unique_key") {
		return fmt.Errorf("key %q: %w", inst.UniqueKey, store.ErrUniqueKeyConflict)
	}
	if err != nil {
		return fmt.Errorf("upsert instance: %w", err)
	}
	return nil
}

// checkUniqueKey fails with store.ErrUniqueKeyConflict when inst is running with a
// unique key that another running instance of its type holds.
func checkUniqueKey(ctx context.Context, tx *wtx, inst *store.Instance) error {
	if inst.Status != store.StatusRunning || inst.UniqueKey == "" {
		return nil
	}
	var holder string
	err := tx.QueryRowContext(ctx, sqlUniqueKeyHolder, inst.Type, inst.UniqueKey, inst.ID).Scan(&holder)
	switch {
	case err == nil:
		return fmt.Errorf("key %q held by %s: %w", inst.UniqueKey, holder, store.ErrUniqueKeyConflict)
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	return nil
}

// instanceArgs encodes inst as the values of instanceUpsert (a missing state is
// {}) and sets inst.StateData to what is stored.
func instanceArgs(inst *store.Instance) ([]any, error) {
	data, err := jsonText(inst.StateData)
	if err != nil {
		return nil, fmt.Errorf("instance state data: %w", err)
	}
	if !data.Valid {
		data = sql.NullString{String: "{}", Valid: true}
	}
	inst.StateData = fromJSONText(data)
	return []any{inst.Type, inst.ID, inst.DefinitionVersion, inst.StateName, data, inst.Status, inst.Version,
		inst.UniqueKey, toMicros(inst.CreatedAt), toMicros(inst.UpdatedAt), nullMicros(inst.CompletedAt)}, nil
}

// inputArgs encodes in as the values of inputInsert and sets in.Data and
// in.Response to what is stored.
func inputArgs(in *store.InputRecord) ([]any, error) {
	data, err := jsonText(in.Data)
	if err != nil {
		return nil, fmt.Errorf("input data: %w", err)
	}
	resp, err := jsonText(in.Response)
	if err != nil {
		return nil, fmt.Errorf("input response: %w", err)
	}
	in.Data, in.Response = fromJSONText(data), fromJSONText(resp)
	return []any{in.ID, in.WorkflowType, in.WorkflowID, in.IdempotencyKey, in.RequestHash, in.Type, data, in.Source,
		in.Outcome, in.Reason, in.Version, resp, toMicros(in.CreatedAt)}, nil
}

func insertInput(ctx context.Context, tx *wtx, in *store.InputRecord) error {
	args, err := inputArgs(in)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, inputInsert.one(), args...)
	if isUniqueViolation(err) && strings.Contains(err.Error(), "idempotency_key") {
		// Unreachable with one writer (the key was looked up in this transaction); kept so
		// the mapping does not depend on that.
		return fmt.Errorf("key %q: %w", in.IdempotencyKey, store.ErrIdempotencyMismatch)
	}
	if err != nil {
		return fmt.Errorf("insert input: %w", err)
	}
	return nil
}

// Statements of the decision path, prepared on the writer (statements.go).
const (
	// The "idempotency_key <> ''" and "unique_key <> ''" terms are implied by the
	// callers (they run these only for a non-empty key) but SQLite cannot infer them from
	// "= ?": without them the partial unique indexes are not used and the lookups scan
	// every input of the instance, or every running instance.
	sqlInputByKey = `SELECT ` + inputCols + ` FROM inputs
		WHERE workflow_type = ? AND workflow_id = ? AND idempotency_key = ? AND idempotency_key <> ''`
	sqlUniqueKeyHolder = `SELECT id FROM instances
		WHERE type = ? AND unique_key = ? AND status = 'running' AND unique_key <> '' AND id <> ?`

	sqlInstance     = `SELECT ` + instanceCols + ` FROM instances WHERE type = ? AND id = ?`
	sqlInsertEffect = `INSERT INTO effects (id, workflow_type, workflow_id, seq, name, payload, status, attempts,
		                      next_attempt_at, created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`
)

// The writes of a decision's rows, one row at a time (one) or many (exec, the timer
// batch); the columns are in the order of instanceArgs, eventArgs and inputArgs.
var (
	instanceUpsert = newRowWrite(`INSERT INTO instances (type, id, definition_version, state_name, state_data,
		                        status, version, unique_key, created_at, updated_at, completed_at)`, 11, `
		 ON CONFLICT (type, id) DO UPDATE SET
		   definition_version = excluded.definition_version,
		   state_name = excluded.state_name,
		   state_data = excluded.state_data,
		   status = excluded.status,
		   version = excluded.version,
		   unique_key = excluded.unique_key,
		   updated_at = excluded.updated_at,
		   completed_at = excluded.completed_at`)
	eventInsert = newRowWrite(`INSERT INTO events (workflow_type, workflow_id, seq, type, from_state, to_state, data,
		                     input_type, input_id, recorded_at)`, 10, "")
	inputInsert = newRowWrite(`INSERT INTO inputs (id, workflow_type, workflow_id, idempotency_key, request_hash, type,
		                     data, source, outcome, reason, version, response, created_at)`, 13, "")
)

const instanceCols = `rid, type, id, definition_version, state_name, state_data, status, version, unique_key,
	created_at, updated_at, completed_at`

func scanInstanceRID(sc scanner) (store.Instance, int64, error) {
	var i store.Instance
	var rid, created, updated int64
	var data string
	var completed sql.NullInt64
	if err := sc.Scan(&rid, &i.Type, &i.ID, &i.DefinitionVersion, &i.StateName, &data, &i.Status, &i.Version,
		&i.UniqueKey, &created, &updated, &completed); err != nil {
		return store.Instance{}, 0, err
	}
	i.StateData = []byte(data)
	i.CreatedAt, i.UpdatedAt, i.CompletedAt = fromMicros(created), fromMicros(updated), fromNullMicros(completed)
	return i, rid, nil
}

func scanInstance(sc scanner) (store.Instance, error) {
	i, _, err := scanInstanceRID(sc)
	return i, err
}

const inputCols = `rid, id, workflow_type, workflow_id, idempotency_key, request_hash, type, data, source, outcome,
	reason, version, response, created_at`

func scanInputRID(sc scanner) (store.InputRecord, int64, error) {
	var in store.InputRecord
	var rid, created int64
	var data, resp sql.NullString
	if err := sc.Scan(&rid, &in.ID, &in.WorkflowType, &in.WorkflowID, &in.IdempotencyKey, &in.RequestHash, &in.Type,
		&data, &in.Source, &in.Outcome, &in.Reason, &in.Version, &resp, &created); err != nil {
		return store.InputRecord{}, 0, err
	}
	in.Data, in.Response, in.CreatedAt = fromJSONText(data), fromJSONText(resp), fromMicros(created)
	return in, rid, nil
}

func scanInput(sc scanner) (store.InputRecord, error) {
	in, _, err := scanInputRID(sc)
	return in, err
}
