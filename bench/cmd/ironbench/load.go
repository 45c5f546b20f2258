package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// latencies is a set of samples with percentile and rate helpers.
type latencies struct {
	samples []time.Duration
	errors  int64
	elapsed time.Duration // the measured window
	cpu     cpuUse        // CPU used during the window (closedLoop with a meter)
}

func (l latencies) n() int { return len(l.samples) }

// rate is completed operations per second over the measured window.
func (l latencies) rate() float64 {
	if l.elapsed <= 0 {
		return 0
	}
	return float64(len(l.samples)) / l.elapsed.Seconds()
}

// pct returns the q-quantile (0 < q ≤ 1) by the nearest-rank method.
func (l latencies) pct(q float64) time.Duration {
	if len(l.samples) == 0 {
		return 0
	}
	s := slices.Clone(l.samples)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (l latencies) mean() time.Duration {
	if len(l.samples) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range l.samples {
		sum += d
	}
	return sum / time.Duration(len(l.samples))
}

// closedLoop runs op from conc workers back to back for warm+dur and keeps the samples
// of the operations that started after the warm-up. It stops by itself at the deadline.
func closedLoop(ctx context.Context, conc int, warm, dur time.Duration, op func(ctx context.Context, worker, seq int) error) latencies {
	return meteredLoop(ctx, nil, conc, warm, dur, op)
}

// meteredLoop is closedLoop that also reads, with m (nil: not), the CPU used during
// the measured window.
func meteredLoop(ctx context.Context, m *cpuMeter, conc int, warm, dur time.Duration, op func(ctx context.Context, worker, seq int) error) latencies {
	ctx, cancel := context.WithTimeout(ctx, warm+dur+30*time.Second)
	defer cancel()
	start := time.Now()
	measureFrom := start.Add(warm)
	deadline := measureFrom.Add(dur)
	var cpu <-chan cpuUse
	if m != nil {
		cpu = m.during(measureFrom, deadline)
	}
	var (
		mu   sync.Mutex
		all  []time.Duration
		errs atomic.Int64
		seq  atomic.Int64
		wg   sync.WaitGroup
	)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1024)
			for {
				t0 := time.Now()
				if !t0.Before(deadline) || ctx.Err() != nil {
					break
				}
				err := op(ctx, w, int(seq.Add(1)))
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			all = append(all, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	l := latencies{samples: all, errors: errs.Load(), elapsed: dur}
	if cpu != nil {
		l.cpu = <-cpu
	}
	return l
}

// openLoop starts op at a fixed arrival rate for dur, each in its own goroutine so a
// slow system cannot slow the arrivals down (at most maxInFlight at once; an arrival
// finding none free waits and is counted late). It returns the start time of each
// arrival, its latency (0 when op failed) and how many arrivals were late.
func openLoop(ctx context.Context, rate float64, dur time.Duration, op func(ctx context.Context, seq int) error) (sent []time.Time, lat []time.Duration, late int) {
	const maxInFlight = 4096
	n := max(1, int(rate*dur.Seconds()))
	sent = make([]time.Time, n)
	lat = make([]time.Duration, n)
	ctx, cancel := context.WithTimeout(ctx, dur+60*time.Second)
	defer cancel()
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	t0 := time.Now()
	for i := range n {
		due := t0.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		select {
		case sem <- struct{}{}:
		default:
			late++
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return sent[:i], lat[:i], late
			}
		}
		if time.Since(due) > 50*time.Millisecond {
			late++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s := time.Now()
			sent[i] = s
			if err := op(ctx, i); err == nil {
				lat[i] = time.Since(s)
			}
		}()
	}
	wg.Wait()
	return sent, lat, late
}

// answered returns the latencies of the operations of an open loop of window that
// succeeded (openLoop's lat), and how many did not.
func answered(lat []time.Duration, window time.Duration) (latencies, int) {
	l, failed := latencies{elapsed: window}, 0
	for _, d := range lat {
		if d > 0 {
			l.samples = append(l.samples, d)
		} else {
			failed++
		}
	}
	return l, failed
}
