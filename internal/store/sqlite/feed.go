package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"

	"github.com/ironflow/ironflow/internal/store"
)

// The global feed is ordered by the events' rid. SQLite lets one transaction write at
// a time per database file, and a rid is assigned when its row is inserted, inside the
// write transaction: every rid a transaction takes is larger than every rid already
// committed, and none is visible before the commit. Group commit (writer.go) runs
// several requests in one transaction, which keeps this true: the group commits all
// of its rows at once. So rid order is commit order, and a reader that has seen rid N
// has seen every event that will ever have a smaller rid
// (docs/decisions/0015-event-feed.md).

// feedQueryHead reads the last rid and, in the same snapshot (one statement), the
// events after a rid. Parameters: rid, [workflow type,] limit.
const feedQueryHead = `SELECT h.last, e.rid, e.workflow_type, e.workflow_id, e.seq, e.type, e.from_state,
    e.to_state, e.data, e.input_type, e.input_id, e.recorded_at
FROM (SELECT COALESCE(MAX(rid), 0) AS last FROM events) h LEFT JOIN (
    SELECT rid, workflow_type, workflow_id, seq, type, from_state, to_state, data, input_type,
        input_id, recorded_at
    FROM events WHERE rid > ?`

const (
	feedQuery     = feedQueryHead + ` ORDER BY rid LIMIT ?) e ON 1 ORDER BY e.rid`
	feedQueryType = feedQueryHead + ` AND workflow_type = ? ORDER BY rid LIMIT ?) e ON 1 ORDER BY e.rid`
)

// FeedHead returns the current end of the feed, the last event's rid; see store.Feed.
func (d *driver) FeedHead(ctx context.Context) (string, error) {
	var last int64
	if err := d.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(rid), 0) FROM events`).Scan(&last); err != nil {
		return "", err
	}
	return strconv.FormatInt(last, 10), nil
}

// jsonData is a nullable JSON column read as a string.
func jsonData(s sql.NullString) json.RawMessage {
	if !s.Valid {
		return nil
	}
	return json.RawMessage(s.String)
}

// ReadFeed returns up to p.Limit events after p.After in commit order; see store.Feed. HeldBack
// is always false: a committed event is never behind an open transaction here.
func (d *driver) ReadFeed(ctx context.Context, p store.FeedParams) (store.FeedPage, error) {
	var after int64
	if p.After != "" {
		var err error
		if after, err = strconv.ParseInt(p.After, 10, 64); err != nil || after < 0 {
			return store.FeedPage{}, store.ErrInvalidCursor
		}
	}
	limit := p.Limit
	query, args := feedQuery, []any{after, limit + 1}
	if p.WorkflowType != "" {
		query, args = feedQueryType, []any{after, p.WorkflowType, limit + 1}
	}
	rows, err := d.r.QueryContext(ctx, query, args...)
	if err != nil {
		return store.FeedPage{}, err
	}
	defer rows.Close()
	page := store.FeedPage{Items: []store.FeedEvent{}}
	next, last := after, int64(0)
	full := false
	for rows.Next() {
		// Every event column is NULL in the single row of an empty page.
		var (
			rid, seq, recorded                         sql.NullInt64
			wt, wid, typ, from, to, inType, inID, data sql.NullString
		)
		if err := rows.Scan(&last, &rid, &wt, &wid, &seq, &typ, &from, &to, &data, &inType, &inID,
			&recorded); err != nil {
			return store.FeedPage{}, mapErr("read feed", err)
		}
		if !rid.Valid {
			break
		}
		if len(page.Items) == limit {
			full = true
			break
		}
		e := store.Event{WorkflowType: wt.String, WorkflowID: wid.String, Seq: seq.Int64, Type: typ.String,
			From: from.String, To: to.String, Data: jsonData(data), InputType: inType.String,
			InputID: inID.String, RecordedAt: fromMicros(recorded.Int64)}
		page.Items = append(page.Items, store.FeedEvent{Event: e, Cursor: strconv.FormatInt(rid.Int64, 10)})
		next = rid.Int64
	}
	if err := rows.Err(); err != nil {
		return store.FeedPage{}, mapErr("read feed", err)
	}
	if !full && last > next {
		// Everything up to the last event has been read: a filtered reader need not
		// scan the same other events again.
		next = last
	}
	page.Next = strconv.FormatInt(next, 10)
	return page, nil
}
