package reliability

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// soakDefinition: each instance ticks a few times (an effect routed back as an ack and a
// timer per tick) and then stops in a terminal state, so retention can prune what the
// completed instances leave behind.
const soakDefinition = `{"initial_state":"s","inputs":{"tick":{},"ack":{},"expire":{},"stop":{}},"states":{
  "s":{"on":{
    "tick":{"to":"s","event":"Ticked","effects":[{"name":"notify","payload":"{'n': input.data.n}"}],
            "timers":[{"key":"exp","after":"1s","input":{"type":"expire"}}]},
    "ack":{"to":"s","event":"Acked","data":"{}"},
    "expire":{"to":"s","event":"Expired","data":"{}"},
    "stop":{"to":"done","event":"Stopped","data":"{}"}}},
  "done":{"terminal":true}}}`

// soakSample is one reading of the server's vital signs.
type soakSample struct {
	at         time.Duration
	goroutines float64
	heapInuse  float64
	rss        float64
	openFDs    float64
	dbConns    int64
	rows       map[string]int64
	dbBytes    int64
	sent       int64
}

// TestSoak drives a server at a steady rate for IRONFLOW_SOAK_DURATION (make soak:
// DURATION, default 30m; RATE inputs per second, default 50) with effects routed back,
// timers and a short retention (an eighth of the run, 10 s to 1 min), sampling memory, goroutines, open files, database
// connections and table sizes. Nothing may grow without bound: the last quarter's
// figures stay within a margin of the second quarter's, except the history (instances
// and events), which is kept forever by design. Not part of make test.
func TestSoak(t *testing.T) {
	durText := os.Getenv("IRONFLOW_SOAK_DURATION")
	if durText == "" {
		t.Skip("set IRONFLOW_SOAK_DURATION (make soak) to run the soak test")
	}
	duration, err := time.ParseDuration(durText)
	require.NoError(t, err)
	rate := 50
	if r := os.Getenv("IRONFLOW_SOAK_RATE"); r != "" {
		rate, err = strconv.Atoi(r)
		require.NoError(t, err)
	}
	backend := os.Getenv("IRONFLOW_SOAK_BACKEND")
	if backend == "" {
		backend = "postgres"
	}
	dbURL := newDatabaseURL(t, backend)
	rcv := startReceiver(t)
	// Short enough that what retention keeps levels off early in the run.
	retention := min(max(duration/8, 10*time.Second), time.Minute)
	srv := startServer(t, dbURL, map[string]string{
		"IRONFLOW_RETENTION":       retention.String(),
		"IRONFLOW_WEBHOOK_TIMEOUT": "2s",
		"IRONFLOW_LOG_LEVEL":       "warn",
	})
	c := newClient(srv.URL, 30*time.Second)
	defer c.Close()
	c.putDefinition(t, "soak", soakDefinition)
	c.putWebhook(t, "soak", rcv.URL)

	interval := min(max(duration/30, 2*time.Second), 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()

	// Drivers: instance k gets ticks 0..3, then stop; a new instance follows.
	jobs := make(chan int64, 4*rate)
	var sent, skipped, non2xx, conflicts, failed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dc := newClient(srv.URL, 30*time.Second)
			defer dc.Close()
			for n := range jobs {
				inst, step := n/5, n%5
				typ := "tick"
				if step == 4 {
					typ = "stop"
				}
				resp, err := dc.Send(context.Background(), request{Method: http.MethodPost,
					Path:   fmt.Sprintf("/v1/workflows/soak/s-%d/inputs", inst),
					Body:   fmt.Sprintf(`{"type":%q,"data":{"n":%d}}`, typ, step),
					Header: map[string]string{"Idempotency-Key": fmt.Sprintf("k-%d", n)}})
				sent.Add(1)
				switch {
				case err != nil:
					failed.Add(1)
				case resp.Status == http.StatusConflict:
					conflicts.Add(1) // an input overtook an earlier one of its instance
				case resp.Status != http.StatusOK:
					non2xx.Add(1)
				}
			}
		}()
	}
	// Five consecutive inputs of one instance go to different drivers: spread them so
	// each instance receives its inputs in order (a stop before a tick is a 409).
	go func() {
		defer close(jobs)
		tk := time.NewTicker(time.Second / time.Duration(rate))
		defer tk.Stop()
		var n int64
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			// Instance-major order would put an instance's inputs in flight together;
			// interleave 64 instances instead.
			block, off := n/(64*5), n%(64*5)
			job := block*64*5 + (off%64)*5 + off/64
			select {
			case jobs <- job:
			default:
				skipped.Add(1)
			}
			n++
		}
	}()

	var samples []soakSample
	start := time.Now()
	sample := func() {
		s := soakSample{at: time.Since(start).Round(time.Second), rows: map[string]int64{}, sent: sent.Load()}
		m := scrapeMetrics(t, c)
		s.goroutines, s.heapInuse, s.rss, s.openFDs = m["go_goroutines"], m["go_memstats_heap_inuse_bytes"], m["process_resident_memory_bytes"], m["process_open_fds"]
		s.rows = tableCounts(t, dbURL)
		if backend == "postgres" {
			s.dbConns = queryInt(t, dbURL, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()") - 1
			s.dbBytes = queryInt(t, dbURL, "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")
		} else {
			for _, suffix := range []string{"", "-wal"} {
				if fi, err := os.Stat(filepath.Clean(strings.TrimPrefix(dbURL, "sqlite://")) + suffix); err == nil {
					s.dbBytes += fi.Size()
				}
			}
		}
		samples = append(samples, s)
		t.Logf("t=%-6s sent=%-7d goroutines=%-5.0f heap=%6.1fMiB rss=%6.1fMiB fds=%-4.0f db_conns=%-3d db=%7.1fMiB instances=%d events=%d inputs=%d effects=%d attempts=%d timers=%d",
			s.at, s.sent, s.goroutines, s.heapInuse/(1<<20), s.rss/(1<<20), s.openFDs, s.dbConns, float64(s.dbBytes)/(1<<20),
			s.rows["instances"], s.rows["events"], s.rows["inputs"], s.rows["effects"], s.rows["effect_attempts"], s.rows["timers"])
	}
	sample()
	tk := time.NewTicker(interval)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tk.C:
			sample()
		}
	}
	tk.Stop()
	wg.Wait()
	sample()

	t.Logf("soak (%s, %s, %d/s, retention %s): sent=%d skipped=%d conflicts=%d other_non_200=%d transport_errors=%d deliveries=%d",
		backend, duration, rate, retention, sent.Load(), skipped.Load(), conflicts.Load(), non2xx.Load(), failed.Load(), len(rcv.log()))
	require.Zero(t, failed.Load(), "every request answered")
	require.Zero(t, non2xx.Load(), "every input accepted (or, overtaken, already completed)")
	errs, panics := srv.logCounts()
	require.Zero(t, panics)
	require.Zero(t, errs, "no error logged")

	// Bounded: compare the mean of the last quarter with that of the second quarter.
	if len(samples) >= 8 {
		q := len(samples) / 4
		mean := func(from, to int, f func(soakSample) float64) float64 {
			var sum float64
			for _, s := range samples[from:to] {
				sum += f(s)
			}
			return sum / float64(to-from)
		}
		for _, m := range []struct {
			name  string
			f     func(soakSample) float64
			slack float64
		}{
			{"goroutines", func(s soakSample) float64 { return s.goroutines }, 50},
			{"heap in use", func(s soakSample) float64 { return s.heapInuse }, 32 << 20},
			{"open files", func(s soakSample) float64 { return s.openFDs }, 20},
			{"database connections", func(s soakSample) float64 { return float64(s.dbConns) }, 5},
			{"effect and timer rows", func(s soakSample) float64 { return float64(s.rows["effects"] + s.rows["timers"]) }, float64(10 * rate)},
			{"inputs", func(s soakSample) float64 { return float64(s.rows["inputs"]) }, float64(70 * rate)},
		} {
			early, late := mean(q, 2*q, m.f), mean(len(samples)-q, len(samples), m.f)
			require.LessOrEqualf(t, late, early*1.5+m.slack, "%s grew from %.0f to %.0f", m.name, early, late)
		}
	}
}

// scrapeMetrics reads the server's Prometheus metrics into name → value (unlabelled
// series only).
func scrapeMetrics(t *testing.T, c *apiClient) map[string]float64 {
	t.Helper()
	r := c.Get(t, "/metrics")
	require.Equal(t, http.StatusOK, r.Status)
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.Contains(line, "{") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out
}
