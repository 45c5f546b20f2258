package sqlite

import (
	"context"
	"fmt"
	"sync"

	"github.com/ironflow/ironflow/internal/store"
)

// broker is the in-process stand-in for Postgres LISTEN/NOTIFY. Other processes sharing
// the file are not signalled; their workers fall back to polling.
type broker struct {
	mu     sync.Mutex
	closed bool
	subs   map[store.Topic]map[chan struct{}]struct{}
}

func newBroker() *broker {
	return &broker{subs: make(map[store.Topic]map[chan struct{}]struct{})}
}

// Listen returns a channel that receives a (coalesced) signal after every commit of this
// store that adds or re-enables work of topic. It is closed when ctx ends or the store
// is closed. Only commits made through this *Store signal: another process writing the
// same file is noticed by polling.
func (s *Store) Listen(ctx context.Context, topic store.Topic) (<-chan struct{}, error) {
	if topic != store.TopicEffects && topic != store.TopicTimers {
		return nil, fmt.Errorf("sqlite: listen: unknown topic %q", topic)
	}
	return s.notify.subscribe(ctx, topic)
}

func (b *broker) subscribe(ctx context.Context, topic store.Topic) (<-chan struct{}, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("sqlite: listen: %w: store closed", store.ErrUnavailable)
	}
	ch := make(chan struct{}, 1)
	if b.subs[topic] == nil {
		b.subs[topic] = make(map[chan struct{}]struct{})
	}
	b.subs[topic][ch] = struct{}{}
	// AfterFunc rather than a goroutine per subscriber: nothing runs until ctx ends.
	context.AfterFunc(ctx, func() { b.unsubscribe(topic, ch) })
	return ch, nil
}

func (b *broker) unsubscribe(topic store.Topic, ch chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[topic][ch]; ok {
		delete(b.subs[topic], ch)
		close(ch)
	}
}

// signal wakes every subscriber of the topics; a subscriber that has not consumed its
// last signal yet keeps that one (coalescing).
func (b *broker) signal(topics ...store.Topic) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range topics {
		for ch := range b.subs[t] {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for t, subs := range b.subs {
		for ch := range subs {
			close(ch)
		}
		delete(b.subs, t)
	}
}

// signals collects the topics a transaction touched so they are signalled only after it
// committed.
type signals struct {
	effects, timers bool
}

func (sg *signals) merge(o signals) {
	sg.effects = sg.effects || o.effects
	sg.timers = sg.timers || o.timers
}

func (b *broker) send(sg signals) {
	var topics []store.Topic
	if sg.effects {
		topics = append(topics, store.TopicEffects)
	}
	if sg.timers {
		topics = append(topics, store.TopicTimers)
	}
	if len(topics) > 0 {
		b.signal(topics...)
	}
}
