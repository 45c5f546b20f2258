package postgres

import (
	"context"
	"encoding/json"
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
func list[T any](ctx context.Context, d *driver, table, columns string, f sqlstore.Filter, after int64, limit int,
	scan func(sqlstore.Row, *int64) (T, error)) ([]sqlstore.Listed[T], error) {
	query, args := f.Keyset(table, columns, after, limit)
	rows, err := d.pool.Query(ctx, query, args...)
	return collect(rows, err, sqlstore.ListedOf(scan))
}

// newFilter numbers parameters $1, $2, … and passes times as themselves.
func newFilter() sqlstore.Filter { return sqlstore.Filter{Mark: "$", Time: params.Time} }
