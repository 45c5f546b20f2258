package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tickDefinition is the load tests' workflow: every tick is accepted and appends one
// event; with effects it emits one "notify" effect, whose receiver's answer is routed
// back as an "ack" (one event, nothing emitted); with timerAfter it (re)schedules the
// timer "exp", whose firing is an "expire" input (one event).
func tickDefinition(effects bool, timerAfter ...string) string {
	eff := ""
	if effects {
		eff = `,"effects":[{"name":"notify","payload":"{'n': input.data.n}"}]`
	}
	if len(timerAfter) > 0 {
		eff += `,"timers":[{"key":"exp","after":"` + timerAfter[0] + `","input":{"type":"expire"}}]`
	}
	return `{"initial_state":"s","inputs":{"tick":{},"ack":{},"expire":{}},"states":{"s":{"on":{
  "tick":{"to":"s","event":"Ticked"` + eff + `},
  "ack":{"to":"s","event":"Acked","data":"{}"},
  "expire":{"to":"s","event":"Expired","data":"{}"}}}}}`
}

// loadStats are the figures of one load run.
type loadStats struct {
	mu sync.Mutex
	// acked maps instance id → the idempotency keys answered 200, in order.
	acked map[string][]string

	sent         atomic.Int64 // requests sent, resends included
	accepted     atomic.Int64 // distinct keys answered 200
	replayed     atomic.Int64 // 200s with Idempotent-Replayed: true
	unavailable  atomic.Int64 // 503 answers
	serverErrors atomic.Int64 // other 5xx answers (must stay 0)
	transport    atomic.Int64 // connection refused/reset, timeouts
	resent       atomic.Int64 // requests sent again with the same key
	maxLatency   atomic.Int64 // nanoseconds
}

func (s *loadStats) String() string {
	return fmt.Sprintf("requests=%d accepted=%d replayed=%d resent=%d 503=%d other5xx=%d transport_errors=%d max_latency=%s",
		s.sent.Load(), s.accepted.Load(), s.replayed.Load(), s.resent.Load(), s.unavailable.Load(),
		s.serverErrors.Load(), s.transport.Load(), time.Duration(s.maxLatency.Load()).Round(time.Millisecond))
}

// loadOpts configure runLoad.
type loadOpts struct {
	typ       string
	clients   int
	instances int // per client, round robin (1 when 0)
	// bases returns the server URLs a request may go to; one is chosen at random.
	bases func() []string
	// pause between a client's requests.
	pause time.Duration
	// timeout of one request.
	timeout time.Duration
	// prefix keeps the instance ids of several runs apart.
	prefix string
}

// runLoad sends tick inputs with idempotency keys from o.clients goroutines until ctx
// ends, then drains: every client resends its unanswered key (same key, same body) until
// it is answered 200 or drainTimeout passes. A client sends its inputs in order and
// resends a key until it is answered, so nothing is skipped.
func runLoad(ctx context.Context, t *testing.T, o loadOpts, drainTimeout time.Duration) *loadStats {
	t.Helper()
	if o.instances == 0 {
		o.instances = 1
	}
	if o.timeout == 0 {
		o.timeout = 15 * time.Second
	}
	st := &loadStats{acked: map[string][]string{}}
	var wg sync.WaitGroup
	var failures sync.Map
	for ci := range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient("", o.timeout)
			defer c.Close()
			drainCtx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				<-ctx.Done()
				time.AfterFunc(drainTimeout, cancel)
			}()
			n := 0
			pendingKey := ""
			for {
				if ctx.Err() != nil && pendingKey == "" {
					return
				}
				if drainCtx.Err() != nil {
					failures.Store(fmt.Sprintf("client %d", ci), "unanswered key "+pendingKey+" after the drain timeout")
					return
				}
				inst := fmt.Sprintf("%sc%d-i%d", o.prefix, ci, n%o.instances)
				key := pendingKey
				if key == "" {
					key = fmt.Sprintf("%sc%d-k%d", o.prefix, ci, n)
				} else {
					st.resent.Add(1)
				}
				bases := o.bases()
				c.BaseURL = bases[rand.IntN(len(bases))]
				start := time.Now()
				rctx, rcancel := context.WithTimeout(drainCtx, o.timeout)
				resp, err := c.Send(rctx, request{Method: http.MethodPost, Path: "/v1/workflows/" + o.typ + "/" + inst + "/inputs",
					Body:   fmt.Sprintf(`{"type":"tick","data":{"n":%d}}`, n),
					Header: map[string]string{"Idempotency-Key": key}})
				rcancel()
				lat := time.Since(start)
				for {
					cur := st.maxLatency.Load()
					if int64(lat) <= cur || st.maxLatency.CompareAndSwap(cur, int64(lat)) {
						break
					}
				}
				st.sent.Add(1)
				switch {
				case err != nil:
					if drainCtx.Err() == nil {
						st.transport.Add(1)
					}
					pendingKey = key
					time.Sleep(50 * time.Millisecond)
					continue
				case resp.Status == http.StatusOK:
					if resp.Header.Get("Idempotent-Replayed") == "true" {
						st.replayed.Add(1)
					}
					st.accepted.Add(1)
					st.mu.Lock()
					st.acked[inst] = append(st.acked[inst], key)
					st.mu.Unlock()
					pendingKey = ""
					n++
				case resp.Status == http.StatusServiceUnavailable:
					st.unavailable.Add(1)
					pendingKey = key
					time.Sleep(50 * time.Millisecond)
					continue
				case resp.Status >= 500:
					st.serverErrors.Add(1)
					failures.Store(fmt.Sprintf("client %d 5xx", ci), fmt.Sprintf("%d: %.300s", resp.Status, resp.Body))
					pendingKey = key
					time.Sleep(50 * time.Millisecond)
					continue
				default:
					failures.Store(fmt.Sprintf("client %d", ci), fmt.Sprintf("unexpected %d: %.300s", resp.Status, resp.Body))
					return
				}
				if o.pause > 0 {
					time.Sleep(o.pause)
				}
			}
		}()
	}
	wg.Wait()
	failures.Range(func(k, v any) bool {
		t.Errorf("load: %s: %s", k, v)
		return true
	})
	return st
}

// historyCheck are the figures verifyHistory found.
type historyCheck struct {
	instances  int
	events     int
	apiInputs  int
	routed     int
	fired      int // inputs from timers
	duplicates int // inputs recorded twice for one key (must be 0)
}

// verifyHistory checks every instance the load touched: each key answered 200 is an
// accepted input of that instance, exactly once; the events are 1..version without a
// gap; every accepted input made exactly one event.
func verifyHistory(t *testing.T, c *apiClient, typ string, st *loadStats) historyCheck {
	t.Helper()
	var hc historyCheck
	st.mu.Lock()
	defer st.mu.Unlock()
	ids := make([]string, 0, len(st.acked))
	for id := range st.acked {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		hc.instances++
		inputs := c.ListAll(t, "/v1/workflows/"+typ+"/"+id+"/inputs")
		byKey := map[string]int{}
		accepted := 0
		for _, in := range inputs {
			k, _ := in["idempotency_key"].(string)
			byKey[k]++
			if in["outcome"] == "accepted" {
				accepted++
			}
			switch in["source"] {
			case "api":
				hc.apiInputs++
			case "effect":
				hc.routed++
			case "timer":
				hc.fired++
			}
		}
		for k, n := range byKey {
			if k != "" && n > 1 {
				hc.duplicates += n - 1
				t.Errorf("%s: key %s recorded %d times", id, k, n)
			}
		}
		for _, k := range st.acked[id] {
			require.Equal(t, 1, byKey[k], "%s: key %s was answered 200 but is in the history %d times", id, k, byKey[k])
		}
		wf := c.Get(t, "/v1/workflows/"+typ+"/"+id)
		require.Equal(t, http.StatusOK, wf.Status, "%s", wf.Body)
		version := int64(wf.JSON(t)["version"].(float64))
		events := listEvents(t, c, typ, id)
		require.Len(t, events, int(version), "%s: version %d but %d events", id, version, len(events))
		for i, ev := range events {
			require.EqualValues(t, i+1, ev["seq"], "%s: seq gap at %d", id, i+1)
		}
		require.Equal(t, accepted, len(events), "%s: %d accepted inputs but %d events", id, accepted, len(events))
		hc.events += len(events)
	}
	return hc
}

// listEvents pages an instance's history with after=.
func listEvents(t *testing.T, c *apiClient, typ, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	after := 0
	for {
		r := c.Get(t, fmt.Sprintf("/v1/workflows/%s/%s/events?limit=500&after=%d", typ, id, after))
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		var page struct {
			Items []map[string]any `json:"items"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &page))
		out = append(out, page.Items...)
		if len(page.Items) < 500 {
			return out
		}
		after = int(page.Items[len(page.Items)-1]["seq"].(float64))
	}
}

// readyProbe polls /readyz and records what it saw.
type readyProbe struct {
	mu       sync.Mutex
	statuses []int // distinct consecutive statuses (0: no answer)
	maxWait  time.Duration
	stop     chan struct{}
	done     chan struct{}
}

func startReadyProbe(base string) *readyProbe {
	p := &readyProbe{stop: make(chan struct{}), done: make(chan struct{})}
	c := newClient(base, 10*time.Second)
	go func() {
		defer close(p.done)
		defer c.Close()
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			start := time.Now()
			resp, err := c.Send(context.Background(), request{Method: http.MethodGet, Path: "/readyz", NoAuth: true})
			d := time.Since(start)
			status := resp.Status
			if err != nil {
				status = 0
			}
			p.mu.Lock()
			if d > p.maxWait {
				p.maxWait = d
			}
			if len(p.statuses) == 0 || p.statuses[len(p.statuses)-1] != status {
				p.statuses = append(p.statuses, status)
			}
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *readyProbe) finish() (statuses []int, maxWait time.Duration) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.statuses, p.maxWait
}
