package postgres

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ironflow/ironflow/internal/store"
)

// jsonParam prepares a JSON value for a json parameter: compacted, and NULL when empty.
func jsonParam(raw json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("invalid json: %w", err)
	}
	// A string, not []byte: pgx sends it as JSON text to both json and jsonb.
	return buf.String(), nil
}

// rawJSON returns the text of a json column as stored: compact, since every write goes
// through jsonParam. nil (SQL NULL) stays nil.
func rawJSON(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	return json.RawMessage(b)
}

// cleanText makes s storable in a text column: valid UTF-8 without NUL bytes. Used for
// error messages, which may quote arbitrary bytes.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "")
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
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

// Cursors are the base64 of the last row's internal identity (rid): opaque to callers
// and stable under inserts.

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

// filters builds a WHERE clause of ANDed conditions with numbered parameters.
type filters struct {
	conds []string
	args  []any
}

// add appends cond, in which "?" stands for the parameter arg.
func (f *filters) add(cond string, arg any) {
	f.args = append(f.args, arg)
	f.conds = append(f.conds, strings.Replace(cond, "?", "$"+strconv.Itoa(len(f.args)), 1))
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

// prefixed qualifies every column of a comma-separated column list with prefix ("e.").
func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}
