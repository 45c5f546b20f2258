package store

import (
	"context"
)

// TopicEvents is the Listen topic of appended events: a signal follows every commit
// that appended events to any instance.
const TopicEvents Topic = "events"

// FeedEvent is one event of the global feed with its position in it.
type FeedEvent struct {
	Event
	// Cursor is the event's position: reading the feed after it returns the events
	// that follow this one.
	Cursor string
}

// FeedParams asks for a page of the global event feed.
type FeedParams struct {
	// After is a cursor (of an event, or a page's Next); "" reads from the beginning.
	After string
	// WorkflowType, if set, keeps only the events of instances of that type.
	WorkflowType string
	// Limit bounds the page; the store's default when 0.
	Limit int
	// Unsettled also returns the committed events a page would hold back (see
	// FeedPage.HeldBack), in the same order. Such a page is not gap-free, and its Next
	// is no position to read on from: it is for waking waiters at once, not for
	// following the feed.
	Unsettled bool
}

// FeedPage is one page of the global event feed.
type FeedPage struct {
	// Items are in commit order: a reader that follows Next never misses an event and
	// never reads one twice, whatever the commit order of concurrent transactions.
	Items []FeedEvent
	// Next is the cursor to read after; never "". When the page is not full (and not
	// Cut) it is the end of the feed as of the read, even when no item matched the
	// filter, so that the next read starts there.
	Next string
	// Cut reports that the page ended early at its size bound (sqlstore.MaxPageBytes):
	// more events follow Next at once, so a reader that is catching up reads on rather
	// than wait.
	Cut bool
	// HeldBack reports that events committed after Next exist but cannot be returned
	// yet, because a transaction that began before them is still open (PostgreSQL); a
	// reader waiting for events should read again shortly rather than wait for the
	// next signal, which the open transaction may never send.
	HeldBack bool
}

// Feed is the part of Store that reads the global event feed.
type Feed interface {
	// ReadFeed returns the events after p.After in commit order. ErrInvalidCursor when
	// p.After cannot be decoded.
	ReadFeed(ctx context.Context, p FeedParams) (FeedPage, error)
	// FeedHead returns the current end of the feed: reading after it returns only
	// events committed later, or held back now (see FeedPage.HeldBack).
	FeedHead(ctx context.Context) (string, error)
}
