package worker

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffCeilingDoublesUpToMax(t *testing.T) {
	t.Parallel()
	b := Backoff{Initial: time.Second, Max: 10 * time.Second}
	for attempt, want := range map[int]time.Duration{
		0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		4: 8 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second, 1000: 10 * time.Second,
	} {
		require.Equal(t, want, b.Ceiling(attempt), "attempt %d", attempt)
	}
}

func TestNewRetryDefaults(t *testing.T) {
	t.Parallel()
	r := NewRetry(0, 0, -time.Second, nil)
	require.Equal(t, DefaultMaxAttempts, r.MaxAttempts)
	require.Equal(t, DefaultRetryInitialInterval, r.Initial)
	require.Equal(t, DefaultRetryMaxInterval, r.Max)
	require.False(t, r.Last(DefaultMaxAttempts-1))
	require.True(t, r.Last(DefaultMaxAttempts))

	// A maximum below the first interval is raised to it; the jitter source is kept.
	r = NewRetry(3, time.Minute, time.Second, func(n int64) int64 { return n - 1 })
	require.Equal(t, time.Minute, r.Max)
	require.Equal(t, time.Minute, r.Delay(5))
	require.True(t, r.Last(3))
}

func TestBackoffFullJitter(t *testing.T) {
	t.Parallel()
	lo := Backoff{Initial: time.Second, Max: time.Minute, RandFunc: func(int64) int64 { return 0 }}
	require.Zero(t, lo.Delay(3))
	hi := Backoff{Initial: time.Second, Max: time.Minute, RandFunc: func(n int64) int64 { return n - 1 }}
	require.Equal(t, 4*time.Second, hi.Delay(3))
	real := Backoff{Initial: time.Second, Max: time.Minute}
	for range 100 {
		d := real.Delay(2)
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.LessOrEqual(t, d, 2*time.Second)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	}
	for _, c := range cases {
		got, ok := RetryAfter(c.in, now)
		require.Equal(t, c.ok, ok, c.in)
		require.Equal(t, c.want, got, c.in)
	}
}
