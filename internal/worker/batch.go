package worker

import (
	"context"
	"sync"
)

// maxBatch bounds the completions recorded in one call of a Batcher's record function.
const maxBatch = 256

// maxLeaders bounds the batches being recorded at once.
const maxLeaders = 2

// Batcher records the completions of concurrent work items together: group commit, one
// level above the store. The first caller that finds no batch being recorded becomes
// the leader: it records everything queued (its own completion included) in one call
// of the record function, answers each caller, and repeats while more queued up
// meanwhile. A lone completion is recorded at once; completions batch up only while an
// earlier batch is being recorded, which is exactly when they would otherwise wait for
// the database.
type Batcher[P any] struct {
	// record records ps and returns each one's error (store.CompleteTimers,
	// store.CompleteEffects).
	record func(ctx context.Context, ps []P) []error

	mu      sync.Mutex
	queue   []*completion[P]
	leaders int
}

type completion[P any] struct {
	p    P
	done chan error // buffered: the leader never blocks on a caller
}

// NewBatcher returns a Batcher that records with record, which must return one error
// per completion, in order.
func NewBatcher[P any](record func(ctx context.Context, ps []P) []error) *Batcher[P] {
	return &Batcher[P]{record: record}
}

// Complete records p with whatever else is queued and returns its error. The batch
// runs under the leader's ctx; every caller's ctx derives from the worker's, so they
// end together on a hard stop.
func (b *Batcher[P]) Complete(ctx context.Context, p P) error {
	c := &completion[P]{p: p, done: make(chan error, 1)}
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
		ps := make([]P, len(group))
		for i, g := range group {
			ps[i] = g.p
		}
		errs := b.record(ctx, ps)
		for i, g := range group {
			g.done <- errs[i]
		}
		b.mu.Lock()
	}
	b.leaders--
	b.mu.Unlock()
	return <-c.done
}
