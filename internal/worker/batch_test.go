package worker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

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
