package sqlite

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ironflow/ironflow/internal/store"
)

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

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// jsonText compacts a JSON value for storage; an empty value is stored as NULL.
func jsonText(raw json.RawMessage) (sql.NullString, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return sql.NullString{}, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return sql.NullString{}, fmt.Errorf("invalid json: %w", err)
	}
	return sql.NullString{String: buf.String(), Valid: true}, nil
}

func fromJSONText(v sql.NullString) json.RawMessage {
	if !v.Valid {
		return nil
	}
	return json.RawMessage(v.String)
}

// nowOr returns t in UTC, or the current time when t is zero. Records the engine builds
// carry their own times; this only fills what a caller left out.
func nowOr(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().UTC()
	}
	return t.UTC()
}

// newID returns a time-ordered UUIDv7 for rows the caller did not name.
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// Cursors are the base64 of the last row's internal rowid: opaque to callers and stable
// under inserts.

func encodeCursor(rid int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(rid, 10)))
}

func decodeCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, store.ErrInvalidCursor
	}
	rid, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || rid < 0 {
		return 0, store.ErrInvalidCursor
	}
	return rid, nil
}

func pageLimit(limit int) int {
	if limit <= 0 {
		return defaultLimit
	}
	return limit
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}
