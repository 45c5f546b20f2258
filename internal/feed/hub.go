// Package feed lets HTTP requests wait for events without holding a database
// connection: one Hub per process follows the store's global event feed, woken by the
// store's event signal (LISTEN/NOTIFY on PostgreSQL, the in-process signal on SQLite),
// and wakes the requests waiting for the instances that changed, or for any event.
//
// A waiter costs a channel and a map entry; only the Hub reads the database, once per
// wake-up whatever the number of waiters. Waiters re-read what they wait for after a
// wake-up, so a spurious wake-up costs one query and a missed one is impossible: a
// waiter registers before it reads, and the Hub wakes it for every event it reads
// after that.
package feed

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

// pageSize is how many events the Hub reads per query.
const pageSize = 500

// Re-read delays while committed events are held back behind an open transaction
// (PostgreSQL), and after a failed read.
const (
	recheckMin = 5 * time.Millisecond
	recheckMax = 100 * time.Millisecond
)

// Store is what the Hub needs of a store.Store.
type Store interface {
	store.Feed
	Listen(ctx context.Context, topic store.Topic) (<-chan struct{}, error)
}

// Hub follows the event feed and wakes waiters. Create it with NewHub, then Start it.
type Hub struct {
	store Store
	log   *slog.Logger

	mu        sync.Mutex
	pos       string                       // the feed position read up to
	unsettled map[instanceKey]int64        // the last seq woken for, of events held back (run loop only)
	changed   chan struct{}                // closed at the next advance, then replaced
	instances map[instanceKey]*instWaiters // waiters per instance
	stopped   bool

	cancel context.CancelFunc
	done   chan struct{} // closed when the run loop has exited
}

type instanceKey struct{ typ, id string }

// instWaiters is closed (and removed) when the Hub reads an event of its instance.
type instWaiters struct {
	ch chan struct{}
	n  int // registered waiters
}

// NewHub returns a Hub over s; log may be nil.
func NewHub(s Store, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{store: s, log: log, changed: make(chan struct{}), instances: make(map[instanceKey]*instWaiters),
		unsettled: make(map[instanceKey]int64)}
}

// Start subscribes to the store's event signal, takes the current end of the feed as
// its position and follows the feed until ctx ends or Stop. It returns the store's
// error when it cannot subscribe or read.
func (h *Hub) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	signals, err := h.store.Listen(runCtx, store.TopicEvents)
	if err != nil {
		cancel()
		return fmt.Errorf("feed: listen: %w", err)
	}
	// The signal is subscribed before the end is read: an event committed after the
	// read signals it.
	pos, err := h.store.FeedHead(ctx)
	if err != nil {
		cancel()
		return fmt.Errorf("feed: head: %w", err)
	}
	h.mu.Lock()
	h.pos, h.cancel, h.done = pos, cancel, make(chan struct{})
	h.mu.Unlock()
	go h.run(runCtx, signals)
	return nil
}

// Stop ends the run loop and wakes every waiter; it waits for the loop to exit.
func (h *Hub) Stop(ctx context.Context) error {
	h.mu.Lock()
	cancel, done := h.cancel, h.done
	h.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hub) run(ctx context.Context, signals <-chan struct{}) {
	defer close(h.done)
	defer h.shutdown()
	delay := recheckMin
	// A first read at once: events committed before the start may be held back, and
	// no signal would come for them.
	recheck := time.After(0)
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-signals:
			if !ok {
				return // the store closed
			}
		case <-recheck:
		}
		heldBack, err := h.advance(ctx)
		recheck = nil
		switch {
		case err != nil && ctx.Err() == nil:
			h.log.Warn("event feed: read failed; retrying", slog.Any("error", err))
			fallthrough
		case heldBack:
			// Nothing may signal when the transaction holding events back ends (it may
			// have appended none itself), so read again after a growing delay.
			recheck = time.After(delay)
			delay = min(2*delay, recheckMax)
		default:
			delay = recheckMin
		}
	}
}

// advance reads the feed from the Hub's position to its end and wakes the waiters of
// every instance read, and every feed waiter when anything was read.
func (h *Hub) advance(ctx context.Context) (heldBack bool, err error) {
	h.mu.Lock()
	pos := h.pos
	h.mu.Unlock()
	touched := make(map[instanceKey]struct{})
	advanced := false
	for {
		page, err := h.store.ReadFeed(ctx, store.FeedParams{After: pos, Limit: pageSize})
		if err != nil {
			h.wake(pos, touched, advanced)
			return false, err
		}
		for _, ev := range page.Items {
			touched[instanceKey{ev.WorkflowType, ev.WorkflowID}] = struct{}{}
		}
		advanced = advanced || len(page.Items) > 0
		pos = page.Next
		if len(page.Items) < pageSize && !page.Cut {
			if page.HeldBack {
				h.wakeUnsettled(ctx, pos, touched)
			} else {
				clear(h.unsettled)
			}
			h.wake(pos, touched, advanced)
			return page.HeldBack, nil
		}
	}
}

// wakeUnsettled adds to touched the instances of the events committed after pos that
// the feed holds back behind an older open transaction (PostgreSQL): their waiters
// need not wait for it, since an instance's own reads see them at once. Each event
// wakes once, not at every re-read while it is held back.
func (h *Hub) wakeUnsettled(ctx context.Context, pos string, touched map[instanceKey]struct{}) {
	page, err := h.store.ReadFeed(ctx, store.FeedParams{After: pos, Limit: pageSize, Unsettled: true})
	if err != nil {
		return // they are woken when the feed reaches them
	}
	for _, ev := range page.Items {
		k := instanceKey{ev.WorkflowType, ev.WorkflowID}
		if ev.Seq > h.unsettled[k] {
			h.unsettled[k] = ev.Seq
			touched[k] = struct{}{}
		}
	}
}

func (h *Hub) wake(pos string, touched map[instanceKey]struct{}, advanced bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pos = pos
	for k := range touched {
		if w, ok := h.instances[k]; ok {
			close(w.ch)
			delete(h.instances, k)
		}
	}
	if advanced {
		close(h.changed)
		h.changed = make(chan struct{})
	}
}

// shutdown wakes every waiter for good: after Stop, waiting returns at once.
func (h *Hub) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	close(h.changed)
	for k, w := range h.instances {
		close(w.ch)
		delete(h.instances, k)
	}
}

// Changed returns a channel closed when the Hub next reads new events (or stops).
// Take it before reading the feed, then wait on it if the read found nothing new.
func (h *Hub) Changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// Stopped reports whether the Hub has stopped; its channels are then all closed.
func (h *Hub) Stopped() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopped
}

// WatchInstance returns a channel closed when the Hub reads an event of the instance
// (or stops), and a function that releases the registration; call it when done
// waiting. Register before reading the instance, then wait if it has not changed.
func (h *Hub) WatchInstance(typ, id string) (<-chan struct{}, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		ch := make(chan struct{})
		close(ch)
		return ch, func() {}
	}
	k := instanceKey{typ, id}
	w, ok := h.instances[k]
	if !ok {
		w = &instWaiters{ch: make(chan struct{})}
		h.instances[k] = w
	}
	w.n++
	released := false
	return w.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if released {
			return
		}
		released = true
		w.n--
		if cur, ok := h.instances[k]; ok && cur == w && w.n == 0 {
			delete(h.instances, k)
		}
	}
}

// Waiting returns the number of instances being watched (for tests and metrics).
func (h *Hub) Waiting() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.instances)
}
