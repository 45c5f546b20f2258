package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/apitest"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
)

func envFunc(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestRunMigrate(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			dbURL := "sqlite://" + filepath.Join(t.TempDir(), "ironflow.db")
			if backend == "postgres" {
				dbURL = pgtest.NewDatabaseURL(t) // no migration has touched it
			}
			env := envFunc(map[string]string{"IRONFLOW_DATABASE_URL": dbURL})
			require.NoError(t, run(context.Background(), []string{"migrate"}, env, &out))
			require.Contains(t, out.String(), "migrations applied")
			// Idempotent.
			require.NoError(t, run(context.Background(), []string{"migrate"}, env, &out))
		})
	}
}

func TestRunMigrateUnreachablePostgres(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = run(ctx, []string{"migrate"}, envFunc(map[string]string{
		"IRONFLOW_DATABASE_URL": "postgres://nobody@" + addr + "/nothing?sslmode=disable&connect_timeout=2",
	}), &bytes.Buffer{})
	require.Error(t, err)
}

func TestRunHelp(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-help"}, envFunc(nil), &out))
	for _, want := range []string{"migrate", "-listen-addr", "IRONFLOW_LISTEN_ADDR", "-api-keys", "IRONFLOW_API_KEYS_FILE", "-max-body-bytes"} {
		require.Contains(t, out.String(), want)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want []string
	}{
		"non-loopback without keys": {
			env:  map[string]string{"IRONFLOW_LISTEN_ADDR": "0.0.0.0:0"},
			want: []string{"not a loopback address", "IRONFLOW_API_KEYS"},
		},
		"every problem listed": {
			env: map[string]string{
				"IRONFLOW_WEBHOOK_TIMEOUT": "soon",
				"IRONFLOW_LOG_FORMAT":      "xml",
				"IRONFLOW_DATABASE_URL":    "mysql://x",
			},
			want: []string{"IRONFLOW_WEBHOOK_TIMEOUT", "IRONFLOW_LOG_FORMAT", "IRONFLOW_DATABASE_URL"},
		},
		"unknown command": {args: []string{"dance"}, want: []string{`unknown command "dance"`}},
		"unknown flag":    {args: []string{"-colour=red"}, want: []string{"colour"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), tc.args, envFunc(tc.env), &bytes.Buffer{})
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestRunListenFailure: a port already taken ends run with an error after closing the
// store.
func TestRunListenFailure(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	err = run(context.Background(), nil, envFunc(map[string]string{
		"IRONFLOW_LISTEN_ADDR":  ln.Addr().String(),
		"IRONFLOW_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "x.db"),
	}), &bytes.Buffer{})
	require.ErrorContains(t, err, "start http")
}

// TestRunTextLogsAndFlags: flags win over the environment; text logs by default.
func TestRunTextLogsAndFlags(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var mu apitest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-listen-addr=127.0.0.1:0", "-log-level=debug"}, envFunc(map[string]string{
			"IRONFLOW_LISTEN_ADDR":  "127.0.0.1:1", // the flag wins
			"IRONFLOW_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "x.db"),
		}), &mu)
	}()
	require.Eventually(t, func() bool { return strings.Contains(mu.String(), "msg=listening") }, 20*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.NotContains(t, mu.String(), "127.0.0.1:1 ")
	require.Contains(t, mu.String(), "msg=stopped")
}
