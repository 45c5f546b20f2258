package config

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Not parallel: the collector's settings are the process's.
func TestTuneGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	TuneGC(env(nil))
	assert.Equal(t, DefaultGCPercent, debug.SetGCPercent(100), "no GOGC: the server's default")

	TuneGC(env(map[string]string{"GOGC": "100"}))
	assert.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: the runtime's reading of it stands")
}

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	n, ok := memoryLimit(write("limited", "1073741824\n"))
	assert.True(t, ok)
	assert.EqualValues(t, 1<<30, n)
	_, ok = memoryLimit(write("unlimited", "max\n"))
	assert.False(t, ok)
	_, ok = memoryLimit(filepath.Join(dir, "absent"))
	assert.False(t, ok)
}
