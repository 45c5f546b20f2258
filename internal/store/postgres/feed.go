package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// The global feed is ordered by (txid, gid): the appending transaction's id, then the
// event's identity. A position is safe to pass only once no transaction that could
// still add an event before it is running, so a read returns only the events of
// transactions below the visibility horizon of its own snapshot
// (pg_snapshot_xmin(pg_current_snapshot())): every transaction below it has ended, and
// every transaction that starts later gets a larger id. Ordering by gid alone would
// skip an event whose transaction took its gid first and committed last
// (docs/decisions/0015-event-feed.md).

// feedPos is a position in the feed: after every event (txid, gid) <= it.
type feedPos struct {
	txid uint64
	gid  int64
}

// String encodes p as "txid.gid", or "txid" for the end of a transaction's events.
func (p feedPos) String() string {
	if p.gid == math.MaxInt64 {
		return strconv.FormatUint(p.txid, 10)
	}
	return strconv.FormatUint(p.txid, 10) + "." + strconv.FormatInt(p.gid, 10)
}

func parseFeedPos(s string) (feedPos, error) {
	if s == "" {
		return feedPos{}, nil
	}
	t, g, dotted := strings.Cut(s, ".")
	txid, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return feedPos{}, store.ErrInvalidCursor
	}
	if !dotted {
		return feedPos{txid: txid, gid: math.MaxInt64}, nil
	}
	gid, err := strconv.ParseInt(g, 10, 64)
	if err != nil || gid < 0 {
		return feedPos{}, store.ErrInvalidCursor
	}
	return feedPos{txid: txid, gid: gid}, nil
}

func (p feedPos) less(q feedPos) bool {
	return p.txid < q.txid || (p.txid == q.txid && p.gid < q.gid)
}

// feedQuery reads the horizon and, in the same snapshot, the events after a position
// whatever their transaction; ReadFeed keeps those below the horizon. $1 txid, $2 gid,
// $3 limit, $4 workflow type (feedQueryType only).
const feedQueryHead = `WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin)
SELECT h.xmin, e.txid::text, e.gid, e.workflow_type, e.workflow_id, e.seq, e.type, e.from_state,
    e.to_state, e.data, e.input_type, e.input_id, e.recorded_at
FROM h LEFT JOIN LATERAL (
    SELECT txid, gid, ` + sqlstore.EventColumns + ` FROM events
    WHERE (txid, gid) > ($1::text::xid8, $2::bigint)`

const (
	feedQuery     = feedQueryHead + ` ORDER BY txid, gid LIMIT $3) e ON true ORDER BY e.txid, e.gid`
	feedQueryType = feedQueryHead + ` AND workflow_type = $4 ORDER BY txid, gid LIMIT $3) e ON true ORDER BY e.txid, e.gid`
)

// FeedHead returns the current end of the feed: the end of the transactions below the
// horizon; see store.Feed.
func (d *driver) FeedHead(ctx context.Context) (string, error) {
	var xmin string
	if err := d.pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&xmin); err != nil {
		return "", err
	}
	horizon, err := strconv.ParseUint(xmin, 10, 64)
	if err != nil || horizon == 0 {
		return "", fmt.Errorf("horizon %q", xmin)
	}
	return feedPos{txid: horizon - 1, gid: math.MaxInt64}.String(), nil
}

// ReadFeed returns up to p.Limit events after p.After in commit order; see store.Feed.
func (d *driver) ReadFeed(ctx context.Context, p store.FeedParams) (store.FeedPage, error) {
	after, err := parseFeedPos(p.After)
	if err != nil {
		return store.FeedPage{}, err
	}
	limit := p.Limit
	// One row more than the page: it tells a full page from a page that reached the
	// horizon.
	args := []any{strconv.FormatUint(after.txid, 10), after.gid, limit + 1}
	query := feedQuery
	if p.WorkflowType != "" {
		query, args = feedQueryType, append(args, p.WorkflowType)
	}
	rows, err := d.pool.Query(ctx, query, args...)
	if err != nil {
		return store.FeedPage{}, err
	}
	defer rows.Close()
	var horizon uint64
	page := store.FeedPage{Items: []store.FeedEvent{}}
	full := false
	for rows.Next() {
		// Every event column is NULL in the single row of an empty page.
		var (
			xmin                                 string
			txid, wt, wid, typ, from, to, inType *string
			inID                                 *string
			gid, seq                             *int64
			data                                 json.RawMessage
			rec                                  *time.Time
		)
		if err := rows.Scan(&xmin, &txid, &gid, &wt, &wid, &seq, &typ, &from, &to, &data,
			&inType, &inID, &rec); err != nil {
			return store.FeedPage{}, err
		}
		if horizon, err = strconv.ParseUint(xmin, 10, 64); err != nil {
			return store.FeedPage{}, fmt.Errorf("horizon %q: %w", xmin, err)
		}
		if txid == nil {
			break // no event after the position
		}
		t, err := strconv.ParseUint(*txid, 10, 64)
		if err != nil {
			return store.FeedPage{}, fmt.Errorf("txid %q: %w", *txid, err)
		}
		if t >= horizon && !p.Unsettled {
			// Committed, but a transaction below it may still add events before it.
			page.HeldBack = true
			break
		}
		if len(page.Items) == limit {
			full = true
			break
		}
		e := store.Event{WorkflowType: *wt, WorkflowID: *wid, Seq: *seq, Type: *typ, From: *from, To: *to,
			Data: data, InputType: *inType, InputID: *inID, RecordedAt: rec.UTC()}
		page.Items = append(page.Items, store.FeedEvent{Event: e, Cursor: feedPos{t, *gid}.String()})
	}
	if err := rows.Err(); err != nil {
		return store.FeedPage{}, err
	}
	next := after
	if n := len(page.Items); n > 0 {
		next, _ = parseFeedPos(page.Items[n-1].Cursor)
	}
	if !full && horizon > 0 && !p.Unsettled {
		// Everything below the horizon has been read: the next read may start at it,
		// which spares a filtered reader from scanning the same other events again.
		if head := (feedPos{txid: horizon - 1, gid: math.MaxInt64}); next.less(head) {
			next = head
		}
	}
	page.Next = next.String()
	return page, nil
}
