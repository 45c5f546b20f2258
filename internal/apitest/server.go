package apitest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// serverBinary is cmd/server, built once for every test of a test binary.
var serverBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ironflow-server")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "server")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ironflow/ironflow/cmd/server").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build cmd/server: %v: %s", err, out)
	}
	return bin, nil
})

// ServerT is the part of testing.TB that StartServer uses.
type ServerT interface {
	T
	Cleanup(func())
	TempDir() string
}

// StartServer runs the real server (cmd/server, built once) on 127.0.0.1:0 with SQLite
// in a temporary directory, the API key "k" and webhooks allowed to loopback
// receivers, then env ("NAME=value", later ones win). It returns the server's URL and
// stops the server (SIGINT) when the test ends.
func StartServer(t ServerT, env ...string) string {
	t.Helper()
	bin, err := serverBinary()
	if err != nil {
		t.Fatalf("%v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"IRONFLOW_LISTEN_ADDR=127.0.0.1:0",
		"IRONFLOW_LOG_FORMAT=json",
		"IRONFLOW_API_KEYS=k",
		"IRONFLOW_DATABASE_URL=sqlite://" + filepath.Join(t.TempDir(), "ironflow.db"),
		"IRONFLOW_WEBHOOK_ALLOW_NETS=127.0.0.0/8",
	}, env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	logs, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("server output: %v", err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the server: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "listening" {
				if a, ok := rec["addr"].(string); ok {
					addr <- a
				}
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not log its address within 30s")
		return ""
	}
}
