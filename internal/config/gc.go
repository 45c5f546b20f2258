package config

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultGCPercent is the server's GOGC unless the environment sets one. The server
// keeps little alive (a few megabytes under load), so Go's default of 100 starts a
// collection every few megabytes allocated: about 25 a second at 4,000 inputs/s, and
// 10–15% of the process's CPU. At 200 the heap may grow to three times what is live
// before a collection, which halves that. Not higher: every collection also polls the
// network, and at 400 a decision abandoned by its client (a closed connection) often
// ran to its end, its cancellation waiting for the scheduler's 10 ms poll while both
// cores decided (test/reliability's TestAbandonedDecisions; decision 0028).
const DefaultGCPercent = 200

// cgroupMemoryMax is the cgroup v2 file holding the memory limit of the process's
// cgroup (a container's), or "max" for none.
const cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// TuneGC sets the garbage collector as the server runs it: GOGC DefaultGCPercent
// unless the environment sets GOGC, and, unless it sets GOMEMLIMIT, a soft memory limit
// of 90% of the container's memory when there is one, so that the larger heap gives way
// to more frequent collections before the kernel's OOM killer ends the process. The Go
// runtime reads GOGC and GOMEMLIMIT itself when they are set.
func TuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		if limit, ok := memoryLimit(cgroupMemoryMax); ok {
			debug.SetMemoryLimit(limit / 10 * 9)
		}
	}
}

// memoryLimit reads a cgroup v2 memory.max file: a number of bytes, or "max".
func memoryLimit(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil && n > 0
}
