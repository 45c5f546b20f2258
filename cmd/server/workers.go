package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ironflow/ironflow/internal/config"
	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/outbox"
	"github.com/ironflow/ironflow/internal/retention"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/timer"
)

// effectService runs the outbox worker that delivers effects as webhooks.
func effectService(cfg config.Config, st store.Store, eng *engine.Engine, reg prometheus.Registerer, log *slog.Logger) (service, error) {
	w, err := outbox.New(outbox.Config{
		Store:                st,
		Engine:               eng,
		Timeout:              cfg.WebhookTimeout,
		AllowNets:            cfg.WebhookAllowNets,
		MaxAttempts:          cfg.MaxAttempts,
		RetryInitialInterval: cfg.RetryInitialInterval,
		RetryMaxInterval:     cfg.RetryMaxInterval,
		Concurrency:          cfg.EffectConcurrency,
		ConcurrencyPerType:   cfg.EffectConcurrencyPerType,
		MaxChainDepth:        cfg.MaxChainDepth,
		Logger:               log,
		Registerer:           reg,
	})
	if err != nil {
		return service{}, fmt.Errorf("effect worker: %w", err)
	}
	return service{
		name:  "effects",
		start: func(ctx context.Context, _ func(error)) error { return w.Start(ctx) },
		stop:  w.Stop,
	}, nil
}

// timerService runs the worker that fires durable timers.
func timerService(cfg config.Config, st store.Store, eng *engine.Engine, reg prometheus.Registerer, log *slog.Logger) (service, error) {
	w, err := timer.New(timer.Config{
		Store:                st,
		Engine:               eng,
		MaxAttempts:          cfg.MaxAttempts,
		RetryInitialInterval: cfg.RetryInitialInterval,
		RetryMaxInterval:     cfg.RetryMaxInterval,
		Concurrency:          cfg.TimerConcurrency,
		// One lease rule for both workers (DESIGN §4): three webhook timeouts, so a
		// dead process's claims are taken over within half a minute by default.
		Lease:      3 * cfg.WebhookTimeout,
		Logger:     log,
		Registerer: reg,
	})
	if err != nil {
		return service{}, fmt.Errorf("timer worker: %w", err)
	}
	return service{
		name:  "timers",
		start: func(ctx context.Context, _ func(error)) error { return w.Start(ctx) },
		stop:  w.Stop,
	}, nil
}

// retentionService runs the worker that prunes what is older than cfg.Retention.
func retentionService(cfg config.Config, st store.Store, log *slog.Logger) (service, error) {
	w, err := retention.New(retention.Config{Store: st, Retention: cfg.Retention, Logger: log})
	if err != nil {
		return service{}, fmt.Errorf("retention worker: %w", err)
	}
	return service{
		name:  "retention",
		start: func(ctx context.Context, _ func(error)) error { return w.Start(ctx) },
		stop:  w.Stop,
	}, nil
}
