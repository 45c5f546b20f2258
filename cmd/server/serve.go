package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ironflow/ironflow/internal/config"
	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/feed"
	ironhttp "github.com/ironflow/ironflow/internal/http"
	"github.com/ironflow/ironflow/internal/worker"
	"github.com/ironflow/ironflow/internal/workflow"
)

// HTTP server limits: a slow or hostile client cannot hold a connection or memory for
// long. Bodies (IRONFLOW_MAX_BODY_BYTES), the number of connections and their idle
// time (IRONFLOW_MAX_CONNS, IRONFLOW_MAX_CONNS_PER_CLIENT, IRONFLOW_IDLE_TIMEOUT) are
// settings.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	maxHeaderBytes    = 64 << 10

	// shutdownTimeout bounds the graceful shutdown: in-flight requests and worker
	// batches get this long to finish.
	shutdownTimeout = 30 * time.Second
)

// service is a long-running part of the server (the HTTP server, the retention, effect
// and timer workers). start launches it and returns; a fatal error later is reported through
// fail. stop finishes in-flight work, or abandons it when ctx ends. Services stop in
// the reverse order of their start.
type service struct {
	name  string
	start func(ctx context.Context, fail func(error)) error
	stop  func(ctx context.Context) error
}

// serve wires the store, engine, workers and HTTP API together and runs them until ctx
// ends.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close store", slog.Any("error", err))
		}
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		worker.NewBacklogCollector(st, nil), // both workers' backlog, one query per scrape
	)
	metrics := ironhttp.NewMetrics(reg)
	hub := feed.NewHub(st, log)
	eng := engine.New(engine.Config{
		Store:               st,
		Logger:              log,
		ObserveDecisionFunc: metrics.ObserveDecision,
		ObserveEndedFunc:    metrics.ObserveEnded,
		Limits:              workflow.Limits{MaxDataBytes: cfg.MaxDataBytes, MaxForEach: cfg.MaxForEach},
		DecisionTimeout:     cfg.DecisionTimeout,
	})
	api := ironhttp.New(ironhttp.Config{
		Engine:       eng,
		Logger:       log,
		APIKeys:      cfg.APIKeys,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Gatherer:     reg,
		Metrics:      metrics,
		RateLimit:    cfg.RateLimit,
		ReadyFunc:    st.Ping,
		Feed:         hub,
		MaxWait:      cfg.MaxWait,
		MaxStreams:   cfg.MaxStreams,
	})

	effects, err := effectService(cfg, st, eng, reg, log)
	if err != nil {
		return err
	}
	timers, err := timerService(cfg, st, eng, reg, log)
	if err != nil {
		return err
	}
	pruning, err := retentionService(cfg, st, log)
	if err != nil {
		return err
	}
	services := []service{
		// Workers (retention, effects, timers) go before the HTTP server so that they
		// stop after it: no request is left without the workers its effects need.
		pruning,
		effects,
		timers,
		// The feed hub starts before the HTTP server, whose waiting requests it wakes.
		{name: "feed", start: func(ctx context.Context, _ func(error)) error { return hub.Start(ctx) }, stop: hub.Stop},
		httpService(cfg, api, log),
	}
	return runServices(ctx, log, services)
}

// runServices starts services in order, waits for ctx to end or one to fail, and stops
// the started ones in reverse order within shutdownTimeout.
func runServices(ctx context.Context, log *slog.Logger, services []service) error {
	// Services run on a context that outlives ctx: cancelling ctx asks for a graceful
	// stop, and runCtx is cancelled only once every stop has returned.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()

	failc := make(chan error, len(services))
	var err error
	started := 0
	for _, s := range services {
		fail := func(e error) {
			select {
			case failc <- fmt.Errorf("%s: %w", s.name, e):
			default:
			}
		}
		if err = s.start(runCtx, fail); err != nil {
			err = fmt.Errorf("start %s: %w", s.name, err)
			break
		}
		started++
	}
	if err == nil {
		select {
		case <-ctx.Done():
			log.Info("shutting down", slog.String("reason", context.Cause(ctx).Error()))
		case err = <-failc:
			log.Error("service failed; shutting down", slog.Any("error", err))
		}
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	for i := started - 1; i >= 0; i-- {
		if e := services[i].stop(stopCtx); e != nil {
			log.Error("stop service", slog.String("service", services[i].name), slog.Any("error", e))
			err = errors.Join(err, fmt.Errorf("stop %s: %w", services[i].name, e))
		}
	}
	if err == nil {
		log.Info("stopped")
	}
	return err
}

// httpService listens on cfg.ListenAddr and serves h. It logs the bound address
// ("listening", addr=…), which is how tests that listen on port 0 find the server.
func httpService(cfg config.Config, h http.Handler, log *slog.Logger) service {
	limiter := ironhttp.NewConnLimiter(cfg.MaxConns, cfg.MaxConnsPerClient)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState:         limiter.ConnState,
	}
	// Event streams and long-polls never go idle by themselves: end them when the
	// shutdown starts, or it would wait for them until its timeout.
	if c, ok := h.(interface{ CloseStreams() }); ok {
		srv.RegisterOnShutdown(c.CloseStreams)
	}
	return service{
		name: "http",
		start: func(ctx context.Context, fail func(error)) error {
			var lc net.ListenConfig
			ln, err := lc.Listen(ctx, "tcp", cfg.ListenAddr)
			if err != nil {
				return err
			}
			ln = limiter.Listener(ln)
			log.Info("listening",
				slog.String("addr", ln.Addr().String()),
				slog.String("docs", "http://"+ln.Addr().String()+"/docs"),
				slog.Bool("auth", len(cfg.APIKeys) > 0))
			go func() {
				if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
					fail(err)
				}
			}()
			return nil
		},
		stop: srv.Shutdown,
	}
}
