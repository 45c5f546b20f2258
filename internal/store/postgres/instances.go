package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/store"
)

const instanceColumns = `type, id, definition_version, state_name, state_data, status, version, unique_key,
    created_at, updated_at, completed_at`

// scanInstance scans instanceColumns, preceded by the row's rid when rid is not nil.
func scanInstance(row pgx.Row, rid *int64) (store.Instance, error) {
	var in store.Instance
	var data []byte
	dest := []any{&in.Type, &in.ID, &in.DefinitionVersion, &in.StateName, &data, &in.Status,
		&in.Version, &in.UniqueKey, &in.CreatedAt, &in.UpdatedAt, &in.CompletedAt}
	if rid != nil {
		dest = append([]any{rid}, dest...)
	}
	if err := row.Scan(dest...); err != nil {
		return store.Instance{}, err
	}
	in.StateData = rawJSON(data)
	in.CreatedAt = in.CreatedAt.UTC()
	in.UpdatedAt = in.UpdatedAt.UTC()
	in.CompletedAt = utcPtr(in.CompletedAt)
	return in, nil
}

const inputColumns = `id, workflow_type, workflow_id, idempotency_key, request_hash, type, data, source,
    outcome, reason, version, response, created_at`

// scanInput scans inputColumns, preceded by the row's rid when rid is not nil.
func scanInput(row pgx.Row, rid *int64) (store.InputRecord, error) {
	var in store.InputRecord
	var data, response []byte
	dest := []any{&in.ID, &in.WorkflowType, &in.WorkflowID, &in.IdempotencyKey, &in.RequestHash,
		&in.Type, &data, &in.Source, &in.Outcome, &in.Reason, &in.Version, &response, &in.CreatedAt}
	if rid != nil {
		dest = append([]any{rid}, dest...)
	}
	if err := row.Scan(dest...); err != nil {
		return store.InputRecord{}, err
	}
	in.Data = rawJSON(data)
	if response != nil {
		in.Response = response // as stored, byte for byte
	}
	in.CreatedAt = in.CreatedAt.UTC()
	return in, nil
}

const eventColumns = `workflow_type, workflow_id, seq, type, from_state, to_state, data, input_type,
    input_id, recorded_at`

func scanEvent(row pgx.Row) (store.Event, error) {
	var e store.Event
	var data []byte
	if err := row.Scan(&e.WorkflowType, &e.WorkflowID, &e.Seq, &e.Type, &e.From, &e.To, &data,
		&e.InputType, &e.InputID, &e.RecordedAt); err != nil {
		return store.Event{}, err
	}
	e.Data = rawJSON(data)
	e.RecordedAt = e.RecordedAt.UTC()
	return e, nil
}

// GetInstance returns one instance; store.ErrNotFound when absent.
func (s *Store) GetInstance(ctx context.Context, typ, id string) (store.Instance, error) {
	in, err := scanInstance(s.pool.QueryRow(ctx, `SELECT `+instanceColumns+` FROM instances
WHERE type = $1 AND id = $2`, typ, id), nil)
	if err != nil {
		return store.Instance{}, mapErr("get instance", err)
	}
	return in, nil
}

// ListInstances pages instances matching the filters, oldest first;
// store.ErrInvalidCursor when p.Cursor cannot be decoded.
func (s *Store) ListInstances(ctx context.Context, p store.ListInstancesParams) (store.Page[store.Instance], error) {
	after, err := decodeCursor(p.Cursor)
	if err != nil {
		return store.Page[store.Instance]{}, mapErr("list instances", err)
	}
	var f filters
	f.add("rid > ?", after)
	// Always true now that instances are locked without placeholder rows (decision
	// 0008), but it lets the list use the partial indexes migration 000002 made.
	f.conds = append(f.conds, "status <> ''")
	f.addIf("type = ?", p.Type)
	f.addIf("state_name = ?", p.State)
	f.addStatus(p.Status, store.StatusRunning, store.StatusCompleted)
	limit := pageLimit(p.Limit)
	query := `SELECT rid, ` + instanceColumns + ` FROM instances` + f.where() +
		` ORDER BY rid LIMIT ` + f.next(limit+1)
	page, err := listPage(ctx, s, query, f.args, limit, scanInstance)
	if err != nil {
		return store.Page[store.Instance]{}, mapErr("list instances", err)
	}
	return page, nil
}

// ListEvents returns up to limit (50 when limit <= 0) events of an instance with
// seq > afterSeq, in order.
func (s *Store) ListEvents(ctx context.Context, typ, id string, afterSeq int64, limit int) ([]store.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
WHERE workflow_type = $1 AND workflow_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
		typ, id, afterSeq, pageLimit(limit))
	if err != nil {
		return nil, mapErr("list events", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Event, error) {
		return scanEvent(row)
	})
	if err != nil {
		return nil, mapErr("list events", err)
	}
	if events == nil {
		events = []store.Event{}
	}
	return events, nil
}

// ListInputs pages the input records of an instance, oldest first;
// store.ErrInvalidCursor when cursor cannot be decoded.
func (s *Store) ListInputs(ctx context.Context, typ, id, cursor string, limit int) (store.Page[store.InputRecord], error) {
	after, err := decodeCursor(cursor)
	if err != nil {
		return store.Page[store.InputRecord]{}, mapErr("list inputs", err)
	}
	limit = pageLimit(limit)
	page, err := listPage(ctx, s, `SELECT rid, `+inputColumns+` FROM inputs
WHERE workflow_type = $1 AND workflow_id = $2 AND rid > $3 ORDER BY rid LIMIT $4`,
		[]any{typ, id, after, limit + 1}, limit, scanInput)
	if err != nil {
		return store.Page[store.InputRecord]{}, mapErr("list inputs", err)
	}
	return page, nil
}

// listPage runs a keyset query that selects rid first and up to limit+1 rows, and
// returns the first limit rows with the cursor of the next page when there are more.
func listPage[T any](ctx context.Context, s *Store, query string, args []any, limit int,
	scan func(pgx.Row, *int64) (T, error)) (store.Page[T], error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return store.Page[T]{}, err
	}
	defer rows.Close()
	page := store.Page[T]{Items: make([]T, 0, min(limit, 64))}
	var lastRID int64
	for rows.Next() {
		if len(page.Items) == limit {
			page.Next = encodeCursor(lastRID)
			break
		}
		var rid int64
		item, err := scan(rows, &rid)
		if err != nil {
			return store.Page[T]{}, err
		}
		page.Items = append(page.Items, item)
		lastRID = rid
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return store.Page[T]{}, err
	}
	return page, nil
}
