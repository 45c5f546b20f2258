package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

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

// scanner reads the rows of every table, times as micros and JSON as jsonColumn.
var scanner = sqlstore.Scanners{
	Time:     func(t *time.Time) any { return micros{t} },
	NullTime: func(t **time.Time) any { return nullableMicros{t} },
	JSON:     func(raw *json.RawMessage) any { return jsonColumn{raw} },
}

// params passes times as micros, JSON and an input's response as TEXT.
var params = sqlstore.Params{
	Time:     func(t time.Time) any { return toMicros(t) },
	NullTime: func(t *time.Time) any { return nullMicros(t) },
	JSON:     jsonText,
	Response: jsonText,
}
