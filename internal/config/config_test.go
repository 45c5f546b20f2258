package config

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(nil, env(nil), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, Config{
		Command:              CommandServe,
		ListenAddr:           "127.0.0.1:8080",
		DatabaseURL:          "sqlite://data/ironflow.db",
		WebhookTimeout:       10 * time.Second,
		MaxAttempts:          10,
		RetryInitialInterval: time.Second,
		RetryMaxInterval:     10 * time.Minute,
		EffectConcurrency:    64,
		MaxChainDepth:        20,
		TimerConcurrency:     1024,
		LogFormat:            LogFormatText,
		LogLevel:             slog.LevelInfo,
		MaxBodyBytes:         1 << 20,
		Retention:            30 * 24 * time.Hour,
		MaxDataBytes:         256 << 10,
		MaxForEach:           1000,
		DecisionTimeout:      time.Second,
		MaxConns:             2048,
		MaxConnsPerClient:    256,
		IdleTimeout:          30 * time.Second,
		MaxWait:              time.Minute,
		MaxStreams:           8,
	}, c)
}

func TestLoadEnvironmentAndFlags(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"IRONFLOW_LISTEN_ADDR":            "0.0.0.0:9000",
		"IRONFLOW_DATABASE_URL":           "postgres://u@db/ironflow",
		"IRONFLOW_API_KEYS":               " k1 , k2,,",
		"IRONFLOW_WEBHOOK_ALLOW_NETS":     "127.0.0.0/8, ::1/128,10.1.2.3/16",
		"IRONFLOW_WEBHOOK_TIMEOUT":        "3s",
		"IRONFLOW_MAX_ATTEMPTS":           "4",
		"IRONFLOW_RETRY_INITIAL_INTERVAL": "100ms",
		"IRONFLOW_RETRY_MAX_INTERVAL":     "1m",
		"IRONFLOW_LOG_FORMAT":             "JSON",
		"IRONFLOW_LOG_LEVEL":              "debug",
		"IRONFLOW_MAX_BODY_BYTES":         "2048",
	}
	c, err := Load(nil, env(vars), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:9000", c.ListenAddr)
	require.Equal(t, "postgres://u@db/ironflow", c.DatabaseURL)
	require.Equal(t, []string{"k1", "k2"}, c.APIKeys)
	require.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.1.0.0/16"),
	}, c.WebhookAllowNets)
	require.Equal(t, 3*time.Second, c.WebhookTimeout)
	require.Equal(t, 4, c.MaxAttempts)
	require.Equal(t, 100*time.Millisecond, c.RetryInitialInterval)
	require.Equal(t, time.Minute, c.RetryMaxInterval)
	require.Equal(t, LogFormatJSON, c.LogFormat)
	require.Equal(t, slog.LevelDebug, c.LogLevel)
	require.EqualValues(t, 2048, c.MaxBodyBytes)

	// Flags win over the environment, before or after the command.
	for _, args := range [][]string{
		{"migrate", "-max-attempts=9", "-log-format", "text"},
		{"-max-attempts=9", "-log-format", "text", "migrate"},
	} {
		c, err = Load(args, env(vars), &bytes.Buffer{})
		require.NoError(t, err, args)
		require.Equal(t, CommandMigrate, c.Command)
		require.Equal(t, 9, c.MaxAttempts)
		require.Equal(t, LogFormatText, c.LogFormat)
		require.Equal(t, 3*time.Second, c.WebhookTimeout)
	}
}

func TestLoadSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	require.NoError(t, os.WriteFile(keys, []byte("alpha\nbeta\n"), 0o600))
	db := filepath.Join(dir, "db")
	require.NoError(t, os.WriteFile(db, []byte("postgres://u:secret@db/x\n"), 0o600))

	c, err := Load(nil, env(map[string]string{"IRONFLOW_API_KEYS_FILE": keys, "IRONFLOW_DATABASE_URL_FILE": db}), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, []string{"alpha", "beta"}, c.APIKeys)
	require.Equal(t, "postgres://u:secret@db/x", c.DatabaseURL)

	_, err = Load(nil, env(map[string]string{"IRONFLOW_API_KEYS_FILE": keys, "IRONFLOW_API_KEYS": "x"}), &bytes.Buffer{})
	require.ErrorContains(t, err, "IRONFLOW_API_KEYS and IRONFLOW_API_KEYS_FILE are both set")
	_, err = Load(nil, env(map[string]string{"IRONFLOW_API_KEYS_FILE": filepath.Join(dir, "missing")}), &bytes.Buffer{})
	require.ErrorContains(t, err, "IRONFLOW_API_KEYS_FILE")
}

func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := Load([]string{"-max-attempts=0"}, env(map[string]string{
		"IRONFLOW_LISTEN_ADDR":        "nonsense",
		"IRONFLOW_DATABASE_URL":       "mysql://x",
		"IRONFLOW_WEBHOOK_ALLOW_NETS": "10.0.0.0/33",
		"IRONFLOW_WEBHOOK_TIMEOUT":    "-1s",
		"IRONFLOW_LOG_LEVEL":          "loud",
		"IRONFLOW_MAX_BODY_BYTES":     "lots",
	}), &bytes.Buffer{})
	require.ErrorIs(t, err, ErrInvalid)
	for _, want := range []string{
		`IRONFLOW_LISTEN_ADDR: "nonsense" is not host:port`,
		"IRONFLOW_DATABASE_URL: must start with sqlite:// or postgres://",
		`IRONFLOW_WEBHOOK_ALLOW_NETS: "10.0.0.0/33" is not a CIDR`,
		`IRONFLOW_WEBHOOK_TIMEOUT: "-1s" is not a positive duration`,
		`IRONFLOW_LOG_LEVEL: "loud"`,
		`IRONFLOW_MAX_BODY_BYTES: "lots" is not a positive integer`,
		`-max-attempts: "0" is not a positive integer`,
	} {
		require.Contains(t, err.Error(), want)
	}
}

func TestLoadRefusesExposedServerWithoutKeys(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"127.0.0.1:8080": true,
		"127.0.0.9:0":    true,
		"[::1]:8080":     true,
		"localhost:8080": true,
		":8080":          false,
		"0.0.0.0:8080":   false,
		"[::]:8080":      false,
		"10.0.0.5:8080":  false,
		"example.test:1": false,
	} {
		_, err := Load(nil, env(map[string]string{"IRONFLOW_LISTEN_ADDR": addr}), &bytes.Buffer{})
		if ok {
			require.NoError(t, err, addr)
			continue
		}
		require.ErrorContains(t, err, "not a loopback address", addr)
		// With keys it is fine, and migrate never listens.
		_, err = Load(nil, env(map[string]string{"IRONFLOW_LISTEN_ADDR": addr, "IRONFLOW_API_KEYS": "k"}), &bytes.Buffer{})
		require.NoError(t, err, addr)
		_, err = Load([]string{"migrate"}, env(map[string]string{"IRONFLOW_LISTEN_ADDR": addr}), &bytes.Buffer{})
		require.NoError(t, err, addr)
	}
}

func TestLoadRetryIntervalsOrdered(t *testing.T) {
	t.Parallel()
	_, err := Load(nil, env(map[string]string{"IRONFLOW_RETRY_INITIAL_INTERVAL": "1m", "IRONFLOW_RETRY_MAX_INTERVAL": "1s"}), &bytes.Buffer{})
	require.ErrorContains(t, err, "IRONFLOW_RETRY_MAX_INTERVAL (1s) is shorter than IRONFLOW_RETRY_INITIAL_INTERVAL (1m0s)")
}

func TestLoadHelp(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	_, err := Load([]string{"-h"}, env(nil), &out)
	require.True(t, errors.Is(err, flag.ErrHelp))
	require.Contains(t, out.String(), "IRONFLOW_DATABASE_URL_FILE")
}

func TestBackend(t *testing.T) {
	t.Parallel()
	for u, want := range map[string][2]string{
		"sqlite://data/ironflow.db":          {BackendSQLite, "data/ironflow.db"},
		"sqlite:///var/lib/ironflow.db":      {BackendSQLite, "/var/lib/ironflow.db"},
		"sqlite:rel.db":                      {BackendSQLite, "rel.db"},
		"sqlite://x.db?ignored=1":            {BackendSQLite, "x.db"},
		"postgres://u@h/db?sslmode=disable":  {BackendPostgres, ""},
		"postgresql://u@h/db?sslmode=prefer": {BackendPostgres, ""},
	} {
		b, p, err := Backend(u)
		require.NoError(t, err, u)
		require.Equal(t, want, [2]string{b, p}, u)
	}
	for _, u := range []string{"", "sqlite://", "mysql://x", "data/ironflow.db"} {
		_, _, err := Backend(u)
		require.ErrorIs(t, err, ErrInvalid, u)
	}
}
