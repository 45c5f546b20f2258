package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// e2eRowOf is an end-to-end row of n workflows at rate whose latencies are all d but the
// slowest hundredth, which take slow.
func e2eRowOf(system, config string, rate float64, n int, d, slow time.Duration) e2eRow {
	r := e2eRow{system: system, backend: "postgres", config: config, rate: rate, n: n, completed: n, sustained: true}
	for i := range n {
		r.lat.samples = append(r.lat.samples, d)
		if i < n/100+1 {
			r.lat.samples[i] = slow
		}
	}
	return r
}

func TestPoolAddsUpRounds(t *testing.T) {
	a := e2eRowOf("River", "tuned", 510, 100, time.Millisecond, 5*time.Millisecond)
	b := e2eRowOf("River", "tuned", 510, 300, 2*time.Millisecond, 9*time.Millisecond)
	b.late, b.sustained = 2, false
	p := pool(pool(e2eRow{}, a), b)
	require.Equal(t, 400, p.n)
	require.Equal(t, 400, p.completed)
	require.Len(t, p.lat.samples, 400)
	require.Equal(t, 2, p.late)
	require.False(t, p.sustained, "a round that was not sustained makes the pool not sustained")
	require.Equal(t, "River", p.system)
}

// The summary's tail verdict against a tuned peer comes from the tail comparison where
// it ran, not from the search's single runs.
func TestSummaryTakesTheTailComparison(t *testing.T) {
	const cfg = "tuned (fetch 2 ms/20 ms, 2,000 workers)"
	b := &bench{e2e: []e2eRow{
		e2eRowOf("ironflow", "defaults", 510, 2550, 2*time.Millisecond, 4*time.Millisecond),
		e2eRowOf("River", cfg, 510, 2550, 3*time.Millisecond, 30*time.Millisecond),
	}}
	var w strings.Builder
	b.writeE2ESummary(&w)
	require.Contains(t, w.String(), "yes (4.0 ms vs 30.0 ms at 510/s)", "without tails: the search's rows")

	ironRound := e2eRowOf("ironflow", "defaults", 510, 2550, 2*time.Millisecond, 12*time.Millisecond)
	riverRound := e2eRowOf("River", cfg, 510, 2550, 3*time.Millisecond, 6*time.Millisecond)
	b.tails = []tailRow{{backend: "postgres", peer: "River", config: cfg, rate: 510,
		iron: []e2eRow{ironRound, ironRound}, other: []e2eRow{riverRound, riverRound}}}
	w.Reset()
	b.writeE2ESummary(&w)
	out := w.String()
	require.Contains(t, out, "**no** (12.0 ms vs 6.0 ms at 510/s)")
	require.Contains(t, out, "12.0 ms / 6.0 ms; 12.0 ms / 6.0 ms", "each round's p99s")
}
