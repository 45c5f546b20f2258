// Package timer fires durable timers: it sleeps until the earliest pending timer is
// due (woken early when a sooner one commits), claims the due timers with the same
// lease machinery as the effect outbox, and executes each timer's input through the
// engine in the same transaction that marks the timer fired, with the timer id as the
// input's idempotency key. A failure retries with backoff until the timer is dead.
//
// Timers that fell due while no server ran are simply due: they fire as soon as a
// worker starts.
package timer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/worker"
	"github.com/ironflow/ironflow/internal/workflow"
)

// Defaults of Config.
const (
	DefaultConcurrency = 1024
	DefaultBatchSize   = 1024
	DefaultLease       = 30 * time.Second
	DefaultLookahead   = 100 * time.Millisecond
)

// Firing results, the label of the fired metric.
const (
	ResultFired     = "fired"      // the input was executed (whatever it decided)
	ResultRetry     = "retry"      // failed, another attempt is scheduled
	ResultDead      = "dead"       // failed for the last time, or its input is invalid
	ResultLeaseLost = "lease_lost" // cancelled, replaced or taken over meanwhile
	ResultError     = "error"      // the result could not be recorded (store failure)
)

// Config configures a Worker. Store and Engine are required.
type Config struct {
	Store  store.Store
	Engine *engine.Engine
	// MaxAttempts is the attempt budget before a timer is dead, and
	// RetryInitialInterval and RetryMaxInterval bound the backoff between attempts
	// (worker.NewRetry: zero takes worker.DefaultMaxAttempts and so on).
	MaxAttempts          int
	RetryInitialInterval time.Duration
	RetryMaxInterval     time.Duration
	// Concurrency bounds the timers executing at once (DefaultConcurrency).
	Concurrency int
	// BatchSize bounds one claim (DefaultBatchSize, at most Concurrency × 16).
	BatchSize int
	// Lease is how long a claimed timer stays with this worker (DefaultLease).
	Lease time.Duration
	// Lookahead is how long before they are due timers are claimed (DefaultLookahead;
	// negative for none). Each claimed timer waits in memory for its time, so a claim's
	// own latency, which grows with the write load, does not add to the firing lag.
	Lookahead time.Duration
	// PollInterval is the fallback when no commit notification arrives.
	PollInterval time.Duration
	// WorkerID is this worker's locked_by value; generated when empty.
	WorkerID string
	// NowFunc is the worker's clock (time.Now when nil).
	NowFunc func() time.Time
	// RandFunc returns a uniform int64 in [0, n) for the backoff jitter.
	RandFunc func(n int64) int64
	Logger   *slog.Logger
	// Registerer receives the worker's metrics; none are registered when nil.
	Registerer prometheus.Registerer
}

// Worker is the timer worker. Create it with New, then Start and Stop it.
type Worker struct {
	cfg   Config
	retry worker.Retry
	svc   *worker.Service[store.Timer]
	batch *store.Batcher[store.CompleteTimerParams]
	log   *slog.Logger
	m     *metrics
}

// New returns a Worker for cfg. Errors: a missing Store or Engine, metrics that cannot
// be registered.
func New(cfg Config) (*Worker, error) {
	if cfg.Store == nil || cfg.Engine == nil {
		return nil, errors.New("timer: Store and Engine are required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = min(DefaultBatchSize, 16*cfg.Concurrency)
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Lookahead == 0 {
		cfg.Lookahead = DefaultLookahead
	}
	cfg.Lookahead = max(cfg.Lookahead, 0)
	if cfg.NowFunc == nil {
		cfg.NowFunc = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Worker{
		cfg:   cfg,
		retry: worker.NewRetry(cfg.MaxAttempts, cfg.RetryInitialInterval, cfg.RetryMaxInterval, cfg.RandFunc),
		log:   cfg.Logger.With("component", "timer"),
		batch: store.NewBatcher(cfg.Store.CompleteTimers),
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	w.m = m
	w.svc = worker.New(worker.Config[store.Timer]{
		Name:         "timers",
		WorkerID:     cfg.WorkerID,
		Listener:     cfg.Store,
		Topic:        store.TopicTimers,
		ClaimFunc:    w.claim,
		ProcessFunc:  w.fire,
		NextDueFunc:  w.nextDue,
		Concurrency:  cfg.Concurrency,
		BatchSize:    cfg.BatchSize,
		Lease:        cfg.Lease,
		PollInterval: cfg.PollInterval,
		NowFunc:      cfg.NowFunc,
		Logger:       cfg.Logger,
	})
	return w, nil
}

// WorkerID returns the locked_by value of this worker's claims.
func (w *Worker) WorkerID() string { return w.svc.WorkerID() }

// Start starts firing timers in the background until Stop, or until ctx ends (which
// also cancels the firings in flight). Errors: starting twice.
func (w *Worker) Start(ctx context.Context) error { return w.svc.Start(ctx) }

// Stop stops claiming and waits for the firings in flight; when ctx ends first they are
// cancelled (their timers are claimed again after the lease) and ctx's error returned.
func (w *Worker) Stop(ctx context.Context) error { return w.svc.Stop(ctx) }

// RunOnce fires the timers due at the worker clock's now (one batch) and waits for
// them; it returns how many it claimed. Tests with an injected clock use it.
func (w *Worker) RunOnce(ctx context.Context) (int, error) { return w.svc.RunOnce(ctx) }

func (w *Worker) now() time.Time { return w.cfg.NowFunc().UTC().Truncate(time.Microsecond) }

// claim claims the timers due within the lookahead.
func (w *Worker) claim(ctx context.Context, p store.ClaimParams) ([]store.Timer, error) {
	p.DueBy = p.Now.Add(w.cfg.Lookahead)
	return w.cfg.Store.ClaimTimers(ctx, p)
}

// nextDue reports when the next timer can be claimed: a lookahead before it is due.
func (w *Worker) nextDue(ctx context.Context) (time.Time, bool, error) {
	at, ok, err := w.cfg.Store.NextTimerAt(ctx)
	return at.Add(-w.cfg.Lookahead), ok, err
}

// fire waits until a claimed timer is due, executes it and records the result. It
// returns the time of the retry it scheduled, if any.
// The whole of firing is recording the timer's decision, so its slot is never released
// early.
func (w *Worker) fire(ctx context.Context, t store.Timer, _ func()) time.Time {
	if wait := t.NextAttemptAt.Sub(w.now()); wait > 0 {
		tm := time.NewTimer(wait)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return time.Time{} // hard stop: the lease expires and the timer fires later
		}
	}
	log := w.log.With("timer_id", t.ID, "workflow_type", t.WorkflowType, "workflow_id", t.WorkflowID,
		"key", t.Key, "attempt", t.Attempts+1)
	start := w.now()
	p := store.CompleteTimerParams{TimerID: t.ID, Worker: w.svc.WorkerID(), Status: store.TimerFired, Now: start}
	rp, err := w.cfg.Engine.Params(t.WorkflowType, t.WorkflowID,
		workflow.Input{Type: t.InputType, Data: t.InputData},
		engine.ExecuteOptions{IdempotencyKey: t.ID, Source: store.SourceTimer})
	if err == nil {
		p.Route = &rp
		err = w.batch.Complete(ctx, p)
	}
	if ctx.Err() != nil {
		return time.Time{} // hard stop: the lease expires and the timer fires later
	}
	var retryAt time.Time
	if err != nil && !errors.Is(err, store.ErrLeaseLost) {
		p.Route, p.Error, p.Now = nil, err.Error(), w.now()
		switch {
		case engine.IsInputError(err):
			p.Status = store.TimerDead
		case w.retry.Last(t.Attempts + 1):
			p.Status = store.TimerDead
		default:
			p.Status = store.TimerPending
			retryAt = p.Now.Add(w.retry.Delay(t.Attempts + 1))
			p.NextAttemptAt = retryAt
		}
		log = log.With("error", err)
		err = w.cfg.Store.CompleteTimer(ctx, p)
	}
	result := ResultFired
	switch {
	case errors.Is(err, store.ErrLeaseLost):
		result, retryAt = ResultLeaseLost, time.Time{}
		log.Info("timer was cancelled, replaced or taken over while firing; nothing recorded")
	case err != nil:
		result, retryAt = ResultError, time.Time{}
		log.Error("record timer", "record_error", err)
	case p.Status == store.TimerDead:
		result = ResultDead
		log.Warn("timer is dead")
	case p.Status == store.TimerPending:
		result = ResultRetry
		log.Info("timer failed; will retry", "next_attempt_at", retryAt)
	default:
		w.m.lag.Observe(max(start.Sub(t.NextAttemptAt), 0).Seconds())
		log.Debug("timer fired")
	}
	w.m.fired.WithLabelValues(result).Inc()
	return retryAt
}
