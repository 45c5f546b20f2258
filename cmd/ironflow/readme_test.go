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

// TestREADMECLI runs the ```sh block of the README's "The walk-through with the CLI"
// section with bash, the CLI built from this package on PATH, against a fresh server.
func TestREADMECLI(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	start := strings.Index(string(readme), "\n## The walk-through with the CLI\n")
	require.GreaterOrEqual(t, start, 0, "README has no CLI walk-through")
	section := string(readme[start+1:])
	section = section[:strings.Index(section[3:], "\n## ")+3]
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(section)
	require.NotNil(t, m, "no sh block in the CLI walk-through")
	const addrLine = "export IRONFLOW_URL=http://127.0.0.1:8080"
	require.Contains(t, m[1], addrLine+"\n")

	bin := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "ironflow"), ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	url := startServer(t)
	script := strings.Replace(m[1], addrLine, "export IRONFLOW_URL="+url, 1)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "IRONFLOW_API_KEY=k")
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, want := range []string{
		"examples/order.json: ok", "order: defined version 1", `"outcome": "accepted"`,
		"payment is below the order total", "exit 3: rejected", `"name": "paid"`, `"type":"PaymentReceived"`,
		`"status": "terminated"`, "digraph",
	} {
		require.Contains(t, string(out), want)
	}
}
