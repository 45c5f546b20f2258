package postgres

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// scanner reads the rows of every table: pgx scans timestamptz, json and bytea columns
// straight into time.Time and []byte (as stored: every write compacts JSON first), SQL
// NULL as nil.
var scanner = sqlstore.Scanners{
	Time:     func(t *time.Time) any { return t },
	NullTime: func(t **time.Time) any { return t },
	JSON:     func(raw *json.RawMessage) any { return (*[]byte)(raw) },
}

// collect scans every row of a query with scan.
func collect[T any](rows pgx.Rows, err error, scan func(sqlstore.Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
}

// list runs a keyset query over table's rid after after, oldest first, up to limit rows.
func list[T any](ctx context.Context, d *driver, table, columns string, f filters, after int64, limit int,
	scan func(sqlstore.Row, *int64) (T, error)) ([]sqlstore.Listed[T], error) {
	f.add("rid > ?", after)
	rows, err := d.pool.Query(ctx, `SELECT rid, `+columns+` FROM `+table+f.where()+` ORDER BY rid LIMIT `+f.next(limit), f.args...)
	return collect(rows, err, sqlstore.ListedOf(scan))
}

// filters builds a WHERE clause of ANDed conditions with numbered parameters.
type filters struct {
	conds []string
	args  []any
}

// add appends cond, in which "?" stands for the parameter arg.
func (f *filters) add(cond string, arg any) {
	f.conds = append(f.conds, strings.Replace(cond, "?", f.next(arg), 1))
}

// addIf appends cond unless arg is "".
func (f *filters) addIf(cond, arg string) {
	if arg != "" {
		f.add(cond, arg)
	}
}

// addStatus appends status = value unless value is "". One of the store's own statuses
// (known) goes into the SQL as a literal rather than a parameter, so that the planner
// can match the partial indexes on status (migrations 000002) even when it settles on a
// generic plan for the cached statement.
func (f *filters) addStatus(value string, known ...string) {
	if slices.Contains(known, value) {
		f.conds = append(f.conds, "status = '"+value+"'")
		return
	}
	f.addIf("status = ?", value)
}

func (f *filters) where() string {
	if len(f.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.conds, " AND ")
}

// next returns the placeholder of the next parameter, arg.
func (f *filters) next(arg any) string {
	f.args = append(f.args, arg)
	return "$" + strconv.Itoa(len(f.args))
}
