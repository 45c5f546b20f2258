package store

import (
	"context"
	"sync"
)

// maxBatch bounds the completions recorded in one call of a Batcher's record function.
const maxBatch = 256

// maxLeaders bounds the batches being recorded at once.
const maxLeaders = 2

// maxLead bounds the batches a leader records once its own completion is recorded,
// before it hands the leadership on: few enough that no caller is kept long from its
// own work, enough that the leadership (a goroutine to wake) changes hands rarely under
// a steady stream.
const maxLead = 8

// Batcher records the completions of concurrent work items together: group commit
// above the database (the timer and effect workers' completions, and the stores'
// inputs). A caller that finds fewer than maxLeaders batches being
// recorded becomes a leader: it records what is queued (its own completion included)
// in calls of the record function, at most maxBatch at a time, answering each caller,
// until its own completion is recorded and then for at most maxLead more batches while
// more are queued; then it hands the leadership to the oldest caller still queued, if
// any. A lone completion is recorded at once; completions batch up only while earlier
// batches are being recorded, which is exactly when they would otherwise wait for the
// database.
//
// A batch runs under its leader's ctx. Every worker caller's ctx derives from the
// worker's, so they all end on a hard stop (a record function whose callers' contexts
// are unrelated, as Execute's, runs each batch under a context of its own); and since a leader leads for a bounded number of
// batches, a steady stream of completions never keeps one caller (and its ctx, with
// the deadline of its lease) busy with the work of later ones.
type Batcher[P any] struct {
	// record records ps and returns each one's error (Store.CompleteTimers,
	// Store.CompleteEffects, Store.Execute).
	record func(ctx context.Context, ps []P) []error

	mu      sync.Mutex
	queue   []*completion[P]
	leaders int
}

type completion[P any] struct {
	p    P
	done chan error    // buffered: the leader never blocks on a caller
	lead chan struct{} // buffered: the leadership handed to this caller, at most once
	// Under Batcher.mu: queued until a leader takes it into a batch; handed once the
	// leadership was handed to it.
	queued, handed bool
}

// NewBatcher returns a Batcher that records with record, which must return one error
// per completion, in order.
func NewBatcher[P any](record func(ctx context.Context, ps []P) []error) *Batcher[P] {
	return &Batcher[P]{record: record}
}

// Complete records p with whatever else is queued and returns its error.
func (b *Batcher[P]) Complete(ctx context.Context, p P) error {
	c := &completion[P]{p: p, done: make(chan error, 1), lead: make(chan struct{}, 1), queued: true}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	leader := b.leaders < maxLeaders
	if leader {
		b.leaders++
	}
	b.mu.Unlock()
	if leader {
		b.lead(ctx, c)
	}
	for {
		select {
		case <-c.lead:
			b.lead(ctx, c)
		case err := <-c.done:
			// Another leader may have recorded c after the leadership was handed to it:
			// pass it on all the same.
			select {
			case <-c.lead:
				b.lead(ctx, c)
			default:
			}
			return err
		}
	}
}

// lead records batches from the head of the queue while c is queued, and then at most
// maxLead more while any are queued, then passes the leadership on to the oldest queued
// caller that has not been handed it yet, or gives it up.
func (b *Batcher[P]) lead(ctx context.Context, c *completion[P]) {
	b.mu.Lock()
	for after := 0; c.queued || (len(b.queue) > 0 && after < maxLead); {
		if !c.queued {
			after++
		}
		n := min(len(b.queue), maxBatch)
		group := b.queue[:n:n]
		b.queue = b.queue[n:]
		for _, g := range group {
			g.queued = false
		}
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
	for _, q := range b.queue {
		if !q.handed {
			q.handed = true
			q.lead <- struct{}{}
			b.mu.Unlock()
			return
		}
	}
	b.leaders--
	b.mu.Unlock()
}
