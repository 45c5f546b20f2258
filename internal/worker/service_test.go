package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ironflow/ironflow/internal/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// queueSource is an in-memory stand-in for a store's claimable rows.
type queueSource struct {
	mu     sync.Mutex
	due    []int
	notify chan struct{}
}

func (q *queueSource) Listen(ctx context.Context, _ store.Topic) (<-chan struct{}, error) {
	return q.notify, nil
}

func (q *queueSource) claim(_ context.Context, p store.ClaimParams) ([]int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(p.Limit, len(q.due))
	out := append([]int(nil), q.due[:n]...)
	q.due = q.due[n:]
	return out, nil
}

func (q *queueSource) add(items ...int) {
	q.mu.Lock()
	q.due = append(q.due, items...)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// waitProcessed waits for done, failing the test after 5 s.
func waitProcessed(t *testing.T, done *sync.WaitGroup) {
	t.Helper()
	waited := make(chan struct{})
	go func() { done.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("items were not processed")
	}
}

func TestServiceWakesOnNotifyAndBoundsConcurrency(t *testing.T) {
	t.Parallel()
	q := &queueSource{notify: make(chan struct{}, 1)}
	var inflight, peak atomic.Int32
	var done sync.WaitGroup
	svc := New(Config[int]{
		Name: "test", Listener: q, ClaimFunc: q.claim, Concurrency: 3, BatchSize: 10,
		PollInterval: time.Hour, // only notifications and freed slots may wake it
		ProcessFunc: func(ctx context.Context, _ int, _ func()) time.Time {
			n := inflight.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			inflight.Add(-1)
			done.Done()
			return time.Time{}
		},
	})
	require.NoError(t, svc.Start(context.Background()))
	done.Add(25)
	items := make([]int, 25)
	q.add(items...)
	waitProcessed(t, &done)
	require.LessOrEqual(t, peak.Load(), int32(3))
	require.NoError(t, svc.Stop(context.Background()))
}

func TestServiceHardStopCancelsWork(t *testing.T) {
	t.Parallel()
	q := &queueSource{notify: make(chan struct{}, 1)}
	started := make(chan struct{})
	svc := New(Config[int]{
		Name: "test", Listener: q, ClaimFunc: q.claim, PollInterval: time.Hour,
		ProcessFunc: func(ctx context.Context, _ int, _ func()) time.Time {
			close(started)
			<-ctx.Done()
			return time.Time{}
		},
	})
	require.NoError(t, svc.Start(context.Background()))
	q.add(1)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, svc.Stop(ctx), context.DeadlineExceeded)
}

func TestServiceWakeAt(t *testing.T) {
	t.Parallel()
	q := &queueSource{notify: make(chan struct{}, 1)}
	var calls atomic.Int32
	got := make(chan struct{}, 2)
	svc := New(Config[int]{
		Name: "test", ClaimFunc: func(ctx context.Context, p store.ClaimParams) ([]int, error) {
			calls.Add(1)
			return q.claim(ctx, p)
		},
		PollInterval: time.Hour,
		ProcessFunc: func(context.Context, int, func()) time.Time {
			got <- struct{}{}
			return time.Time{}
		},
	})
	require.NoError(t, svc.Start(context.Background()))
	// Without a Listener nothing announces the row; the requested wake-up finds it.
	q.mu.Lock()
	q.due = append(q.due, 7)
	q.mu.Unlock()
	svc.WakeAt(time.Now().Add(30 * time.Millisecond))
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("WakeAt did not wake the loop")
	}
	require.NoError(t, svc.Stop(context.Background()))
}

// timedSource holds rows that become claimable at a time, like retries do.
type timedSource struct {
	mu  sync.Mutex
	due map[int]time.Time
}

func (q *timedSource) claim(_ context.Context, p store.ClaimParams) ([]int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []int
	for it, at := range q.due {
		if !at.After(p.Now) && len(out) < p.Limit {
			out = append(out, it)
			delete(q.due, it)
		}
	}
	return out, nil
}

// Every retry time a ProcessFunc asks for wakes the loop, not just the earliest one
// pending at the next claim.
func TestServiceWakesForEveryRetryTime(t *testing.T) {
	t.Parallel()
	q := &timedSource{due: map[int]time.Time{1: {}, 2: {}}}
	var mu sync.Mutex
	runs := map[int]int{}
	retried := make(chan int, 2)
	svc := New(Config[int]{
		Name: "test", ClaimFunc: q.claim, Concurrency: 2, BatchSize: 2,
		PollInterval: time.Hour, // only the requested retry times may wake it
		ProcessFunc: func(_ context.Context, it int, _ func()) time.Time {
			mu.Lock()
			runs[it]++
			n := runs[it]
			mu.Unlock()
			if n > 1 {
				retried <- it
				return time.Time{}
			}
			at := time.Now().Add(time.Duration(it) * 100 * time.Millisecond)
			q.mu.Lock()
			q.due[it] = at
			q.mu.Unlock()
			return at
		},
	})
	require.NoError(t, svc.Start(context.Background()))
	defer func() { require.NoError(t, svc.Stop(context.Background())) }()
	got := map[int]bool{}
	timeout := time.After(5 * time.Second)
	for len(got) < 2 {
		select {
		case it := <-retried:
			got[it] = true
		case <-timeout:
			t.Fatalf("retries ran for %v only", got)
		}
	}
}

// A row its ProcessFunc releases gives its slot to the next row while it waits to be
// recorded, and no more than Concurrency rows wait so: the next ones keep their slots.
func TestServiceReleaseLendsTheSlot(t *testing.T) {
	t.Parallel()
	q := &queueSource{notify: make(chan struct{}, 1)}
	var running atomic.Int32
	hold := make(chan struct{})
	var done sync.WaitGroup
	svc := New(Config[int]{
		Name: "test", Listener: q, ClaimFunc: q.claim, Concurrency: 2, BatchSize: 2,
		PollInterval: time.Hour, // only notifications and freed slots may wake it
		ProcessFunc: func(_ context.Context, _ int, release func()) time.Time {
			running.Add(1)
			release()
			release() // a second call changes nothing
			<-hold    // the recording
			running.Add(-1)
			done.Done()
			return time.Time{}
		},
	})
	require.NoError(t, svc.Start(context.Background()))
	done.Add(6)
	q.add(1, 2, 3, 4, 5, 6)
	// Two released rows and two holding their slots.
	require.Eventually(t, func() bool { return running.Load() == 4 }, 5*time.Second, time.Millisecond)
	require.Never(t, func() bool { return running.Load() > 4 }, 100*time.Millisecond, time.Millisecond)
	close(hold)
	waitProcessed(t, &done)
	require.NoError(t, svc.Stop(context.Background()))
}

// A claim that got fewer rows than it asked for found everything due: the slots those
// rows give back, when released or done, do not make the loop claim again. Only new
// work (here a notification) does. Before, every delivery cost one more claim, empty.
func TestServiceClaimsAgainOnlyForNewWork(t *testing.T) {
	t.Parallel()
	q := &queueSource{notify: make(chan struct{}, 1)}
	var claims atomic.Int32
	var done sync.WaitGroup
	svc := New(Config[int]{
		Name: "test", Listener: q, Concurrency: 4,
		ClaimFunc: func(ctx context.Context, p store.ClaimParams) ([]int, error) {
			claims.Add(1)
			return q.claim(ctx, p)
		},
		PollInterval: time.Hour, // only notifications and freed slots may wake it
		ProcessFunc: func(_ context.Context, _ int, release func()) time.Time {
			release()
			done.Done()
			return time.Time{}
		},
	})
	require.NoError(t, svc.Start(context.Background()))
	defer func() { require.NoError(t, svc.Stop(context.Background())) }()
	// The first claim, at the start, finds nothing.
	require.Eventually(t, func() bool { return claims.Load() == 1 }, 5*time.Second, time.Millisecond)
	for round := int32(1); round <= 3; round++ {
		done.Add(2)
		q.add(1, 2)
		waitProcessed(t, &done)
		require.Never(t, func() bool { return claims.Load() > 1+round }, 50*time.Millisecond, time.Millisecond,
			"one claim per notification")
	}
}
