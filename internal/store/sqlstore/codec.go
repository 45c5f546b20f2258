package sqlstore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ironflow/ironflow/internal/store"
)

// DefaultLimit is the page size of lists and claims when the caller passes none.
const DefaultLimit = 50

// PageLimit is limit, or DefaultLimit when limit <= 0.
func PageLimit(limit int) int {
	if limit <= 0 {
		return DefaultLimit
	}
	return limit
}

// Cursors are the base64 of the last row's identity (rid): opaque to callers and stable
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

// MaxPageBytes bounds what one page of a list holds: a page ends after the row that
// brings its rows' sizes to it (it always holds one row). Rows can be large (an input's
// data is up to a request body, a state, event or payload up to
// IRONFLOW_MAX_DATA_BYTES), and 500 of them were one answer of hundreds of megabytes.
const MaxPageBytes = 4 << 20

// pageChunk is how many rows a page reads first; it then reads as many more as fit in
// what is left of MaxPageBytes at the size of the largest row seen, so a page of large
// rows is never all in memory before it is cut, and a page of small ones takes two
// reads at most.
const pageChunk = 16

// listPage reads the page of up to limit rows after cursor: list(after, n) returns up
// to n rows after the rid after, size gives what a row weighs against MaxPageBytes.
// The page has the cursor of the next one when there is more.
func listPage[T any](s *Store, op, cursor string, limit int, size func(T) int, list func(after int64, n int) ([]Listed[T], error)) (store.Page[T], error) {
	after, err := decodeCursor(cursor)
	if err != nil {
		return store.Page[T]{}, s.mapErr(op, err)
	}
	limit = PageLimit(limit)
	page := store.Page[T]{Items: make([]T, 0, min(limit, pageChunk))}
	total, largest := 0, 1
	want := min(limit, pageChunk)
	for {
		rows, err := list(after, want+1)
		if err != nil {
			return store.Page[T]{}, s.mapErr(op, err)
		}
		for i, r := range rows[:min(len(rows), want)] {
			page.Items = append(page.Items, r.Item)
			after = r.RID
			n := size(r.Item)
			total += n
			largest = max(largest, n)
			if total >= MaxPageBytes && i < len(rows)-1 {
				page.Next = encodeCursor(after)
				return page, nil
			}
		}
		if len(rows) <= want {
			return page, nil
		}
		left := limit - len(page.Items)
		if left == 0 {
			page.Next = encodeCursor(after)
			return page, nil
		}
		want = min(left, max(1, (MaxPageBytes-total)/largest))
	}
}

// compact compacts a JSON value for storage; an empty value is stored as NULL (nil).
func compact(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("invalid json: %w", err)
	}
	return buf.Bytes(), nil
}

// CleanText makes s storable in any text column: valid UTF-8 without NUL bytes. Error
// messages and reasons may quote arbitrary bytes.
func CleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "")
}

// nowOr returns t in UTC, or the current time when t is zero. Records the engine builds
// carry their own times; this only fills what a caller left out.
func nowOr(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().UTC()
	}
	return t.UTC()
}

// orTime returns t, or fallback when t is zero.
func orTime(t, fallback time.Time) time.Time {
	if t.IsZero() {
		return fallback
	}
	return t
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// NewID returns a time-ordered UUIDv7 for rows the caller did not name.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// IDRange is the range of the strings that start with prefix, in byte (code point)
// order: s starts with prefix exactly when lo <= s and, if bounded, s < hi. hi is prefix
// with its last code point incremented (a maximal last code point is dropped first), so
// it is valid UTF-8 when prefix is. A backend compares ids in byte order to use it.
func IDRange(prefix string) (lo, hi string, bounded bool) {
	for end := prefix; end != ""; {
		r, size := utf8.DecodeLastRuneInString(end)
		end = end[:len(end)-size]
		switch {
		case r == utf8.MaxRune:
			continue
		case r == 0xD7FF: // the next code point is past the surrogates
			return prefix, end + "\uE000", true
		default:
			return prefix, end + string(r+1), true
		}
	}
	return prefix, "", false
}

// LikePrefix is the LIKE pattern (escape character \) of the strings that start with
// prefix: its %, _ and \ match only themselves.
func LikePrefix(prefix string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix) + "%"
}
