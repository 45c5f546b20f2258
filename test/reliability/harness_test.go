package reliability

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", to count rows

	"github.com/ironflow/ironflow/internal/apitest"
	"github.com/ironflow/ironflow/internal/store/postgres"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
)

// serverBin is the server binary built once by TestMain.
var serverBin string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ironflow-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if !testing.Short() || os.Getenv("IRONFLOW_RELIABILITY") != "" {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil || len(bytes.TrimSpace(out)) == 0 {
			fmt.Fprintln(os.Stderr, "reliability: cannot find the module root:", err)
			return 1
		}
		bin := filepath.Join(dir, "ironflow")
		build := exec.Command("go", "build", "-o", bin, "./cmd/server")
		build.Dir = filepath.Dir(string(bytes.TrimSpace(out)))
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "reliability: go build ./cmd/server:", err)
			return 1
		}
		serverBin = bin
	}
	return m.Run()
}

// requireBinary skips in -short mode, where TestMain builds nothing.
func requireBinary(t *testing.T) {
	t.Helper()
	if serverBin == "" {
		t.Skip("the reliability suite builds and runs the server binary; not in -short mode")
	}
}

// long reports whether the long variants run (make test-reliability).
func long() bool { return os.Getenv("IRONFLOW_RELIABILITY") == "long" }

// pick returns fast in `make test` and slow under IRONFLOW_RELIABILITY=long.
func pick[T any](fast, slow T) T {
	if long() {
		return slow
	}
	return fast
}

const (
	apiKey  = "reliability-key-1"
	apiKey2 = "reliability-key-2"
)

// backends are the stores every test that can runs on.
var backends = []string{"sqlite", "postgres"}

// newDatabaseURL returns an empty database of backend for one test: a file in a temp
// dir, or a migrated database from pgtest's pool on the shared test PostgreSQL server.
func newDatabaseURL(t *testing.T, backend string) string {
	t.Helper()
	if backend == "postgres" {
		return pgtest.MigratedDatabaseURL(t, postgres.Migrate)
	}
	return "sqlite://" + filepath.Join(t.TempDir(), "ironflow.db")
}

// freeAddr returns a 127.0.0.1 address with a free port, so that a server restarted
// after kill -9 comes back at the same address its clients know.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// server is one server process (the real binary) that can be killed and restarted.
type server struct {
	t    *testing.T
	name string
	env  map[string]string
	URL  string
	Addr string
	// logPath collects stdout and stderr of every run.
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	logs    *os.File
	errLogs int // log lines at level ERROR, over all runs
	panics  int
}

// serverOpts configure startServerProc.
type serverOpts struct {
	name string
	// env overrides the defaults (IRONFLOW_* variables).
	env map[string]string
}

// startServer starts the server binary on a fresh address with the test defaults and
// env, and stops it (SIGTERM) when the test ends.
func startServer(t *testing.T, databaseURL string, env map[string]string) *server {
	t.Helper()
	return startServerProc(t, databaseURL, serverOpts{name: "server", env: env})
}

func startServerProc(t *testing.T, databaseURL string, o serverOpts) *server {
	t.Helper()
	requireBinary(t)
	addr := freeAddr(t)
	env := map[string]string{
		"IRONFLOW_LISTEN_ADDR":        addr,
		"IRONFLOW_DATABASE_URL":       databaseURL,
		"IRONFLOW_LOG_FORMAT":         "json",
		"IRONFLOW_LOG_LEVEL":          "info",
		"IRONFLOW_API_KEYS":           apiKey + "," + apiKey2,
		"IRONFLOW_WEBHOOK_ALLOW_NETS": "127.0.0.0/8,::1/128",
	}
	for k, v := range o.env {
		env[k] = v
	}
	s := &server{
		t:       t,
		name:    o.name,
		env:     env,
		Addr:    addr,
		URL:     "http://" + addr,
		logPath: filepath.Join(t.TempDir(), o.name+".log"),
	}
	f, err := os.Create(s.logPath)
	require.NoError(t, err)
	s.logs = f
	s.start()
	t.Cleanup(func() {
		s.stop()
		_ = s.logs.Close()
		if t.Failed() {
			s.dumpLogs(60)
		}
	})
	return s
}

// environ is the process environment: the test's own without any IRONFLOW_* variable
// (the Makefile exports some), plus s.env.
func (s *server) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IRONFLOW_") {
			out = append(out, kv)
		}
	}
	for k, v := range s.env {
		out = append(out, k+"="+v)
	}
	return out
}

// start runs the binary and waits until it listens.
func (s *server) start() {
	s.t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	require.False(s.t, running, "%s is already running", s.name)
	cmd := exec.Command(serverBin)
	cmd.Env = s.environ()
	out, err := cmd.StdoutPipe()
	require.NoError(s.t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(s.t, cmd.Start())
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	listening := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Bytes()
			s.mu.Lock()
			_, _ = s.logs.Write(append(line, '\n'))
			if bytes.Contains(line, []byte(`"level":"ERROR"`)) {
				s.errLogs++
			}
			if bytes.Contains(line, []byte(`panic`)) {
				s.panics++
			}
			s.mu.Unlock()
			if bytes.Contains(line, []byte(`"msg":"listening"`)) {
				once.Do(func() { close(listening) })
			}
		}
		if err := sc.Err(); err != nil {
			// A line the scanner cannot take ends the counting: count that as an error,
			// so checks for no error or panic cannot pass on the unread rest.
			s.mu.Lock()
			s.errLogs++
			fmt.Fprintf(s.logs, "harness: reading the server's output: %v\n", err)
			s.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
	}()
	// The "listening" log line, or (at log levels above info) a connection to the
	// address, tells that the server is up.
	deadline := time.After(60 * time.Second)
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-listening:
			return
		case <-exited:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			s.dumpLogs(40)
			s.t.Fatalf("%s exited before listening", s.name)
		case <-deadline:
			s.dumpLogs(40)
			s.t.Fatalf("%s did not listen within 60s", s.name)
		case <-poll.C:
			if conn, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
				_ = conn.Close()
				return
			}
		}
	}
}

// kill sends SIGKILL: no shutdown, no flush, in-flight work abandoned.
func (s *server) kill() {
	s.t.Helper()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// stop asks for a graceful shutdown (SIGTERM) and kills the process after 40 s.
func (s *server) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(40 * time.Second):
		s.t.Errorf("%s did not stop within 40s of SIGTERM; killing it", s.name)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
}

// pid is the running process's id, 0 when it is not running.
func (s *server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// logCounts returns how many ERROR lines and panics the server logged so far.
func (s *server) logCounts() (errors, panics int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errLogs, s.panics
}

// logLines returns the JSON log records whose msg is msg.
func (s *server) logLines(msg string) []map[string]any {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return nil
	}
	var out []map[string]any
	for _, line := range bytes.Split(b, []byte("\n")) {
		var rec map[string]any
		if json.Unmarshal(line, &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func (s *server) dumpLogs(n int) {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 600 {
			lines[i] = l[:600] + "…"
		}
	}
	s.t.Logf("last %d log lines of %s:\n%s", len(lines), s.name, strings.Join(lines, "\n"))
}

// request and response are the shared test client's.
type (
	request  = apitest.Request
	response = apitest.Response
)

// apiClient talks to one server (or any URL base) with a bounded timeout, with the
// first API key.
type apiClient struct {
	*apitest.Client
}

func newClient(base string, timeout time.Duration) *apiClient {
	return &apiClient{apitest.New(base, apitest.Options{Key: apiKey, Timeout: timeout})}
}

// putDefinition stores a definition and requires 200 or 201.
func (c *apiClient) putDefinition(t *testing.T, typ string, def any) {
	t.Helper()
	r := c.Do(t, request{Method: http.MethodPut, Path: "/v1/workflow-types/" + typ, Body: def})
	require.Contains(t, []int{http.StatusOK, http.StatusCreated}, r.Status, "PUT definition %s: %s", typ, r.Body)
}

// orderDefinition is examples/order.json, the DESIGN §3 example.
func orderDefinition(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "order.json"))
	require.NoError(t, err)
	return b
}

// tableCounts counts the rows of every ironflow table, straight from the database.
func tableCounts(t *testing.T, databaseURL string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, tb := range []string{"definitions", "instances", "events", "inputs", "effects", "effect_attempts", "timers", "webhooks"} {
		out[tb] = queryInt(t, databaseURL, "SELECT count(*) FROM "+tb)
	}
	return out
}

// queryInt runs a query returning one integer against databaseURL.
func queryInt(t *testing.T, databaseURL, query string, args ...any) int64 {
	t.Helper()
	var n int64
	dbQuery(t, databaseURL, query, args, func() { n = 0 }, func(scan func(...any) error) error { return scan(&n) })
	return n
}

// queryStrings runs a query returning one text column.
func queryStrings(t *testing.T, databaseURL, query string) []string {
	t.Helper()
	var out []string
	dbQuery(t, databaseURL, query, nil, func() { out = nil }, func(scan func(...any) error) error {
		var s string
		if err := scan(&s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out
}

// dbQuery runs query straight against the database (not through the server) and calls
// row for each result row, after reset. It retries for up to 15 s: right after a kill
// -9 or during a restart the database may be briefly busy or unreachable.
func dbQuery(t *testing.T, databaseURL, query string, args []any, reset func(), row func(scan func(...any) error) error) {
	t.Helper()
	var err error
	for range 60 {
		reset()
		if err = dbQueryOnce(databaseURL, query, args, row); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	require.NoError(t, err, query)
}

func dbQueryOnce(databaseURL, query string, args []any, row func(scan func(...any) error) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if strings.HasPrefix(databaseURL, "sqlite://") {
		db, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(databaseURL, "sqlite://")+"?_pragma=busy_timeout(10000)")
		if err != nil {
			return err
		}
		defer db.Close()
		rows, err := db.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := row(rows.Scan); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// waitFor polls cond every interval until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
