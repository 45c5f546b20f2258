// Command server runs ironflow: `server` (or `server serve`) serves the HTTP API,
// `server migrate` applies the database migrations and exits. `server -help` lists the
// flags; each mirrors an IRONFLOW_* environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ironflow/ironflow/internal/config"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres"
	"github.com/ironflow/ironflow/internal/store/sqlite"
)

func main() {
	config.TuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts the graceful shutdown, a second one kills the
		// process the default way.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ironflow:", err)
		os.Exit(1)
	}
}

// run is the whole program: main only adds the process's signals, arguments,
// environment and stdout, so that tests can start real servers in-process. It returns
// when ctx ends (after a graceful shutdown) or on a fatal error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)
	switch cfg.Command {
	case config.CommandMigrate:
		return migrate(ctx, cfg, log)
	default:
		return serve(ctx, cfg, log)
	}
}

// newLogger logs to w: text for people, JSON for log pipelines.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// migrate applies the migrations of the configured database.
func migrate(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	backend, path, err := config.Backend(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	switch backend {
	case config.BackendSQLite:
		err = sqlite.Migrate(ctx, path)
	default:
		err = postgres.Migrate(ctx, cfg.DatabaseURL)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	log.Info("migrations applied", slog.String("backend", backend))
	return nil
}

// openStore opens (and migrates) the configured database.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store.Store, error) {
	backend, path, err := config.Backend(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	switch backend {
	case config.BackendSQLite:
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		log.Info("store opened", slog.String("backend", backend), slog.String("path", path))
		return st, nil
	default:
		st, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		log.Info("store opened", slog.String("backend", backend))
		return st, nil
	}
}
