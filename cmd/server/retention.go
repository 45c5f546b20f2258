package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

// pruneBatch bounds one Prune transaction: each kind of row is deleted this many at a
// time, so pruning never holds locks for long.
const pruneBatch = 500

// pruneInterval is how often retention runs: a quarter of the retention period, between
// one second and one hour.
func pruneInterval(retention time.Duration) time.Duration {
	return min(max(retention/4, time.Second), time.Hour)
}

// retentionService prunes what is older than cfg.Retention (delivered effects, fired
// and cancelled timers, completed instances' inputs) in batches, at start and then every
// pruneInterval. Failures are logged and retried at the next tick; several processes
// may prune the same database at once (rows are claimed with SKIP LOCKED).
func retentionService(retention time.Duration, st store.Store, log *slog.Logger) service {
	log = log.With(slog.String("component", "retention"))
	var (
		cancel context.CancelFunc
		wg     sync.WaitGroup
	)
	return service{
		name: "retention",
		start: func(ctx context.Context, _ func(error)) error {
			ctx, cancel = context.WithCancel(ctx)
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTicker(pruneInterval(retention))
				defer t.Stop()
				for {
					pruneAll(ctx, st, time.Now().Add(-retention), log)
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
				}
			}()
			return nil
		},
		stop: func(context.Context) error {
			cancel()
			wg.Wait()
			return nil
		},
	}
}

// pruneAll prunes batch after batch until nothing older than before is left.
func pruneAll(ctx context.Context, st store.Store, before time.Time, log *slog.Logger) {
	var total int64
	for ctx.Err() == nil {
		n, err := st.Prune(ctx, before, pruneBatch)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("prune failed; retrying at the next interval", slog.Any("error", err))
			}
			break
		}
		total += n
		if n == 0 {
			break
		}
	}
	if total > 0 {
		log.Info("pruned", slog.Int64("rows", total), slog.Time("before", before))
	}
}
