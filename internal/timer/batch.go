package timer

import (
	"context"
	"sync"

	"github.com/ironflow/ironflow/internal/store"
)

// maxBatch bounds the firings recorded in one store.CompleteTimers call.
const maxBatch = 256

// batcher records the firings of concurrent fire calls together: group commit, one
// level above the store. The first caller that finds no batch being recorded becomes
// the leader: it records everything queued (its own firing included) in one
// CompleteTimers call, answers each caller, and repeats while more queued up meanwhile.
// A lone firing is recorded at once; firings batch up only while an earlier batch is
// being recorded, which is exactly when they would otherwise wait for the database.
type batcher struct {
	store store.Store

	mu      sync.Mutex
	queue   []*completion
	leaders int
}

// maxLeaders bounds the batches being recorded at once.
const maxLeaders = 2

type completion struct {
	p    store.CompleteTimerParams
	done chan error // buffered: the leader never blocks on a caller
}

// complete records p with whatever else is queued and returns CompleteTimer's result
// for it. The batch runs under the leader's ctx; every caller's ctx derives from the
// worker's, so they end together on a hard stop.
func (b *batcher) complete(ctx context.Context, p store.CompleteTimerParams) error {
	c := &completion{p: p, done: make(chan error, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	if b.leaders >= maxLeaders {
		b.mu.Unlock()
		return <-c.done
	}
	b.leaders++
	for len(b.queue) > 0 {
		n := min(len(b.queue), maxBatch)
		group := b.queue[:n:n]
		b.queue = b.queue[n:]
		b.mu.Unlock()
		ps := make([]store.CompleteTimerParams, len(group))
		for i, g := range group {
			ps[i] = g.p
		}
		errs := b.store.CompleteTimers(ctx, ps)
		for i, g := range group {
			g.done <- errs[i]
		}
		b.mu.Lock()
	}
	b.leaders--
	b.mu.Unlock()
	return <-c.done
}
