package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// readFeedAll follows the feed from after until a page is neither full nor held back
// (on PostgreSQL, a transaction of a test running beside this one may hold the
// horizon for a moment) and returns every item read and the last Next.
func (e *env) readFeedAll(after, typ string, limit int) ([]store.FeedEvent, string) {
	e.t.Helper()
	var all []store.FeedEvent
	for {
		page, err := e.s.ReadFeed(e.ctx, store.FeedParams{After: after, WorkflowType: typ, Limit: limit})
		require.NoError(e.t, err)
		require.NotEmpty(e.t, page.Next, "Next is never empty")
		all = append(all, page.Items...)
		after = page.Next
		if page.HeldBack {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if len(page.Items) < limit && !page.Cut {
			return all, after
		}
	}
}

// readFeedPage reads one page, again while it is held back and not full.
func (e *env) readFeedPage(p store.FeedParams) store.FeedPage {
	e.t.Helper()
	for {
		page, err := e.s.ReadFeed(e.ctx, p)
		require.NoError(e.t, err)
		if !page.HeldBack || len(page.Items) == p.Limit {
			return page
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func feedKeys(items []store.FeedEvent) []string {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = fmt.Sprintf("%s/%s/%d", it.WorkflowType, it.WorkflowID, it.Seq)
	}
	return keys
}

func testFeedOrder(t *testing.T, e *env) {
	page, err := e.s.ReadFeed(e.ctx, store.FeedParams{})
	require.NoError(t, err)
	require.Empty(t, page.Items)
	require.NotEmpty(t, page.Next, "an empty feed still has a position")
	start := page.Next

	e.mustExec("order", "o-1", step{To: "placed", Data: `{"total":40}`})
	e.mustExec("refund", "r-1", step{})
	e.mustExec("order", "o-2", step{})
	e.mustExec("order", "o-1", step{Input: "pay", To: "paid"})
	e.mustExec("order", "o-1", step{Input: "pay", Reject: "already paid"}) // no event

	want := []string{"order/o-1/1", "refund/r-1/1", "order/o-2/1", "order/o-1/2"}
	for _, after := range []string{"", start} {
		all, _ := e.readFeedAll(after, "", 2)
		require.Equal(t, want, feedKeys(all), "after %q, pages of 2", after)
	}
	all, end := e.readFeedAll("", "", 500)
	require.Equal(t, want, feedKeys(all))
	require.Equal(t, e.events("order", "o-1")[0], all[0].Event, "a feed item is the stored event")
	require.Equal(t, e.events("order", "o-1")[1], all[3].Event)
	for i, it := range all {
		rest, _ := e.readFeedAll(it.Cursor, "", 500)
		require.Equal(t, want[i+1:], feedKeys(rest), "after the cursor of item %d", i)
	}

	head, err := e.s.FeedHead(e.ctx)
	require.NoError(t, err)
	e.mustExec("order", "o-3", step{})
	// On PostgreSQL the head is also before events already committed but held back
	// at the time (by a transaction of a test running beside this one).
	rest, _ := e.readFeedAll(head, "", 500)
	require.NotEmpty(t, rest)
	require.Equal(t, "order/o-3/1", feedKeys(rest)[len(rest)-1], "after the head: what came later")
	_, end = e.readFeedAll(end, "", 500)

	// The end stays put until something is appended, then leads to exactly that.
	page, err = e.s.ReadFeed(e.ctx, store.FeedParams{After: end})
	require.NoError(t, err)
	require.Empty(t, page.Items)
	e.mustExec("order", "o-2", step{Input: "pay"})
	rest, _ = e.readFeedAll(end, "", 500)
	require.Equal(t, []string{"order/o-2/2"}, feedKeys(rest))
}

func testFeedFilter(t *testing.T, e *env) {
	for i := range 5 {
		e.mustExec("noise", fmt.Sprint("n-", i), step{})
	}
	e.mustExec("order", "o-1", step{})
	for i := range 5 {
		e.mustExec("noise", fmt.Sprint("m-", i), step{})
	}
	items, next := e.readFeedAll("", "order", 10)
	require.Equal(t, []string{"order/o-1/1"}, feedKeys(items))

	// The position moved past the other type's events: reading from it returns only
	// what comes later.
	e.mustExec("noise", "n-0", step{})
	e.mustExec("order", "o-2", step{})
	items, _ = e.readFeedAll(next, "order", 10)
	require.Equal(t, []string{"order/o-2/1"}, feedKeys(items))
	// Unfiltered from the same position: the same two last. (On PostgreSQL the m-…
	// events may come first, had they been held back when the position was read.)
	items, _ = e.readFeedAll(next, "", 10)
	keys := feedKeys(items)
	require.GreaterOrEqual(t, len(keys), 2)
	require.Equal(t, []string{"noise/n-0/2", "order/o-2/1"}, keys[len(keys)-2:], "the unfiltered feed from the same position")

	// A full filtered page is followed by the rest.
	e.mustExec("order", "o-3", step{})
	page := e.readFeedPage(store.FeedParams{WorkflowType: "order", Limit: 2})
	require.Equal(t, []string{"order/o-1/1", "order/o-2/1"}, feedKeys(page.Items))
	items, _ = e.readFeedAll(page.Next, "order", 10)
	require.Equal(t, []string{"order/o-3/1"}, feedKeys(items), "the next page goes on after a full one")

	_, err := e.s.ReadFeed(e.ctx, store.FeedParams{After: "not-a-cursor"})
	require.ErrorIs(t, err, store.ErrInvalidCursor)
}

func testFeedListen(t *testing.T, e *env) {
	events, err := e.s.Listen(e.ctx, store.TopicEvents)
	require.NoError(t, err)
	e.mustExec("order", "o-1", step{})
	signalled(t, events, "events appended")

	// A routed input appends events too: a timer that fires.
	e.mustExec("order", "o-1", step{Timers: []store.Timer{{Key: "k", FireAt: e.at(time.Minute), InputType: "tick"}}})
	tm := e.timers("order", "o-1", store.TimerPending)[0]
	require.Len(t, e.claimTimers("w1", tm.FireAt, 10), 1)
	drain(events)
	require.NoError(t, e.s.CompleteTimer(e.ctx, e.fireParams(tm, "w1", step{At: tm.FireAt})))
	signalled(t, events, "a timer's input appended events")
}

// testFeedConcurrent has writers append to many instances while a reader follows the
// feed: the reader ends with every event exactly once.
func testFeedConcurrent(t *testing.T, e *env) {
	const writers, perWriter = 8, 15
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, writers*perWriter)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := e.exec("order", fmt.Sprintf("w%d-%d", w, i%3), step{}); err != nil {
					errs <- err
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()

	seen := map[string]int{}
	after := ""
	finished := false
	for {
		page, err := e.s.ReadFeed(e.ctx, store.FeedParams{After: after, Limit: 7})
		require.NoError(t, err)
		for _, k := range feedKeys(page.Items) {
			seen[k]++
		}
		after = page.Next
		if finished && len(page.Items) == 0 && !page.HeldBack {
			break
		}
		select {
		case <-done:
			finished = true
		default:
			time.Sleep(time.Millisecond)
		}
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, seen, writers*perWriter)
	for k, n := range seen {
		require.Equal(t, 1, n, "event %s read %d times", k, n)
	}
}
