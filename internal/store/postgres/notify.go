package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// notifyTimeout bounds one NOTIFY sent after a commit.
const notifyTimeout = 5 * time.Second

// A NOTIFY inside a transaction makes its commit take Postgres's global notify-queue
// lock, which serialises every committing transaction that notified: with 32 clients it
// halved the input throughput (docs/BENCHMARKS.md). No transaction of the store NOTIFYs in
// itself. The transaction (batchTx) records what its writes would have
// notified, and after the commit the notifier sends it, coalesced: one NOTIFY
// statement in flight per store, carrying every channel poked while the previous one
// was on its way. Listeners are woken a round trip after the commit instead of at it;
// if the process dies in between, workers find the rows at their next poll, as they
// do when a notification is lost to a broken LISTEN connection.
type notifier struct {
	pool *pgxpool.Pool

	mu      sync.Mutex
	pending notifications
	running bool
	closed  bool
	wg      sync.WaitGroup
}

func (n *notifier) poke(x notifications) {
	if !x.effects && !x.timers {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.pending.effects = n.pending.effects || x.effects
	n.pending.timers = n.pending.timers || x.timers
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
		n.pending = notifications{}
		if (!x.effects && !x.timers) || n.closed {
			n.running = false
			n.mu.Unlock()
			return
		}
		n.mu.Unlock()
		b := &pgx.Batch{}
		if x.effects {
			b.Queue(`SELECT pg_notify('` + channelEffects + `', '')`)
		}
		if x.timers {
			b.Queue(`SELECT pg_notify('` + channelTimers + `', '')`)
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
