package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/store"
)

// The NOTIFY channels. A transaction that adds or re-enables work records it, and the
// store notifies them (pg_notify) after the commit (notify.go); Postgres delivers the
// notification to every process listening.
const (
	channelEffects = "ironflow_effects"
	channelTimers  = "ironflow_timers"
)

// Reconnect backoff of the LISTEN connection.
const (
	listenBackoffMin = 50 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

func channelTopic(channel string) (store.Topic, bool) {
	switch channel {
	case channelEffects:
		return store.TopicEffects, true
	case channelTimers:
		return store.TopicTimers, true
	}
	return "", false
}

// listener owns one dedicated connection (outside the pool) that LISTENs on both
// channels and fans notifications out to subscribers. It starts with the first Listen
// and reconnects with backoff when the connection drops; after a reconnect it wakes
// every subscriber, since notifications sent meanwhile were lost.
type listener struct {
	cfg *pgx.ConnConfig

	mu      sync.Mutex
	subs    map[store.Topic]map[*subscription]struct{}
	started bool
	closed  bool
	cancel  context.CancelFunc // stops the run loop
	done    chan struct{}      // closed when the run loop has exited
}

type subscription struct {
	ch   chan struct{}
	stop func() bool // unregisters the context.AfterFunc
}

func newListener(cfg *pgx.ConnConfig) *listener {
	return &listener{cfg: cfg, subs: make(map[store.Topic]map[*subscription]struct{})}
}

// Listen returns a channel that receives a (coalesced) signal after every commit, in this
// or any process sharing the database, that adds or re-enables work of topic, and after
// the store's LISTEN connection was re-established (notifications may have been missed
// meanwhile). The channel is closed when ctx ends or the store is closed. The first call
// connects the LISTEN connection and returns an error wrapping store.ErrUnavailable when
// that fails; once Listen has returned, no notification committed later is missed.
func (s *Store) Listen(ctx context.Context, topic store.Topic) (<-chan struct{}, error) {
	if topic != store.TopicEffects && topic != store.TopicTimers {
		return nil, fmt.Errorf("postgres: listen: unknown topic %q", topic)
	}
	if err := s.listener.start(ctx); err != nil {
		return nil, mapErr("listen", err)
	}
	return s.listener.subscribe(ctx, topic)
}

// start connects and starts the run loop unless it runs already.
func (l *listener) start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("%w: store closed", store.ErrUnavailable)
	}
	if l.started {
		return nil
	}
	// Connecting under the lock makes concurrent first Listens wait for one connection.
	conn, err := l.connect(ctx)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	l.started = true
	l.cancel = cancel
	l.done = make(chan struct{})
	go l.run(runCtx, conn)
	return nil
}

func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+channelEffects+`; LISTEN `+channelTimers); err != nil {
		closeConn(conn)
		return nil, err
	}
	return conn, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// run waits for notifications until ctx ends, reconnecting when the connection breaks.
func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	backoff := listenBackoffMin
	for {
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			if topic, ok := channelTopic(n.Channel); ok {
				l.signal(topic)
			}
			continue
		}
		closeConn(conn)
		if ctx.Err() != nil {
			return
		}
		// The connection broke: reconnect with backoff until it works or we stop.
		for {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, listenBackoffMax)
			conn, err = l.connect(ctx)
			if err == nil {
				break
			}
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return
			}
		}
		backoff = listenBackoffMin
		l.signal(store.TopicEffects, store.TopicTimers)
	}
}

func (l *listener) subscribe(ctx context.Context, topic store.Topic) (<-chan struct{}, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("postgres: listen: %w: store closed", store.ErrUnavailable)
	}
	sub := &subscription{ch: make(chan struct{}, 1)}
	if l.subs[topic] == nil {
		l.subs[topic] = make(map[*subscription]struct{})
	}
	l.subs[topic][sub] = struct{}{}
	// AfterFunc rather than a goroutine per subscriber: nothing runs until ctx ends.
	sub.stop = context.AfterFunc(ctx, func() { l.unsubscribe(topic, sub) })
	return sub.ch, nil
}

func (l *listener) unsubscribe(topic store.Topic, sub *subscription) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.subs[topic][sub]; ok {
		delete(l.subs[topic], sub)
		close(sub.ch)
	}
}

// signal wakes every subscriber of the topics; a subscriber that has not consumed its
// last signal yet keeps that one (coalescing).
func (l *listener) signal(topics ...store.Topic) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range topics {
		for sub := range l.subs[t] {
			select {
			case sub.ch <- struct{}{}:
			default:
			}
		}
	}
}

// close stops the run loop, waits for it and closes every subscriber's channel.
func (l *listener) close() {
	l.mu.Lock()
	l.closed = true
	cancel, done := l.cancel, l.done
	for t, subs := range l.subs {
		for sub := range subs {
			sub.stop()
			close(sub.ch)
		}
		delete(l.subs, t)
	}
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
