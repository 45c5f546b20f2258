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
	channelEvents  = "ironflow_events"
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
	case channelEvents:
		return store.TopicEvents, true
	}
	return "", false
}

// listener owns one dedicated connection (outside the pool) that LISTENs on both
// channels and hands notifications to the store's wake. It starts with the first Listen
// and reconnects with backoff when the connection drops; after a reconnect it wakes
// every topic, since notifications sent meanwhile were lost.
type listener struct {
	cfg *pgx.ConnConfig

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc // stops the run loop
	done    chan struct{}      // closed when the run loop has exited
}

func newListener(cfg *pgx.ConnConfig) *listener {
	return &listener{cfg: cfg}
}

// Listen connects the LISTEN connection and starts delivering notifications to wake,
// unless it runs already. Once it has returned, no notification committed later is
// missed.
func (d *driver) Listen(ctx context.Context, wake func(...store.Topic)) error {
	l := d.listener
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
	go l.run(runCtx, conn, wake)
	return nil
}

func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+channelEffects+`; LISTEN `+channelTimers+`; LISTEN `+channelEvents); err != nil {
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
func (l *listener) run(ctx context.Context, conn *pgx.Conn, wake func(...store.Topic)) {
	defer close(l.done)
	backoff := listenBackoffMin
	for {
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			if topic, ok := channelTopic(n.Channel); ok {
				wake(topic)
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
		wake(store.TopicEffects, store.TopicTimers, store.TopicEvents)
	}
}

// close stops the run loop and waits for it.
func (l *listener) close() {
	l.mu.Lock()
	l.closed = true
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
