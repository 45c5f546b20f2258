// Package worker runs leased work: the claim, lease and wake loop that the effect
// outbox and the timer worker share.
//
// A Service claims due rows in batches through a ClaimFunc (the store leases them to
// this worker until the lease expires), hands each to a ProcessFunc on its own goroutine
// with at most Concurrency in flight (a row whose work is done may give its slot back
// while the store records it), and sleeps until something may be due: a commit
// signalled by store.Listen, the earliest due time a NextDueFunc reports, a retry time a
// ProcessFunc returned, a freed slot when rows were left unclaimed for want of one, or
// — as the fallback when notifications are lost — the poll interval. It holds claimed
// rows it has no slot for only when BatchSize exceeds Concurrency (prefetching, for
// short work such as timers); with the default BatchSize a lease only covers work that
// is actually running.
package worker

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ironflow/ironflow/internal/store"
)

// Defaults of Config.
const (
	DefaultConcurrency  = 16
	DefaultLease        = 30 * time.Second
	DefaultPollInterval = 2 * time.Second
)

// busyRecheck bounds the sleep when due rows exist that another worker holds: they may
// be released (a lease expiring, a completion) sooner than the poll interval.
const busyRecheck = 100 * time.Millisecond

// Listener is the part of store.Store a Service needs to be woken at commit.
type Listener interface {
	Listen(ctx context.Context, topic store.Topic) (<-chan struct{}, error)
}

// Config configures a Service for rows of type T.
type Config[T any] struct {
	// Name identifies the service in logs and in generated worker ids ("effects").
	Name string
	// WorkerID is the locked_by value of this service's claims; Name plus a random
	// suffix when empty. It must be unique among every process sharing the database.
	WorkerID string
	// Listener and Topic wake the service after commits that add work. Without a
	// Listener the service only polls.
	Listener Listener
	Topic    store.Topic
	// ClaimFunc leases up to p.Limit due rows to p.Worker until p.LeaseExpiry.
	ClaimFunc func(ctx context.Context, p store.ClaimParams) ([]T, error)
	// ProcessFunc handles one claimed row and completes it in the store. ctx is
	// cancelled only by a hard stop. A non-zero result asks the service to look for
	// due work again at that time (a retry it scheduled).
	//
	// It may call release once the row's work is done and only its recording is left
	// (a delivery answered, its completion not yet committed): the row then stops
	// counting against Concurrency and its key's share, so the slot serves the next row
	// while the store records this one in a batch with others. At most Concurrency rows
	// wait to be recorded this way; past that, release keeps the slot until the
	// ProcessFunc returns. Calling it again does nothing.
	ProcessFunc func(ctx context.Context, item T, release func()) time.Time
	// NextDueFunc, if set, reports the earliest time a row becomes due so the service
	// sleeps exactly until then (timers). ok is false when nothing is scheduled.
	NextDueFunc func(ctx context.Context) (at time.Time, ok bool, err error)
	// KeyFunc and KeyShare, if set, share the slots out: at most KeyShare rows with the
	// same key are in flight, and ClaimFunc is asked to skip keys at their share
	// (ClaimParams.ExcludeTypes), so one key's slow or endless work leaves slots to
	// the others.
	KeyFunc  func(T) string
	KeyShare int
	// Concurrency bounds the rows in flight (DefaultConcurrency when 0).
	Concurrency int
	// BatchSize bounds one claim (Concurrency when 0). Rows claimed beyond the free
	// slots wait in memory for one, under their lease: keep BatchSize small enough that
	// a batch is through well within Lease.
	BatchSize int
	// Lease is how long a claim stays with this worker (DefaultLease when 0). A row
	// whose worker died is claimed again once its lease expired.
	Lease time.Duration
	// PollInterval is the fallback sleep when no notification arrives
	// (DefaultPollInterval when 0).
	PollInterval time.Duration
	// NowFunc is the clock of claims (time.Now when nil).
	NowFunc func() time.Time
	Logger  *slog.Logger
}

// Service is a running claim loop. Create it with New, then Start and Stop it; or call
// RunOnce to process what is due right now (deterministic tests).
type Service[T any] struct {
	cfg Config[T]

	wakeCh  chan struct{} // coalesced: "look again now"
	freedCh chan struct{} // coalesced: a slot became free

	mu       sync.Mutex
	started  bool
	inflight int
	byKey    map[string]int // rows in flight per KeyFunc key
	released int            // rows released from their slot, not yet returned
	wakeAts  wakeTimes      // retry times ProcessFuncs asked for, earliest first
	stopCh   chan struct{}
	doneCh   chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// New returns a Service for cfg, filling in defaults. It panics when ClaimFunc or
// ProcessFunc is nil, which is a wiring bug.
func New[T any](cfg Config[T]) *Service[T] {
	if cfg.ClaimFunc == nil || cfg.ProcessFunc == nil {
		panic("worker: ClaimFunc and ProcessFunc are required")
	}
	if cfg.Name == "" {
		cfg.Name = "worker"
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = cfg.Name + "-" + uuid.NewString()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = cfg.Concurrency
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.NowFunc == nil {
		cfg.NowFunc = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service[T]{
		cfg:     cfg,
		wakeCh:  make(chan struct{}, 1),
		freedCh: make(chan struct{}, 1),
		byKey:   map[string]int{},
	}
}

// WorkerID returns the locked_by value of this service's claims.
func (s *Service[T]) WorkerID() string { return s.cfg.WorkerID }

func (s *Service[T]) now() time.Time { return s.cfg.NowFunc().UTC().Truncate(time.Microsecond) }

// WakeAt makes the loop look for due work at t (at the latest; it may look earlier).
func (s *Service[T]) WakeAt(t time.Time) {
	if t.IsZero() {
		return
	}
	s.mu.Lock()
	heap.Push(&s.wakeAts, t)
	s.mu.Unlock()
	signal(s.wakeCh)
}

// wakeTimes is a min-heap of times (container/heap).
type wakeTimes []time.Time

func (h wakeTimes) Len() int           { return len(h) }
func (h wakeTimes) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h wakeTimes) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *wakeTimes) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *wakeTimes) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Start subscribes to the store's notifications and starts the loop. The loop runs
// until Stop is called or ctx ends; ctx ending also cancels the work in flight (a hard
// stop). Errors: starting twice. A failing Listen is logged and the service polls.
func (s *Service[T]) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("worker %s: already started", s.cfg.Name)
	}
	s.started = true
	workCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.stopCh = make(chan struct{})
	s.doneCh = make(chan struct{})
	// Listening starts before the first claim so no commit falls between them.
	listenCtx, stopListen := context.WithCancel(workCtx)
	notify := s.listen(listenCtx)
	go func() {
		defer close(s.doneCh)
		defer stopListen()
		s.loop(ctx, workCtx, listenCtx, notify)
	}()
	return nil
}

func (s *Service[T]) listen(ctx context.Context) <-chan struct{} {
	if s.cfg.Listener == nil {
		return nil
	}
	ch, err := s.cfg.Listener.Listen(ctx, s.cfg.Topic)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Warn("listen failed; polling", "worker", s.cfg.Name, "error", err)
		}
		return nil
	}
	return ch
}

// Stop stops claiming and waits for the work in flight to finish. When ctx ends first
// the work in flight is cancelled (its rows are claimed again once their leases expire)
// and Stop returns ctx's error after the goroutines returned. Stopping a service that
// was never started is a no-op.
func (s *Service[T]) Stop(ctx context.Context) error {
	s.mu.Lock()
	if !s.started {
		s.mu.Unlock()
		return nil
	}
	select {
	case <-s.stopCh:
	default:
		close(s.stopCh)
	}
	s.mu.Unlock()

	finished := make(chan struct{})
	go func() {
		<-s.doneCh
		s.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		<-finished
		return fmt.Errorf("worker %s: stop: %w", s.cfg.Name, ctx.Err())
	}
}

// RunOnce claims what is due at the service clock's now (up to BatchSize), processes it
// and waits for it. It returns the number of rows processed. Tests drive a Service with
// an injected clock this way instead of starting it.
func (s *Service[T]) RunOnce(ctx context.Context) (int, error) {
	now := s.now()
	items, err := s.cfg.ClaimFunc(ctx, store.ClaimParams{
		Worker:      s.cfg.WorkerID,
		Limit:       s.cfg.BatchSize,
		Now:         now,
		LeaseExpiry: now.Add(s.cfg.Lease),
	})
	if err != nil {
		return 0, fmt.Errorf("worker %s: claim: %w", s.cfg.Name, err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.cfg.Concurrency)
	for _, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.run(ctx, it, func() {})
		}()
	}
	wg.Wait()
	return len(items), nil
}

func (s *Service[T]) loop(ctx, workCtx, listenCtx context.Context, notify <-chan struct{}) {
	log := s.cfg.Logger.With("worker", s.cfg.Name, "worker_id", s.cfg.WorkerID)
	errDelay := time.Duration(0)
	// queue holds claimed rows waiting for a slot: BatchSize beyond Concurrency is
	// prefetched, so a burst is claimed in a few statements rather than one per slot.
	var queue []T
	prefetch := max(s.cfg.BatchSize-s.cfg.Concurrency, 0)
	for {
		select {
		case <-s.stopCh:
			s.drain(workCtx, queue) // leased to us: finish them rather than strand them
			return
		case <-ctx.Done():
			s.cancel()
			return
		default:
		}
		if notify == nil && s.cfg.Listener != nil {
			notify = s.listen(listenCtx)
		}

		s.mu.Lock()
		free := s.cfg.Concurrency - s.inflight
		s.mu.Unlock()

		for free > 0 && len(queue) > 0 {
			s.dispatch(workCtx, queue[0])
			queue = queue[1:]
			free--
		}

		wait := s.cfg.PollInterval
		watchFreed := free <= 0 || len(queue) > 0 // a finishing row frees a slot for more
		exclude, busy, keyRoom := s.shares()
		if len(exclude) > 0 {
			watchFreed = true // a key at its share may have rows due as soon as one ends
		}
		if free > 0 && len(queue) == 0 && len(busy) > len(exclude) {
			// Keys with nothing in flight go first: a backlog of one key, due earlier,
			// would otherwise come before every other key's rows in the claim's order.
			claimedAt := s.now()
			items, err := s.cfg.ClaimFunc(workCtx, store.ClaimParams{
				Worker:       s.cfg.WorkerID,
				Limit:        min(free, keyRoom),
				Now:          claimedAt,
				LeaseExpiry:  claimedAt.Add(s.cfg.Lease),
				ExcludeTypes: busy,
			})
			if err == nil && len(items) > 0 {
				for _, it := range items {
					s.dispatch(workCtx, it)
					free--
				}
				continue // shares changed: look again
			}
		}
		if free > 0 && len(queue) == 0 && keyRoom > 0 {
			limit := min(free+prefetch, s.cfg.BatchSize, keyRoom)
			claimedAt := s.now()
			// Forget the requested retry times that are due: whatever was due by now is
			// claimed below. Later ones stay, each waking the loop in its turn.
			s.mu.Lock()
			for len(s.wakeAts) > 0 && !s.wakeAts[0].After(claimedAt) {
				heap.Pop(&s.wakeAts)
			}
			s.mu.Unlock()
			items, err := s.cfg.ClaimFunc(workCtx, store.ClaimParams{
				Worker:       s.cfg.WorkerID,
				Limit:        limit,
				Now:          claimedAt,
				LeaseExpiry:  claimedAt.Add(s.cfg.Lease),
				ExcludeTypes: exclude,
			})
			if err != nil {
				if workCtx.Err() != nil {
					return
				}
				errDelay = min(max(2*errDelay, 50*time.Millisecond), s.cfg.PollInterval)
				log.Warn("claim failed", "error", err, "retry_in", errDelay)
				wait = errDelay
			} else {
				errDelay = 0
				for _, it := range items {
					if free > 0 {
						s.dispatch(workCtx, it)
						free--
					} else {
						queue = append(queue, it)
					}
				}
				if len(items) == limit {
					continue // there may be more due right now
				}
				// Fewer than asked: nothing more was due that this claim may take. A slot
				// freed by the rows just claimed is watched only for the rows queued for
				// one; another claim then would find nothing (it was one more claim per
				// delivery, an empty one). Work that falls due later wakes the loop: a
				// commit's notification, a retry time, NextDueFunc.
				if len(queue) > 0 {
					watchFreed = true
				}
				if s.cfg.NextDueFunc != nil {
					at, ok, err := s.cfg.NextDueFunc(workCtx)
					switch {
					case err != nil:
						if workCtx.Err() != nil {
							return
						}
						log.Warn("next due time failed", "error", err)
					case ok && at.After(claimedAt):
						wait = min(wait, at.Sub(s.now()))
					case ok:
						// Due but not claimable: another worker (or our own in-flight
						// work) holds it. Look again when a lease may have moved.
						wait = min(wait, busyRecheck)
						watchFreed = true
					}
				}
			}
		}
		s.mu.Lock()
		if len(s.wakeAts) > 0 {
			wait = min(wait, s.wakeAts[0].Sub(s.now()))
		}
		s.mu.Unlock()
		if wait <= 0 {
			continue
		}

		var freed chan struct{}
		if watchFreed {
			freed = s.freedCh
		}
		t := time.NewTimer(wait)
		select {
		case <-s.stopCh:
			t.Stop()
			s.drain(workCtx, queue)
			return
		case <-ctx.Done():
			t.Stop()
			s.cancel()
			return
		case _, ok := <-notify:
			if !ok {
				notify = nil // store closed or connection lost: poll, resubscribe next round
			}
		case <-s.wakeCh:
		case <-freed:
		case <-t.C:
		}
		t.Stop()
	}
}

// drain dispatches queued rows as slots free up, until ctx (the work context, cancelled
// by a hard stop) ends.
func (s *Service[T]) drain(ctx context.Context, queue []T) {
	for _, it := range queue {
		for {
			s.mu.Lock()
			free := s.cfg.Concurrency - s.inflight
			s.mu.Unlock()
			if free > 0 {
				break
			}
			select {
			case <-s.freedCh:
			case <-ctx.Done():
				return
			}
		}
		s.dispatch(ctx, it)
	}
}

// shares returns the keys at their share, every key in flight, and how many rows one
// claim may take without putting any other key over its share (a claim may return rows
// of a single key). Without KeyFunc nothing is excluded or busy and the room is
// unbounded.
func (s *Service[T]) shares() (exclude, busy []string, room int) {
	if s.cfg.KeyFunc == nil || s.cfg.KeyShare <= 0 {
		return nil, nil, s.cfg.BatchSize
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	busiest := 0
	for k, n := range s.byKey {
		busy = append(busy, k)
		if n >= s.cfg.KeyShare {
			exclude = append(exclude, k)
		} else {
			busiest = max(busiest, n)
		}
	}
	return exclude, busy, s.cfg.KeyShare - busiest
}

func (s *Service[T]) dispatch(ctx context.Context, it T) {
	key := ""
	if s.cfg.KeyFunc != nil {
		key = s.cfg.KeyFunc(it)
	}
	s.mu.Lock()
	s.inflight++
	s.byKey[key]++
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		released, asked := false, false // under s.mu
		release := func() {
			s.mu.Lock()
			if asked {
				s.mu.Unlock()
				return
			}
			asked = true
			if s.released < s.cfg.Concurrency {
				released = true
				s.released++
				s.free(key)
			}
			s.mu.Unlock()
			if released {
				signal(s.freedCh)
			}
		}
		retryAt := s.run(ctx, it, release)
		s.mu.Lock()
		if released {
			s.released--
		} else {
			s.free(key)
		}
		s.mu.Unlock()
		if !retryAt.IsZero() {
			s.WakeAt(retryAt)
		}
		signal(s.freedCh)
	}()
}

// free gives a row's slot back, under s.mu.
func (s *Service[T]) free(key string) {
	s.inflight--
	if s.byKey[key]--; s.byKey[key] <= 0 {
		delete(s.byKey, key)
	}
}

// run calls ProcessFunc, turning a panic into a logged error: the row's lease expires
// and it is claimed again. The work is bounded by the lease: past it another worker
// may own the row, so finishing would be wasted (and its completion refused anyway).
func (s *Service[T]) run(ctx context.Context, it T, release func()) (retryAt time.Time) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Lease)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			s.cfg.Logger.Error("worker panicked", "worker", s.cfg.Name, "panic", r)
			retryAt = time.Time{}
		}
	}()
	return s.cfg.ProcessFunc(ctx, it, release)
}
