package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ironflow/ironflow/internal/apitest"
	"github.com/ironflow/ironflow/internal/engine"
	ironhttp "github.com/ironflow/ironflow/internal/http"
	"github.com/ironflow/ironflow/internal/outbox"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres"
	"github.com/ironflow/ironflow/internal/store/sqlite"
)

// benchDefinition: "start" creates an instance and emits one effect; the webhook's
// answer "done" completes it; "tick" appends an event and stays (long histories).
const benchDefinition = `{
  "description": "ironbench",
  "initial_state": "new",
  "inputs": {
    "start": {"schema": {"type": "object", "required": ["n"]}},
    "done": {},
    "tick": {}
  },
  "states": {
    "new": {"on": {"start": {"to": "waiting", "event": "Started", "effects": [{"name": "call"}]}}},
    "waiting": {"on": {"done": {"to": "finished", "event": "Finished"}, "tick": {"event": "Ticked"}}},
    "finished": {"terminal": true}
  }
}`

// ironServer is the ironflow server wired as cmd/server wires it (store, engine,
// metrics, HTTP API, effect worker), in this process so pprof sees it, listening on a
// free loopback port.
type ironServer struct {
	store  store.Store
	eng    *engine.Engine
	worker *outbox.Worker
	srv    *http.Server
	api    *apitest.Client
	raw    *rawClient // inputs, the requests the load is made of
}

// startIronflow opens the store (dsn: a postgres URL, or a SQLite file path), registers
// the bench definition and, with sinkURL set, the webhook and a running effect worker.
func startIronflow(ctx context.Context, backend, dsn, sinkURL string) (*ironServer, error) {
	var st store.Store
	var err error
	if backend == "postgres" {
		st, err = postgres.Open(ctx, dsn)
	} else {
		st, err = sqlite.Open(ctx, dsn)
	}
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	metrics := ironhttp.NewMetrics(reg)
	eng := engine.New(engine.Config{Store: st, Logger: log, ObserveDecisionFunc: metrics.ObserveDecision})
	api := ironhttp.New(ironhttp.Config{Engine: eng, Logger: log, Gatherer: reg, Metrics: metrics})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	s := &ironServer{
		store: st, eng: eng,
		srv: &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second},
		api: apitest.New("http://"+ln.Addr().String(), apitest.Options{Timeout: time.Minute, IdleConnsPerHost: 1024}),
		raw: newRawClient(ln.Addr().String(), time.Minute),
	}
	go func() { _ = s.srv.Serve(ln) }()
	if _, err := s.call(ctx, http.MethodPut, "/v1/workflow-types/bench", benchDefinition, http.StatusCreated, http.StatusOK); err != nil {
		s.close()
		return nil, fmt.Errorf("put definition: %w", err)
	}
	if sinkURL != "" {
		body := fmt.Sprintf(`{"url": %q}`, sinkURL)
		if _, err := s.call(ctx, http.MethodPut, "/v1/workflow-types/bench/webhook", body, http.StatusOK, http.StatusCreated); err != nil {
			s.close()
			return nil, fmt.Errorf("put webhook: %w", err)
		}
		w, err := outbox.New(outbox.Config{
			Store: st, Engine: eng, Logger: log, Registerer: reg,
			AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		})
		if err != nil {
			s.close()
			return nil, err
		}
		if err := w.Start(context.WithoutCancel(ctx)); err != nil {
			s.close()
			return nil, err
		}
		s.worker = w
	}
	return s, nil
}

func (s *ironServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	if s.worker != nil {
		_ = s.worker.Stop(ctx)
	}
	s.api.Close()
	s.raw.close()
	_ = s.store.Close()
}

// call sends one request and checks the status is one of want.
func (s *ironServer) call(ctx context.Context, method, path, body string, want ...int) ([]byte, error) {
	r := apitest.Request{Method: method, Path: path}
	if body != "" {
		r.Body = body
	}
	resp, err := s.api.Expect(ctx, r, want...)
	return resp.Body, err
}

// input posts one input to instance id, through the lean client.
func (s *ironServer) input(ctx context.Context, id, typ string) error {
	status, body, err := s.raw.post(ctx, "/v1/workflows/bench/"+id+"/inputs",
		[]byte(`{"type": "`+typ+`", "data": {"n": 1}}`))
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("POST input %s: status %d: %s", id, status, body)
	}
	return err
}

// seedHistory appends n "Ticked" events to instance id straight through the store, 500
// per transaction, so a 10,000-event history takes seconds to build.
func (s *ironServer) seedHistory(ctx context.Context, id string, n int) error {
	for n > 0 {
		batch := min(n, 500)
		n -= batch
		_, err := s.store.Execute(ctx, store.ExecuteParams{
			WorkflowType: "bench", WorkflowID: id,
			Decide: func(_ context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
				if cur == nil {
					return nil, errors.New("instance missing")
				}
				next := *cur
				w := &store.Write{}
				for range batch {
					next.Version++
					w.Events = append(w.Events, store.Event{
						WorkflowType: "bench", WorkflowID: id, Seq: next.Version, Type: "Ticked",
						From: cur.StateName, To: cur.StateName, Data: json.RawMessage(`{"n":1}`), InputType: "tick",
						RecordedAt: cur.UpdatedAt,
					})
				}
				w.Instance = &next
				w.Input = store.InputRecord{ID: fmt.Sprintf("seed-%s-%d", id, next.Version), WorkflowType: "bench", WorkflowID: id,
					Type: "tick", Data: json.RawMessage(`{"n":1}`), Source: store.SourceAPI, Outcome: store.OutcomeAccepted,
					Version: next.Version, Response: json.RawMessage(`{}`), CreatedAt: cur.UpdatedAt}
				return w, nil
			},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// completions returns the completion time of every completed bench instance by id.
func (s *ironServer) completions(ctx context.Context) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	cursor := ""
	for {
		q := "/v1/workflows?type=bench&status=completed&limit=500"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		b, err := s.call(ctx, http.MethodGet, q, "", http.StatusOK)
		if err != nil {
			return nil, err
		}
		var page struct {
			Items []struct {
				ID          string     `json:"id"`
				CompletedAt *time.Time `json:"completed_at"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			if it.CompletedAt != nil {
				out[it.ID] = *it.CompletedAt
			}
		}
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}
