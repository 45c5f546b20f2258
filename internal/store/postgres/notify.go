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

// A NOTIFY inside a transaction makes its commit take Postgres's global notify-queue
// lock, which serialises every committing transaction that notified: with 32 clients it
// halved the input throughput (docs/BENCHMARKS.md). No transaction of the store NOTIFYs in
// itself. After the commit the store hands what its writes added to Notify, and the
// notifier sends it, coalesced: one NOTIFY
// statement in flight per store, carrying every channel poked while the previous one
// was on its way. Listeners are woken a round trip after the commit instead of at it;
// if the process dies in between, workers find the rows at their next poll, as they
// do when a notification is lost to a broken LISTEN connection.
type notifier struct {
	pool *pgxpool.Pool

	mu      sync.Mutex
	pending sqlstore.Topics
	running bool
	closed  bool
	wg      sync.WaitGroup
}

// Notify queues t for the notifier; the NOTIFY comes back to this process's LISTEN
// connection too, so the store need not wake its own listeners.
func (d *driver) Notify(t sqlstore.Topics) (wakeHere bool) {
	d.notifier.poke(t)
	return false
}

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
	}
}

// close stops sending and waits for a NOTIFY in flight.
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.wg.Wait()
}
