package engine

import (
	"context"
	"fmt"

	"github.com/ironflow/ironflow/internal/store"
)

// FeedStart is the After value that starts reading the feed at its current end.
const FeedStart = "now"

// FeedEventView is one event of the global feed: the event, its instance and its
// position.
type FeedEventView struct {
	// Cursor is the event's position; read after it to get the events that follow.
	Cursor       string `json:"cursor" example:"1834.201"`
	WorkflowType string `json:"workflow_type" example:"order"`
	WorkflowID   string `json:"workflow_id" example:"o-1"`
	EventView
}

// FeedPage is one page of the global feed. NextCursor is always set.
type FeedPage struct {
	Items      []FeedEventView `json:"items"`
	NextCursor string          `json:"next_cursor" example:"1834.201"`
	// HeldBack: events committed after NextCursor wait for an older transaction
	// still open (PostgreSQL); they follow shortly.
	HeldBack bool `json:"-"`
	// Cut: the page ended at its size bound and more events follow at once.
	Cut bool `json:"-"`
}

// ReadFeed returns up to limit events of every instance (of typ when set) after the
// cursor after ("" from the beginning, FeedStart from the current end), in commit
// order. Errors: ErrInvalidArgument, store.ErrInvalidCursor.
func (e *Engine) ReadFeed(ctx context.Context, after, typ string, limit int) (FeedPage, error) {
	var err error
	if limit, err = checkLimit(limit); err != nil {
		return FeedPage{}, err
	}
	if after == FeedStart {
		if after, err = e.store.FeedHead(ctx); err != nil {
			return FeedPage{}, fmt.Errorf("feed head: %w", err)
		}
	}
	page, err := e.store.ReadFeed(ctx, store.FeedParams{After: after, WorkflowType: typ, Limit: limit})
	if err != nil {
		return FeedPage{}, fmt.Errorf("read feed: %w", err)
	}
	out := FeedPage{Items: make([]FeedEventView, 0, len(page.Items)), NextCursor: page.Next, HeldBack: page.HeldBack, Cut: page.Cut}
	for _, ev := range page.Items {
		out.Items = append(out.Items, FeedEventView{
			Cursor: ev.Cursor, WorkflowType: ev.WorkflowType, WorkflowID: ev.WorkflowID, EventView: eventView(ev.Event),
		})
	}
	return out, nil
}
