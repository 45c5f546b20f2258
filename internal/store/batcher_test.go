package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBatcherGroupsWhileRecording: a lone completion is recorded at once; completions
// that arrive while batches are being recorded are recorded together, and each caller
// gets its own error.
func TestBatcherGroupsWhileRecording(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	b := NewBatcher(func(_ context.Context, ps []int) []error {
		mu.Lock()
		sizes = append(sizes, len(ps))
		first := len(sizes) <= maxLeaders
		mu.Unlock()
		if first {
			<-release // hold the first batches, so the rest queue up
		}
		errs := make([]error, len(ps))
		for i, p := range ps {
			if p%2 == 1 {
				errs[i] = errors.New("odd")
			}
		}
		return errs
	})
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range maxLeaders {
		wg.Go(func() { errs[i] = b.Complete(context.Background(), i) })
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(sizes) == maxLeaders
	}, time.Second, time.Millisecond)
	for i := maxLeaders; i < n; i++ {
		wg.Go(func() { errs[i] = b.Complete(context.Background(), i) })
	}
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.queue) == n-maxLeaders
	}, time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	for i, err := range errs {
		if i%2 == 1 {
			require.Error(t, err, i)
		} else {
			require.NoError(t, err, i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int{1, 1}, sizes[:maxLeaders], "lone completions are recorded at once")
	total := 0
	for _, s := range sizes[maxLeaders:] {
		total += s
	}
	require.Equal(t, n-maxLeaders, total)
	require.LessOrEqual(t, len(sizes[maxLeaders:]), 2, "the queued ones are recorded in at most one batch per leader")
}

type leaderKey struct{}

// TestBatcherHandsLeadershipOn: a leader records batches until its own completion is
// recorded and then at most maxLead more, then the oldest queued caller leads; a steady
// stream never keeps one caller leading, and every completion is recorded once.
func TestBatcherHandsLeadershipOn(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	ledBy := map[int]int{} // leader → batches it recorded
	recorded := map[int]int{}
	b := NewBatcher(func(ctx context.Context, ps []int) []error {
		leader := ctx.Value(leaderKey{}).(int)
		if leader == 0 {
			<-release
		}
		mu.Lock()
		ledBy[leader]++
		for _, p := range ps {
			recorded[p]++
		}
		mu.Unlock()
		assert.LessOrEqual(t, len(ps), maxBatch)
		return make([]error, len(ps))
	})
	complete := func(i int) error {
		return b.Complete(context.WithValue(context.Background(), leaderKey{}, i), i)
	}
	const n = (maxLead+3)*maxBatch + 10
	var wg sync.WaitGroup
	wg.Go(func() { assert.NoError(t, complete(0)) })
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.leaders == 1 && len(b.queue) == 0 // 0 leads, blocked in record
	}, time.Second, time.Millisecond)
	b.mu.Lock()
	b.leaders = maxLeaders // no second leader: the others queue up behind 0
	b.mu.Unlock()
	for i := 1; i < n; i++ {
		wg.Go(func() { assert.NoError(t, complete(i)) })
	}
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.queue) == n-1
	}, time.Second, time.Millisecond)
	close(release)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1+maxLead, ledBy[0], "0's own batch, then maxLead more")
	require.Greater(t, len(ledBy), 1, "the leadership was handed on")
	require.Len(t, recorded, n)
	for p, times := range recorded {
		require.Equal(t, 1, times, p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Equal(t, maxLeaders-1, b.leaders, "leaderships are given back (bar the one the test took)")
}
