// Package retention forgets what no one needs any more: a worker that prunes, at start
// and then every interval, the rows older than the retention period that the store
// allows to forget (delivered effects, fired and cancelled timers, completed instances'
// inputs), in small batches so that pruning never holds locks for long, resting
// between two batches as long as the last one took so that it never takes more than
// half of a database connection's time from the inputs it shares the machine with.
//
// Several processes may prune the same database at once: the store claims the rows it
// deletes with SKIP LOCKED.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults of Config.
const (
	// DefaultBatchSize bounds one Prune transaction per kind of row.
	DefaultBatchSize = 500
	// MinInterval and MaxInterval bound the default interval, a quarter of the
	// retention period.
	MinInterval = time.Second
	MaxInterval = time.Hour
)

// restPerBatch is how long the worker rests after a batch, as a multiple of the time
// the batch took. Pruning competes with inputs for the same cores and disk: run
// back to back, the batches of a day's worth at 10,000,000 instances cut the inputs
// running beside them to 0.67× (docs/SCALING.md); resting as long as each batch took
// halves pruning's share, and pruning still deletes several times faster than inputs
// write the rows it will later prune.
const restPerBatch = 1

// Pruner is the part of store.Store the worker needs.
type Pruner interface {
	// Prune deletes at most batch rows of each kind older than before and returns how
	// many it deleted (store.Store.Prune).
	Prune(ctx context.Context, before time.Time, batch int) (int64, error)
}

// Config configures a Worker. Store and Retention are required.
type Config struct {
	Store Pruner
	// Retention is how long rows are kept; what is older is pruned.
	Retention time.Duration
	// Interval is the time between two prunings: a quarter of Retention, between
	// MinInterval and MaxInterval, when zero.
	Interval time.Duration
	// BatchSize bounds one Prune call (DefaultBatchSize when zero).
	BatchSize int
	// NowFunc is the clock the cutoff is measured on (time.Now when nil); tests set it
	// instead of waiting for rows to age.
	NowFunc func() time.Time
	Logger  *slog.Logger
}

// Worker prunes in the background. Create it with New, then Start and Stop it; or call
// RunOnce.
type Worker struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc
	stopCh chan struct{}
	doneCh chan struct{}
}

// New returns a Worker for cfg. Errors: no Store, or a Retention that is not positive.
func New(cfg Config) (*Worker, error) {
	if cfg.Store == nil {
		return nil, errors.New("retention: Store is required")
	}
	if cfg.Retention <= 0 {
		return nil, fmt.Errorf("retention: Retention must be positive, not %s", cfg.Retention)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = min(max(cfg.Retention/4, MinInterval), MaxInterval)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.NowFunc == nil {
		cfg.NowFunc = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Worker{cfg: cfg, log: cfg.Logger.With(slog.String("component", "retention"))}, nil
}

// Interval returns the time between two prunings.
func (w *Worker) Interval() time.Duration { return w.cfg.Interval }

// RunOnce prunes, batch after batch (resting between two as long as the last took),
// everything older than the retention period by the worker's clock, and returns how
// many rows it deleted. Errors: the store's, or ctx's;
// the rows deleted until then are counted.
func (w *Worker) RunOnce(ctx context.Context) (int64, error) { return w.prune(ctx, nil) }

// prune is RunOnce, which also ends between two batches once stop is closed.
func (w *Worker) prune(ctx context.Context, stop <-chan struct{}) (int64, error) {
	before := w.cfg.NowFunc().Add(-w.cfg.Retention)
	var total int64
	defer func() {
		if total > 0 {
			w.log.Info("pruned", slog.Int64("rows", total), slog.Time("before", before))
		}
	}()
	for {
		t0 := time.Now()
		n, err := w.cfg.Store.Prune(ctx, before, w.cfg.BatchSize)
		total += n
		if err != nil {
			return total, fmt.Errorf("retention: prune: %w", err)
		}
		if n == 0 {
			return total, nil
		}
		rest := time.NewTimer(restPerBatch * time.Since(t0))
		select {
		case <-stop:
			rest.Stop()
			return total, nil
		case <-ctx.Done():
			rest.Stop()
			return total, fmt.Errorf("retention: prune: %w", ctx.Err())
		case <-rest.C:
		}
	}
}

// Start prunes at once and then every interval, in the background, until Stop or until
// ctx ends. A failed pruning is logged and tried again at the next interval. Errors:
// starting twice.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.doneCh != nil {
		return errors.New("retention: already started")
	}
	ctx, w.cancel = context.WithCancel(ctx)
	w.stopCh, w.doneCh = make(chan struct{}), make(chan struct{})
	go w.loop(ctx, w.stopCh, w.doneCh)
	return nil
}

func (w *Worker) loop(ctx context.Context, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := w.prune(ctx, stop); err != nil && ctx.Err() == nil {
			w.log.Warn("prune failed; retrying at the next interval", slog.Any("error", err))
		}
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stop stops the worker and waits for a pruning in progress to finish its current
// batch; when ctx ends first the batch is cancelled (it rolls back) and ctx's error
// returned. Stopping a worker that was never started is a no-op.
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	stop, done, cancel := w.stopCh, w.doneCh, w.cancel
	if stop != nil {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}
	w.mu.Unlock()
	if done == nil {
		return nil
	}
	defer cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		cancel()
		<-done
		return fmt.Errorf("retention: stop: %w", ctx.Err())
	}
}
