package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOperationsDocListsEveryMetric: docs/OPERATIONS.md's metrics table names exactly
// the ironflow_ metrics the code registers (found in the sources, so a metric that has
// not been observed yet counts too).
func TestOperationsDocListsEveryMetric(t *testing.T) {
	t.Parallel()
	registered := regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(ironflow_[a-z0-9_]+)"`)
	code := map[string]bool{}
	err := filepath.WalkDir(filepath.Join("..", "..", "internal"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range registered.FindAllStringSubmatch(string(b), -1) {
			code[m[1]] = true
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, code)

	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "OPERATIONS.md"))
	require.NoError(t, err)
	section := string(doc)
	start := strings.Index(section, "## Metrics")
	require.GreaterOrEqual(t, start, 0, "OPERATIONS.md needs a ## Metrics section")
	section = section[start:]
	if end := strings.Index(section[len("## Metrics"):], "\n## "); end >= 0 {
		section = section[:len("## Metrics")+end]
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(ironflow_[a-z0-9_]+)`").FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	keys := func(m map[string]bool) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	require.Equal(t, keys(code), keys(documented), "the metrics table of docs/OPERATIONS.md differs from the registered metrics")
}
