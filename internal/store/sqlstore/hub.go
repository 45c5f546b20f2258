package sqlstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/ironflow/ironflow/internal/store"
)

// hub fans wake-ups out to the store's Listen channels: those of this process's commits
// (when the backend's notifications do not come back to the sender) and those the
// backend's Listen delivers from other processes.
type hub struct {
	mu     sync.Mutex
	closed bool
	subs   map[store.Topic]map[*subscription]struct{}
}

type subscription struct {
	ch   chan struct{}
	stop func() bool // unregisters the context.AfterFunc
}

var errClosed = fmt.Errorf("%w: store closed", store.ErrUnavailable)

func newHub() *hub {
	return &hub{subs: make(map[store.Topic]map[*subscription]struct{})}
}

// open returns errClosed once the hub is closed.
func (h *hub) open() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errClosed
	}
	return nil
}

func (h *hub) subscribe(ctx context.Context, topic store.Topic) (<-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errClosed
	}
	sub := &subscription{ch: make(chan struct{}, 1)}
	if h.subs[topic] == nil {
		h.subs[topic] = make(map[*subscription]struct{})
	}
	h.subs[topic][sub] = struct{}{}
	// AfterFunc rather than a goroutine per subscriber: nothing runs until ctx ends.
	sub.stop = context.AfterFunc(ctx, func() { h.unsubscribe(topic, sub) })
	return sub.ch, nil
}

func (h *hub) unsubscribe(topic store.Topic, sub *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[topic][sub]; ok {
		delete(h.subs[topic], sub)
		close(sub.ch)
	}
}

// signal wakes every subscriber of the topics; a subscriber that has not consumed its
// last signal yet keeps that one (coalescing).
func (h *hub) signal(topics ...store.Topic) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range topics {
		for sub := range h.subs[t] {
			select {
			case sub.ch <- struct{}{}:
			default:
			}
		}
	}
}

// close closes every subscriber's channel; later subscriptions fail.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for t, subs := range h.subs {
		for sub := range subs {
			sub.stop()
			close(sub.ch)
		}
		delete(h.subs, t)
	}
}
