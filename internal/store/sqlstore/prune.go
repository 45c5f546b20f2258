package sqlstore

import (
	"context"
	"sync"
	"time"
)

// PrunePosition is an input's place in the order retention reads inputs in: its
// creation time, then the key a backend breaks ties by, PostgreSQL the input's id
// (ID), SQLite its rid (RID), which every SQLite index carries. The other key is zero.
type PrunePosition struct {
	Created time.Time
	ID      string
	RID     int64
}

// After reports whether p comes after q.
func (p PrunePosition) After(q PrunePosition) bool {
	if !p.Created.Equal(q.Created) {
		return p.Created.After(q.Created)
	}
	if p.RID != q.RID {
		return p.RID > q.RID
	}
	return p.ID > q.ID
}

// Later is the later of p and q.
func (p PrunePosition) Later(q PrunePosition) PrunePosition {
	if q.After(p) {
		return q
	}
	return p
}

// PruneParams is one batch of pruning: at most Batch rows of each kind older than
// Before, the inputs among them after From.
type PruneParams struct {
	Before time.Time
	Batch  int
	// From is where the pass's previous batch stopped reading inputs; the zero
	// position at the start of a pass, before every input.
	From PrunePosition
}

// prunePass remembers where the inputs of a pass of pruning (the calls with one cutoff,
// until one prunes nothing) have been read to. The oldest inputs are those of
// instances still running, which stay; without the position every batch would read
// them all again before reaching the rows it deletes. An instance that completes
// during a pass has its older inputs pruned by the next pass
// (docs/decisions/0024-data-growth.md).
type prunePass struct {
	mu     sync.Mutex
	before time.Time
	at     PrunePosition
}

// from returns where the pass of before stands: the start for a new pass.
func (p *prunePass) from(before time.Time) PrunePosition {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.before.Equal(before) {
		return PrunePosition{}
	}
	return p.at
}

// moved records that the pass of before has read to at; a batch that pruned nothing
// ends the pass.
func (p *prunePass) moved(before time.Time, at PrunePosition, ended bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ended {
		p.before, p.at = time.Time{}, PrunePosition{}
		return
	}
	p.before, p.at = before, at
}

// Prune deletes at most batch rows of each kind that retention allows to forget, the
// inputs after where the pass's previous batch stopped; see store.Store.
func (s *Store) Prune(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		return 0, nil
	}
	before = before.UTC()
	n, to, err := s.d.Prune(ctx, PruneParams{Before: before, Batch: batch, From: s.prune.from(before)})
	if err != nil {
		return 0, s.mapErr("prune", err)
	}
	s.prune.moved(before, to, n == 0)
	return n, nil
}
