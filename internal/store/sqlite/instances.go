package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/ironflow/ironflow/internal/store"
)

// GetInstance returns one instance; store.ErrNotFound when absent.
func (s *Store) GetInstance(ctx context.Context, typ, id string) (store.Instance, error) {
	inst, err := scanInstance(s.r.QueryRowContext(ctx,
		`SELECT `+instanceCols+` FROM instances WHERE type = ? AND id = ?`, typ, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Instance{}, fmt.Errorf("sqlite: get instance %s/%s: %w", typ, id, store.ErrNotFound)
	}
	if err != nil {
		return store.Instance{}, mapErr("get instance", err)
	}
	return inst, nil
}

// filter accumulates an AND-ed WHERE clause.
type filter struct {
	conds []string
	args  []any
}

func (f *filter) eq(col, v string) {
	if v != "" {
		f.conds = append(f.conds, col+" = ?")
		f.args = append(f.args, v)
	}
}

func (f *filter) add(cond string, args ...any) {
	f.conds = append(f.conds, cond)
	f.args = append(f.args, args...)
}

func (f *filter) where() string {
	if len(f.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.conds, " AND ")
}

// page runs a keyset-paginated query over rid (oldest first) and scans each row.
func page[T any](ctx context.Context, db *sql.DB, op, cols, table string, f filter, cursor string, limit int,
	scan func(scanner) (T, int64, error)) (store.Page[T], error) {
	after, err := decodeCursor(cursor)
	if err != nil {
		return store.Page[T]{}, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	limit = pageLimit(limit)
	if after > 0 {
		f.add("rid > ?", after)
	}
	rows, err := db.QueryContext(ctx,
		`SELECT `+cols+` FROM `+table+f.where()+` ORDER BY rid LIMIT ?`, append(f.args, limit+1)...)
	if err != nil {
		return store.Page[T]{}, mapErr(op, err)
	}
	defer rows.Close()
	p := store.Page[T]{Items: []T{}}
	var lastRID int64
	for rows.Next() {
		if len(p.Items) == limit {
			p.Next = encodeCursor(lastRID)
			break
		}
		item, rid, err := scan(rows)
		if err != nil {
			return store.Page[T]{}, mapErr(op, err)
		}
		p.Items = append(p.Items, item)
		lastRID = rid
	}
	if err := rows.Err(); err != nil {
		return store.Page[T]{}, mapErr(op, err)
	}
	return p, nil
}

// ListInstances pages instances filtered by type, state name and status, oldest first.
// store.ErrInvalidCursor for a cursor this store did not make.
func (s *Store) ListInstances(ctx context.Context, p store.ListInstancesParams) (store.Page[store.Instance], error) {
	var f filter
	f.eq("type", p.Type)
	f.eq("state_name", p.State)
	f.eq("status", p.Status)
	return page(ctx, s.r, "list instances", instanceCols, "instances", f, p.Cursor, p.Limit, scanInstanceRID)
}

// ListInputs pages the input records of an instance, oldest first.
// store.ErrInvalidCursor for a cursor this store did not make.
func (s *Store) ListInputs(ctx context.Context, typ, id, cursor string, limit int) (store.Page[store.InputRecord], error) {
	var f filter
	f.add("workflow_type = ? AND workflow_id = ?", typ, id)
	return page(ctx, s.r, "list inputs", inputCols, "inputs", f, cursor, limit, scanInputRID)
}

// ListEvents returns up to limit (default 50) events of an instance with seq > afterSeq,
// in order; an empty list for an unknown instance.
func (s *Store) ListEvents(ctx context.Context, typ, id string, afterSeq int64, limit int) ([]store.Event, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT workflow_type, workflow_id, seq, type, from_state, to_state, data, input_type, input_id, recorded_at
		 FROM events WHERE workflow_type = ? AND workflow_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		typ, id, afterSeq, pageLimit(limit))
	if err != nil {
		return nil, mapErr("list events", err)
	}
	defer rows.Close()
	events := []store.Event{}
	for rows.Next() {
		var e store.Event
		var data sql.NullString
		var recorded int64
		if err := rows.Scan(&e.WorkflowType, &e.WorkflowID, &e.Seq, &e.Type, &e.From, &e.To, &data,
			&e.InputType, &e.InputID, &recorded); err != nil {
			return nil, mapErr("list events", err)
		}
		e.Data, e.RecordedAt = fromJSONText(data), fromMicros(recorded)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("list events", err)
	}
	return events, nil
}
