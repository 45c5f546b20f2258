package worker

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Defaults of NewRetry, shared by the effect and timer workers.
const (
	DefaultMaxAttempts          = 10
	DefaultRetryInitialInterval = time.Second
	DefaultRetryMaxInterval     = 10 * time.Minute
)

// Retry is a worker's retry policy: an item gets MaxAttempts attempts, with a Backoff
// between them, and is dead after the last.
type Retry struct {
	MaxAttempts int
	Backoff
}

// NewRetry returns the policy of maxAttempts attempts and a backoff from initial up to
// maxInterval, jittered with randFunc (see Backoff). A value <= 0 takes its default
// (DefaultMaxAttempts, DefaultRetryInitialInterval, DefaultRetryMaxInterval), and
// maxInterval is raised to initial when below it.
func NewRetry(maxAttempts int, initial, maxInterval time.Duration, randFunc func(n int64) int64) Retry {
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	if initial <= 0 {
		initial = DefaultRetryInitialInterval
	}
	if maxInterval <= 0 {
		maxInterval = DefaultRetryMaxInterval
	}
	return Retry{MaxAttempts: maxAttempts, Backoff: Backoff{Initial: initial, Max: max(maxInterval, initial), RandFunc: randFunc}}
}

// Last reports whether attempt (1-based) spends the attempt budget.
func (r Retry) Last(attempt int) bool { return attempt >= r.MaxAttempts }

// Backoff computes retry delays: exponential from Initial, doubling per attempt up to
// Max, with full jitter (a uniformly random delay between zero and that ceiling), so
// rows that failed together do not retry together.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	// RandFunc returns a uniform int64 in [0, n); math/rand/v2's Int64N when nil.
	RandFunc func(n int64) int64
}

// Ceiling returns the delay ceiling after the attempt-th failure (1-based): Initial,
// 2×Initial, 4×Initial… capped at Max.
func (b Backoff) Ceiling(attempt int) time.Duration {
	eb := &backoff.ExponentialBackOff{
		InitialInterval:     b.Initial,
		RandomizationFactor: 0, // the jitter is full jitter, applied below
		Multiplier:          2,
		MaxInterval:         b.Max,
		MaxElapsedTime:      0, // the attempt budget, not elapsed time, ends retries
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	eb.Reset()
	d := b.Initial
	for range min(max(attempt, 1), 64) {
		d = eb.NextBackOff()
		if d >= b.Max {
			break
		}
	}
	return min(d, b.Max)
}

// Delay returns the jittered delay before the retry that follows the attempt-th failure.
func (b Backoff) Delay(attempt int) time.Duration {
	c := b.Ceiling(attempt)
	if c <= 0 {
		return 0
	}
	rnd := b.RandFunc
	if rnd == nil {
		rnd = rand.Int64N
	}
	return time.Duration(rnd(int64(c) + 1))
}

// RetryAfter parses a Retry-After header value (delay seconds or an HTTP date) relative
// to now. ok is false when the value is absent or malformed.
func RetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(365*24*time.Hour/time.Second))) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
