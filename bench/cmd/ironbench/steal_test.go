package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStealShare(t *testing.T) {
	t0, ok := parseCPULine([]byte("cpu  100 0 50 800 10 0 5 35 7 0\ncpu0 1 2 3\n"))
	require.True(t, ok)
	require.Equal(t, cpuTimes{total: 1000, steal: 35}, t0, "guest time is already in user")
	t1, ok := parseCPULine([]byte("cpu  300 0 100 900 10 0 5 85 9 0\n"))
	require.True(t, ok)
	require.InDelta(t, 50.0/400, stealShare(t0, t1), 1e-9)
	require.Zero(t, stealShare(t1, t0))
	_, ok = parseCPULine([]byte("intr 1 2 3\n"))
	require.False(t, ok)
}
