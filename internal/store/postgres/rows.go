package postgres

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/store"
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

// queueMany queues on b the write of rows (none: nothing), each of w.cols values.
func (w rowWrite) queueMany(b *pgx.Batch, rows [][]any) {
	if len(rows) == 0 {
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

// instanceTypes are the types of instanceColumns.
var instanceTypes = []string{"text", "text", "integer", "text", "json", "text", "bigint", "text", "timestamptz", "timestamptz", "timestamptz"}

// The writes of a decision's rows, with the values of instanceRow, eventRow and inputRow.
var (
	instanceInsert = newRowWrite(`INSERT INTO instances (`+instanceColumns+`)`, instanceTypes, "")
	// instanceUpsert writes instances whether they exist or not: the batch of
	// CompleteTimers, whose instances are locked.
	instanceUpsert = newRowWrite(`INSERT INTO instances (`+instanceColumns+`)`, instanceTypes, `
ON CONFLICT (type, id) DO UPDATE SET definition_version = excluded.definition_version,
    state_name = excluded.state_name, state_data = excluded.state_data, status = excluded.status,
    version = excluded.version, unique_key = excluded.unique_key, created_at = excluded.created_at,
    updated_at = excluded.updated_at, completed_at = excluded.completed_at`)
	eventInsert = newRowWrite(`INSERT INTO events (`+eventColumns+`)`,
		[]string{"text", "text", "bigint", "text", "text", "text", "json", "text", "text", "timestamptz"}, "")
	inputInsert = newRowWrite(`INSERT INTO inputs (`+inputColumns+`)`,
		[]string{"text", "text", "text", "text", "text", "text", "json", "text", "text", "text", "bigint", "bytea", "timestamptz"}, "")
)

// instanceRow is in as the values of instanceColumns.
func instanceRow(in *store.Instance) ([]any, error) {
	data, err := jsonParam(in.StateData)
	if err != nil {
		return nil, fmt.Errorf("instance state data: %w", err)
	}
	return []any{in.Type, in.ID, in.DefinitionVersion, in.StateName, data,
		in.Status, in.Version, in.UniqueKey, in.CreatedAt, in.UpdatedAt, in.CompletedAt}, nil
}

// eventRow is e as the values of eventColumns.
func eventRow(e store.Event) ([]any, error) {
	data, err := jsonParam(e.Data)
	if err != nil {
		return nil, fmt.Errorf("event %d data: %w", e.Seq, err)
	}
	return []any{e.WorkflowType, e.WorkflowID, e.Seq, e.Type, e.From, e.To, data, e.InputType, e.InputID, e.RecordedAt}, nil
}

// inputRow is in as the values of inputColumns.
func inputRow(in store.InputRecord) ([]any, error) {
	data, err := jsonParam(in.Data)
	if err != nil {
		return nil, fmt.Errorf("input data: %w", err)
	}
	var response []byte
	if in.Response != nil {
		response = []byte(in.Response)
	}
	return []any{in.ID, in.WorkflowType, in.WorkflowID, in.IdempotencyKey, in.RequestHash, in.Type, data,
		in.Source, in.Outcome, cleanText(in.Reason), in.Version, response, in.CreatedAt}, nil
}
