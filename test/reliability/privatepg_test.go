package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// privatePG is a PostgreSQL cluster of one test's own (initdb + pg_ctl in a temporary
// directory, on a free port, as an unprivileged user), so that the test may restart it
// or kill its connections without touching the shared server other tests use.
type privatePG struct {
	t      *testing.T
	bindir string
	dir    string // data directory and socket directory
	port   int
	cred   *syscall.Credential // nil when the test does not run as root
}

// pgBindir finds the directory of initdb and pg_ctl: pg_config --bindir, else PATH.
func pgBindir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", fmt.Errorf("neither pg_config --bindir nor PATH has initdb: %w", err)
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	return filepath.Dir(p), nil
}

// pgCredential returns the unprivileged user PostgreSQL runs as when the test runs as
// root (PostgreSQL refuses to run as root): nobody, or a system user it creates.
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		const name = "ironflow-pg"
		if u, err = user.Lookup(name); err != nil {
			if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("useradd %s: %v: %s", name, err, out)
			}
			if u, err = user.Lookup(name); err != nil {
				return nil, err
			}
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// startPrivatePG creates and starts a private cluster; it is stopped and deleted when the
// test ends. Without PostgreSQL binaries the test is skipped (it fails under CI).
func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	bindir, err := pgBindir()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("private PostgreSQL: %v", err)
		}
		t.Skipf("private PostgreSQL: %v", err)
	}
	cred, err := pgCredential()
	require.NoError(t, err)
	// Not t.TempDir(): its parent is private to root, and the server runs as another user.
	dir, err := os.MkdirTemp("", "ironflow-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if cred != nil {
		require.NoError(t, os.Chown(dir, int(cred.Uid), int(cred.Gid)))
	}
	_, portStr, _ := strings.Cut(freeAddr(t), ":")
	port, _ := strconv.Atoi(portStr)
	pg := &privatePG{t: t, bindir: bindir, dir: dir, port: port, cred: cred}
	pg.run("initdb", "-D", pg.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	conf := fmt.Sprintf("port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"+
		"shared_buffers = 32MB\nlog_min_messages = warning\n", port, dir)
	f, err := os.OpenFile(filepath.Join(pg.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(conf)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	pg.start()
	t.Cleanup(func() { pg.runQuiet("pg_ctl", "-D", pg.data(), "-m", "immediate", "-w", "stop") })
	return pg
}

func (pg *privatePG) data() string { return filepath.Join(pg.dir, "data") }

func (pg *privatePG) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(pg.bindir, name), args...)
	cmd.Dir = pg.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd
}

func (pg *privatePG) run(name string, args ...string) {
	pg.t.Helper()
	out, err := pg.command(name, args...).CombinedOutput()
	require.NoError(pg.t, err, "%s %v: %s", name, args, out)
}

func (pg *privatePG) runQuiet(name string, args ...string) {
	_, _ = pg.command(name, args...).CombinedOutput()
}

// start starts the cluster and waits until it accepts connections.
func (pg *privatePG) start() {
	pg.t.Helper()
	pg.run("pg_ctl", "-D", pg.data(), "-l", filepath.Join(pg.dir, "postgres.log"), "-w", "-t", "60", "start")
}

// stop shuts the cluster down (fast: connections are terminated).
func (pg *privatePG) stop() {
	pg.t.Helper()
	pg.run("pg_ctl", "-D", pg.data(), "-m", "fast", "-w", "-t", "60", "stop")
}

// restart is pg_ctl restart -m fast, as pg_ctlcluster restart does.
func (pg *privatePG) restart() {
	pg.t.Helper()
	pg.run("pg_ctl", "-D", pg.data(), "-l", filepath.Join(pg.dir, "postgres.log"), "-m", "fast", "-w", "-t", "60", "restart")
}

// url returns the URL of database db on the cluster.
func (pg *privatePG) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, db)
}

// createDatabase creates db and returns its URL.
func (pg *privatePG) createDatabase(db string) string {
	pg.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.url("postgres"))
	require.NoError(pg.t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(ctx, "CREATE DATABASE "+db)
	require.NoError(pg.t, err)
	return pg.url(db)
}

// terminateBackends kills every connection to db (pg_terminate_backend) and returns how
// many there were.
func (pg *privatePG) terminateBackends(db string) int {
	pg.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.url("postgres"))
	require.NoError(pg.t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	var n int
	require.NoError(pg.t, conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = $1 AND pid <> pg_backend_pid()`, db).Scan(&n))
	return n
}
