package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/apitest"
)

// BenchmarkLongPoll measures, on PostgreSQL, what waiting costs: 1,000 clients parked
// in long-polls (GET …/{id} with If-None-Match and wait=) against an idle server, in
// database connections and memory, and how soon a long-poll answers after an input
// changes its instance (and after an event reaches the feed), with the 1,000 still
// waiting. Run it with
//
//	go test -run '^$' -bench BenchmarkLongPoll -benchtime 1x ./cmd/server/
func BenchmarkLongPoll(b *testing.B) {
	const waiters, samples = 1000, 60
	dbURL := databaseURL(b, "postgres")
	for range b.N {
		s := startServer(b, "postgres", map[string]string{"IRONFLOW_DATABASE_URL": dbURL, "IRONFLOW_MAX_WAIT": "5m",
			"IRONFLOW_MAX_CONNS": "4096", "IRONFLOW_MAX_CONNS_PER_CLIENT": "4096"})
		ctx := context.Background()
		client := apitest.New(s.URL, apitest.Options{Key: s.Key, Timeout: 5 * time.Minute, IdleConnsPerHost: 2 * waiters})
		defer client.Close()
		typ := fmt.Sprintf("lp%d", time.Now().UnixNano())
		def, err := os.ReadFile(filepath.Join("..", "..", "examples", "order.json"))
		require.NoError(b, err)
		r := client.Do(b, apitest.Request{Method: http.MethodPut, Path: "/v1/workflow-types/" + typ, Body: def})
		require.Equal(b, http.StatusCreated, r.Status, "%s", r.Body)

		conn, err := pgx.Connect(ctx, dbURL)
		require.NoError(b, err)
		defer conn.Close(ctx)
		connections := func() (total, busy int) {
			require.NoError(b, conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state <> 'idle')
FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&total, &busy))
			return total, busy
		}
		memory := func() (heap, stack uint64, goroutines int) {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapInuse, m.StackInuse, runtime.NumGoroutine()
		}

		// The same 1,000 requests without wait first: the pool grows to what 1,000
		// concurrent reads make of it, so the figures below compare like with like.
		var warm sync.WaitGroup
		for i := range waiters {
			warm.Go(func() {
				_, _ = client.Send(ctx, apitest.Request{Method: http.MethodGet, Path: fmt.Sprintf("/v1/workflows/%s/w-%d", typ, i),
					Header: map[string]string{"If-None-Match": `"0"`}})
			})
		}
		warm.Wait()
		idleConns, idleBusy := connections()
		idleHeap, idleStack, idleG := memory()

		// 1,000 clients wait for instances that do not exist yet (If-None-Match "0").
		var wg sync.WaitGroup
		answered := make(chan int, waiters)
		for i := range waiters {
			wg.Go(func() {
				r, err := client.Send(ctx, apitest.Request{Method: http.MethodGet, Path: fmt.Sprintf("/v1/workflows/%s/w-%d?wait=5m", typ, i),
					Header: map[string]string{"If-None-Match": `"0"`}})
				if err == nil {
					answered <- r.Status
				}
			})
		}
		time.Sleep(3 * time.Second) // every request is parked
		require.Empty(b, answered, "no long-poll answered yet")
		waitConns, waitBusy := connections()
		waitHeap, waitStack, waitG := memory()

		// Latency with the 1,000 still waiting: a long-poll on a fresh instance, then
		// the input that creates it.
		var pollAfterInput, inputRTT, feedAfterInput []time.Duration
		for i := range samples {
			id := fmt.Sprint("lat-", i)
			gotPoll, gotFeed := make(chan time.Time, 1), make(chan time.Time, 1)
			go func() {
				r, err := client.Send(ctx, apitest.Request{Method: http.MethodGet, Path: "/v1/workflows/" + typ + "/" + id + "?wait=30s",
					Header: map[string]string{"If-None-Match": `"0"`}})
				if err == nil && r.Status == http.StatusOK {
					gotPoll <- time.Now()
				}
			}()
			feedPos := feedItemsB(b, client.Get(b, "/v1/events?after=now&workflow_type="+typ))
			go func() {
				r, err := client.Send(ctx, apitest.Request{Method: http.MethodGet, Path: "/v1/events?wait=30s&workflow_type=" + typ + "&after=" + url.QueryEscape(feedPos)})
				if err == nil && r.Status == http.StatusOK {
					gotFeed <- time.Now()
				}
			}()
			time.Sleep(50 * time.Millisecond) // both are parked
			t0 := time.Now()
			r := client.Do(b, apitest.Request{Method: http.MethodPost, Path: "/v1/workflows/" + typ + "/" + id + "/inputs", Body: place(1, id)})
			rtt := time.Since(t0)
			require.Equal(b, http.StatusOK, r.Status, "%s", r.Body)
			inputRTT = append(inputRTT, rtt)
			pollAfterInput = append(pollAfterInput, (<-gotPoll).Sub(t0))
			feedAfterInput = append(feedAfterInput, (<-gotFeed).Sub(t0))
		}
		require.Empty(b, answered, "the 1,000 waiters were not woken by other instances' inputs")

		// Shutdown answers every waiter (304) at once.
		t0 := time.Now()
		s.stop()
		wg.Wait()
		shutdown := time.Since(t0)
		close(answered)
		n := 0
		for status := range answered {
			require.Equal(b, http.StatusNotModified, status)
			n++
		}
		require.Equal(b, waiters, n)

		median := func(ds []time.Duration) float64 {
			s := slices.Clone(ds)
			slices.Sort(s)
			return float64(s[len(s)/2].Microseconds()) / 1000
		}
		p95 := func(ds []time.Duration) float64 {
			s := slices.Clone(ds)
			slices.Sort(s)
			return float64(s[len(s)*95/100].Microseconds()) / 1000
		}
		b.ReportMetric(median(inputRTT), "ms-input-rtt-median")
		b.ReportMetric(median(pollAfterInput), "ms-instance-longpoll-median")
		b.ReportMetric(p95(pollAfterInput), "ms-instance-longpoll-p95")
		b.ReportMetric(median(feedAfterInput), "ms-feed-longpoll-median")
		b.ReportMetric(p95(feedAfterInput), "ms-feed-longpoll-p95")
		b.ReportMetric(float64(idleConns), "db-conns-idle")
		b.ReportMetric(float64(waitConns), "db-conns-1000-waiting")
		b.ReportMetric(float64(waitBusy-idleBusy), "db-conns-busy-delta")
		b.ReportMetric(float64(int64(waitHeap+waitStack)-int64(idleHeap+idleStack))/waiters/1024, "KiB/waiter")
		b.ReportMetric(float64(waitG-idleG)/waiters, "goroutines/waiter")
		b.ReportMetric(float64(shutdown.Milliseconds()), "ms-shutdown-with-1000-waiting")
		b.Logf("idle: %d connections, heap %d KiB, stack %d KiB, %d goroutines", idleConns, idleHeap>>10, idleStack>>10, idleG)
		b.Logf("1000 waiting: %d connections (%d busy), heap %d KiB, stack %d KiB, %d goroutines", waitConns, waitBusy, waitHeap>>10, waitStack>>10, waitG)
	}
}

// feedItemsB returns the next_cursor of a GET /v1/events answer.
func feedItemsB(b *testing.B, r response) string {
	require.Equal(b, http.StatusOK, r.Status, "%s", r.Body)
	next, _ := r.JSON(b)["next_cursor"].(string)
	require.NotEmpty(b, next)
	return next
}
