package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// notifyTimeout bounds one NOTIFY sent after a commit.
const notifyTimeout = 5 * time.Second

// notifyInterval is the least time between two NOTIFYs of one store.
const notifyInterval = 10 * time.Millisecond

// A NOTIFY inside a transaction makes its commit take Postgres's global notify-queue
// lock, which serialises every committing transaction that notified: with 32 clients it
// halved the input throughput (docs/BENCHMARKS.md). No transaction of the store NOTIFYs in
// itself. After the commit the store hands what its writes added to Notify, which wakes
// this process's listeners at once, and the notifier tells the other processes: one
// NOTIFY statement at a time, at most one per notifyInterval, carrying every channel
// poked since the previous one. A NOTIFY is a transaction of its own with a commit to
// flush; sent after every batch (as it was, one in flight at a time) it cost a tenth
// of the input rate at 32 clients. Other processes are woken up to notifyInterval and
// a round trip after the commit; if this process dies in between, their workers find
// the rows at their next poll, as they do when a notification is lost to a broken
// LISTEN connection. The NOTIFY comes back to this process's LISTEN connection too: a
// second, harmless wake.
type notifier struct {
	pool *pgxpool.Pool
	stop chan struct{} // closed by close: ends a rest between two NOTIFYs

	mu      sync.Mutex
	pending sqlstore.Topics
	running bool
	closed  bool
	wg      sync.WaitGroup
}

func newNotifier(pool *pgxpool.Pool) *notifier {
	return &notifier{pool: pool, stop: make(chan struct{})}
}

// Notify queues t for the notifier.
func (d *driver) Notify(t sqlstore.Topics) { d.notifier.poke(t) }

func (n *notifier) poke(x sqlstore.Topics) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.pending.Effects = n.pending.Effects || x.Effects
	n.pending.Timers = n.pending.Timers || x.Timers
	n.pending.Events = n.pending.Events || x.Events
	if !n.running {
		n.running = true
		n.wg.Add(1)
		go n.flush()
	}
}

// flush sends what is pending, rests notifyInterval, and goes on while pokes came in
// meanwhile; it ends only after a rest, so two NOTIFYs are always that far apart.
func (n *notifier) flush() {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		x := n.pending
		n.pending = sqlstore.Topics{}
		if (!x.Effects && !x.Timers && !x.Events) || n.closed {
			n.running = false
			n.mu.Unlock()
			return
		}
		n.mu.Unlock()
		b := &pgx.Batch{}
		if x.Effects {
			b.Queue(`SELECT pg_notify('` + channelEffects + `', '')`)
		}
		if x.Timers {
			b.Queue(`SELECT pg_notify('` + channelTimers + `', '')`)
		}
		if x.Events {
			b.Queue(`SELECT pg_notify('` + channelEvents + `', '')`)
		}
		ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
		_ = n.pool.SendBatch(ctx, b).Close() // best effort: workers also poll
		cancel()
		rest := time.NewTimer(notifyInterval)
		select {
		case <-rest.C:
		case <-n.stop:
			rest.Stop()
		}
	}
}

// close stops sending and waits for a NOTIFY in flight.
func (n *notifier) close() {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.stop)
	}
	n.mu.Unlock()
	n.wg.Wait()
}
