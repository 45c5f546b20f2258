package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestREADMEWalkthrough runs the ```sh blocks of the README's "Walk-through" section
// verbatim with bash against a fresh server (only the address line is changed) and checks
// the status line of every answer and the outcomes it shows.
func TestREADMEWalkthrough(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is not installed; .ci/run installs it")
		}
		t.Skip("curl is not installed")
	}
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	script := walkthroughScript(t, string(readme))

	const addrLine = "IRONFLOW=http://127.0.0.1:8080"
	require.Contains(t, script, addrLine+"\n")
	s := startServer(t, "sqlite", map[string]string{"IRONFLOW_API_KEYS": ""})
	script = strings.Replace(script, addrLine, "IRONFLOW="+s.URL, 1)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	var statuses []string
	for _, m := range regexp.MustCompile(`(?m)^HTTP/1\.1 (\d{3})`).FindAllStringSubmatch(string(out), -1) {
		statuses = append(statuses, m[1])
	}
	require.Equal(t, []string{
		"201",                      // define
		"200", "409", "200", "200", // place, underpay, pay, ship
		"409",                      // already completed
		"200", "200", "200", "200", // instance, events, inputs, at_version
		"200", // diagram
	}, statuses, "%s", out)

	var outcomes []string
	for _, m := range regexp.MustCompile(`(?m)^\{"outcome":"(\w+)"`).FindAllStringSubmatch(string(out), -1) {
		outcomes = append(outcomes, m[1])
	}
	require.Equal(t, []string{"accepted", "rejected", "accepted", "accepted", "already_completed"}, outcomes, "%s", out)
	require.Contains(t, string(out), "stateDiagram-v2")
	require.Contains(t, string(out), "digraph")
	require.Contains(t, string(out), `"reason":"payment is below the order total"`)
}

// walkthroughScript joins the ```sh blocks between "## Walk-through" and the next
// second-level heading.
func walkthroughScript(t *testing.T, readme string) string {
	t.Helper()
	start := strings.Index(readme, "\n## Walk-through\n")
	require.GreaterOrEqual(t, start, 0, "README has no Walk-through section")
	section := readme[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var b strings.Builder
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1) {
		b.WriteString(m[1])
	}
	require.NotEmpty(t, b.String(), "no sh blocks in the Walk-through")
	return b.String()
}
