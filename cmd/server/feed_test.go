package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var reserved = map[string]any{"type": "reserved"}

// feedItems decodes a GET /v1/events answer: "type/id/seq" per item, and next_cursor.
func feedItems(t *testing.T, r response) ([]string, string) {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	b := r.JSON(t)
	var keys []string
	for _, it := range b["items"].([]any) {
		m := it.(map[string]any)
		require.NotEmpty(t, m["cursor"])
		require.NotEmpty(t, m["type"])
		keys = append(keys, fmt.Sprintf("%s/%s/%v", m["workflow_type"], m["workflow_id"], m["seq"]))
	}
	next, _ := b["next_cursor"].(string)
	require.NotEmpty(t, next, "next_cursor is always set: %s", r.Body)
	return keys, next
}

func TestFeed(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, backend, map[string]string{"IRONFLOW_MAX_STREAMS": "2"})
			s.defineOrder(t, "order")
			s.defineOrder(t, "other")
			s.defineOrder(t, "streamed")
			s.defineOrder(t, "polled")
			for name, test := range map[string]func(*testing.T, *testServer){
				"Pages":         testFeedPages,
				"LongPoll":      testFeedLongPoll,
				"EventsWait":    testEventsWait,
				"IfNoneMatch":   testIfNoneMatch,
				"StreamLimit":   testStreamLimit,
				"StreamFilters": testStreamFilters,
			} {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					test(t, s)
				})
			}
		})
	}
}

func testFeedPages(t *testing.T, s *testServer) {
	_, start := feedItems(t, s.get(t, "/v1/events?after=now"))
	require.Equal(t, http.StatusOK, s.input(t, "other", "pages-1", place(1, "pages-1"), nil).Status)
	require.Equal(t, http.StatusOK, s.input(t, "other", "pages-1", reserved, nil).Status)
	require.Equal(t, http.StatusOK, s.input(t, "other", "pages-2", place(1, "pages-2"), nil).Status)

	var all []string
	after := start
	// On PostgreSQL a page can be empty for a moment: an event is returned once every
	// transaction older than its own has ended, those of the tests beside this one too,
	// and of every other process using the PostgreSQL server: it may take a while.
	for deadline := time.Now().Add(time.Minute); len(all) < 3 && time.Now().Before(deadline); {
		keys, next := feedItems(t, s.get(t, "/v1/events?workflow_type=other&limit=1&after="+url.QueryEscape(after)))
		all = append(all, keys...)
		after = next
	}
	keys, _ := feedItems(t, s.get(t, "/v1/events?workflow_type=other&after="+url.QueryEscape(after)))
	all = append(all, keys...)
	// Other tests on this server write orders meanwhile; the filter keeps them out.
	require.Equal(t, []string{"other/pages-1/1", "other/pages-1/2", "other/pages-2/1"}, all)

	requireProblem(t, s.get(t, "/v1/events?after=bogus"), http.StatusBadRequest, "invalid_cursor")
	requireProblem(t, s.get(t, "/v1/events?wait=soon"), http.StatusBadRequest, "malformed_request")
	requireProblem(t, s.get(t, "/v1/events?limit=501"), http.StatusBadRequest, "invalid_argument")
}

// testFeedLongPoll: a wait on the end of the feed returns as soon as an event arrives.
// On PostgreSQL an event arrives in the feed once every older transaction on the
// server has ended, other processes' too, so "as soon as" is counted from when a read
// without wait first returns it.
func testFeedLongPoll(t *testing.T, s *testServer) {
	_, start := feedItems(t, s.get(t, "/v1/events?workflow_type=polled&after=now"))
	got := make(chan response, 1)
	var returned time.Time
	go func() {
		r := s.get(t, "/v1/events?workflow_type=polled&wait=20s&after="+url.QueryEscape(start))
		returned = time.Now()
		got <- r
	}()
	time.Sleep(300 * time.Millisecond) // the request is waiting
	require.Equal(t, http.StatusOK, s.input(t, "polled", "poll-1", place(1, "poll-1"), nil).Status)
	var readable time.Time
	for deadline := time.Now().Add(feedWait); readable.IsZero(); time.Sleep(10 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the event never reached the feed")
		if keys, _ := feedItems(t, s.get(t, "/v1/events?workflow_type=polled&after="+url.QueryEscape(start))); len(keys) > 0 {
			readable = time.Now()
		}
	}
	var r response
	select {
	case r = <-got:
	case <-time.After(time.Minute):
		t.Fatal("the long poll never answered")
	}
	keys, _ := feedItems(t, r)
	if len(keys) == 0 {
		// Held back for the whole wait: the wait may end empty only if the event was
		// not readable yet when it did.
		require.True(t, returned.Before(readable), "the wait ended empty %s after the event was readable", returned.Sub(readable))
	} else {
		require.Equal(t, []string{"polled/poll-1/1"}, keys)
		require.Less(t, returned.Sub(readable), 10*time.Second, "the wait ends once the event is readable")
	}

	// A wait with nothing arriving ends with an empty page and the same position.
	_, end := feedItems(t, s.get(t, "/v1/events?workflow_type=nothing&after=now"))
	t0 := time.Now()
	keys, next := feedItems(t, s.get(t, "/v1/events?workflow_type=nothing&wait=300ms&after="+url.QueryEscape(end)))
	require.Empty(t, keys)
	require.NotEmpty(t, next)
	require.GreaterOrEqual(t, time.Since(t0), 300*time.Millisecond)
}

func testEventsWait(t *testing.T, s *testServer) {
	require.Equal(t, http.StatusOK, s.input(t, "order", "ew-1", place(5, "ew-1"), nil).Status)
	got := make(chan response, 1)
	go func() { got <- s.get(t, "/v1/workflows/order/ew-1/events?after=1&wait=20s") }()
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, http.StatusOK, s.input(t, "order", "ew-1", reserved, nil).Status)
	r := <-got
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	items := r.JSON(t)["items"].([]any)
	require.Len(t, items, 1)
	require.Equal(t, "StockReserved", items[0].(map[string]any)["type"])

	// Nothing more: an empty page once the wait is over.
	r = s.get(t, "/v1/workflows/order/ew-1/events?after=2&wait=200ms")
	require.Equal(t, http.StatusOK, r.Status)
	require.Empty(t, r.JSON(t)["items"])
	requireProblem(t, s.get(t, "/v1/workflows/order/nope/events?wait=1s"), http.StatusNotFound, "workflow_not_found")
}

func testIfNoneMatch(t *testing.T, s *testServer) {
	require.Equal(t, http.StatusOK, s.input(t, "order", "inm-1", place(5, "inm-1"), nil).Status)
	get := func(query, etag string) response {
		return s.do(t, req{Method: http.MethodGet, Path: "/v1/workflows/order/inm-1" + query, Header: map[string]string{"If-None-Match": etag}})
	}
	r := get("", `"1"`)
	require.Equal(t, http.StatusNotModified, r.Status)
	require.Equal(t, `"1"`, r.Header.Get("ETag"))
	require.Empty(t, r.Body)
	require.Equal(t, http.StatusOK, get("", `"0"`).Status)
	require.Equal(t, http.StatusNotModified, get("", `W/"7", "1"`).Status)
	require.Equal(t, http.StatusNotModified, get("", `*`).Status)
	requireProblem(t, get("", `1`), http.StatusBadRequest, "malformed_request")

	// With wait: held until the version changes.
	got := make(chan response, 1)
	go func() { got <- get("?wait=20s", `"1"`) }()
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, http.StatusOK, s.input(t, "order", "inm-1", reserved, nil).Status)
	r = <-got
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, `"2"`, r.Header.Get("ETag"))
	require.EqualValues(t, 2, r.JSON(t)["version"])

	// Unchanged until the wait is over: 304.
	t0 := time.Now()
	require.Equal(t, http.StatusNotModified, get("?wait=300ms", `"2"`).Status)
	require.GreaterOrEqual(t, time.Since(t0), 300*time.Millisecond)

	// "0" with wait waits for the instance to be created.
	go func() {
		got <- s.do(t, req{Method: http.MethodGet, Path: "/v1/workflows/order/inm-new?wait=20s", Header: map[string]string{"If-None-Match": `"0"`}})
	}()
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, http.StatusOK, s.input(t, "order", "inm-new", place(5, "inm-new"), nil).Status)
	r = <-got
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, `"1"`, r.Header.Get("ETag"))
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ id, event, data string }

// sseStream is an open GET /v1/events/stream.
type sseStream struct {
	resp   *http.Response
	cancel context.CancelFunc
	events chan sseEvent
	pings  chan struct{}
}

// openStream opens the event stream at path with header and reads it in the
// background until closed.
func (s *testServer) openStream(t *testing.T, path string, header map[string]string) (*sseStream, response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	require.NoError(t, err)
	hr.Header.Set("Authorization", "Bearer "+s.Key)
	for k, v := range header {
		hr.Header.Set(k, v)
	}
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	resp, err := (&http.Client{Transport: transport}).Do(hr) // no overall timeout

	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		defer cancel()
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		return nil, response{Status: resp.StatusCode, Header: resp.Header, Body: []byte(b.String())}
	}
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	st := &sseStream{resp: resp, cancel: cancel, events: make(chan sseEvent, 1000), pings: make(chan struct{}, 100)}
	go func() {
		defer close(st.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 2<<20) // an event's data may be 256 KiB
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" {
					st.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				select {
				case st.pings <- struct{}{}:
				default:
				}
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	t.Cleanup(st.close)
	return st, response{Status: resp.StatusCode, Header: resp.Header}
}

func (st *sseStream) close() {
	st.cancel()
	_ = st.resp.Body.Close()
}

// feedWait is how long a test waits for an event of the feed. On PostgreSQL an event is
// readable once every transaction older than its own has ended, on the whole server:
// another process's transaction holds it back as long as it runs. A wait ends as soon
// as the event arrives, so only a feed that never delivers it waits this long.
const feedWait = time.Minute

// next returns the next event, failing after timeout.
func (st *sseStream) next(t *testing.T, timeout time.Duration) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-st.events:
		require.True(t, ok, "the stream ended")
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %s", timeout)
	}
	return sseEvent{}
}

func testStreamLimit(t *testing.T, s *testServer) {
	// IRONFLOW_MAX_STREAMS=2 on this server, and StreamFilters may hold one with the
	// same key: use the second key, which no other test streams with.
	k2 := *s
	k2.Key = "test-key-2"
	a, _ := k2.openStream(t, "/v1/events/stream?after=now", nil)
	b, _ := k2.openStream(t, "/v1/events/stream?after=now", nil)
	_, r := k2.openStream(t, "/v1/events/stream?after=now", nil)
	requireProblem(t, r, http.StatusTooManyRequests, "rate_limited")
	a.close()
	require.Eventually(t, func() bool {
		c, r := k2.openStream(t, "/v1/events/stream?after=now", nil)
		if c != nil {
			c.close()
		}
		return r.Status == http.StatusOK
	}, 5*time.Second, 50*time.Millisecond, "a closed stream frees its slot")
	b.close()
	_, r = s.openStream(t, "/v1/events/stream?after=bogus", nil)
	requireProblem(t, r, http.StatusBadRequest, "invalid_cursor")
}

func testStreamFilters(t *testing.T, s *testServer) {
	st, _ := s.openStream(t, "/v1/events/stream?workflow_type=streamed&after=now", nil)
	require.Equal(t, http.StatusOK, s.input(t, "streamed", "sf-1", place(1, "sf-1"), nil).Status)
	ev := st.next(t, feedWait)
	require.Equal(t, "event", ev.event)
	require.Contains(t, ev.data, `"workflow_id":"sf-1"`)
	require.Contains(t, ev.data, `"cursor":"`+ev.id+`"`)
}

// TestStreamResume: a reader disconnected midway resumes with Last-Event-ID and misses
// nothing, also when the server restarted in between (on the same database).
// TestStreamReadsOnPastABigPage: a page of the feed ends at 4 MiB of event data, short
// of its limit; the stream reads on at once instead of taking the short page for the
// end of the feed and waiting for the next commit.
func TestStreamReadsOnPastABigPage(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, backend, nil)
			r := s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/blob", Body: `{"initial_state":"s","inputs":{"put":{}},"states":{"s":{"on":{"put":{"to":"s"}}}}}`})
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			const n = 30 // 30 × 200 KB: two pages' worth
			blob := strings.Repeat("b", 200_000)
			for i := range n {
				r := s.input(t, "blob", fmt.Sprint("b-", i), map[string]any{"type": "put", "data": map[string]any{"b": blob}}, nil)
				require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			}
			st, _ := s.openStream(t, "/v1/events/stream?workflow_type=blob", nil)
			for i := range n {
				ev := st.next(t, feedWait)
				require.Contains(t, ev.data, fmt.Sprintf(`"workflow_id":"b-%d"`, i))
			}
		})
	}
}

func TestStreamResume(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"IRONFLOW_DATABASE_URL": databaseURL(t, backend)}
			if backend == "sqlite" {
				env["IRONFLOW_DATABASE_URL"] = "sqlite://" + filepath.Join(t.TempDir(), "resume.db")
			}
			s := startServer(t, backend, env)
			s.defineOrder(t, "order")

			// Writers append throughout; the reader disconnects after 15 events.
			const instances, perInstance = 6, 5
			var wg sync.WaitGroup
			write := func(from, to int) {
				for i := range instances {
					wg.Go(func() {
						for n := from; n < to; n++ {
							body := reserved
							if n == 0 {
								body = place(1, fmt.Sprint("res-", i))
							}
							r := s.input(t, "order", fmt.Sprint("res-", i), body, nil)
							require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
						}
					})
				}
			}
			st, _ := s.openStream(t, "/v1/events/stream", nil)
			write(0, 3)
			seen := map[string]int{}
			var order []string
			last := ""
			record := func(ev sseEvent) {
				var key string
				for _, f := range []string{`"workflow_id":"`, `"seq":`} {
					i := strings.Index(ev.data, f)
					require.GreaterOrEqual(t, i, 0, ev.data)
					rest := ev.data[i+len(f):]
					key += rest[:strings.IndexAny(rest, `",}`)] + "/"
				}
				seen[key]++
				order = append(order, key)
				last = ev.id
			}
			for range 15 {
				record(st.next(t, feedWait))
			}
			st.close()
			wg.Wait()
			write(3, perInstance) // while nobody reads
			wg.Wait()

			// Restart on the same database.
			s.stop()
			s2 := startServer(t, backend, env)
			st2, _ := s2.openStream(t, "/v1/events/stream", map[string]string{"Last-Event-ID": last})
			for len(order) < instances*perInstance {
				record(st2.next(t, feedWait))
			}
			require.Len(t, seen, instances*perInstance)
			for k, n := range seen {
				require.Equal(t, 1, n, "event %s read %d times", k, n)
			}
			// Each instance's events arrive in seq order.
			lastSeq := map[string]int{}
			for _, k := range order {
				var id string
				var seq int
				_, err := fmt.Sscanf(strings.ReplaceAll(k, "/", " "), "%s %d", &id, &seq)
				require.NoError(t, err)
				require.Equal(t, lastSeq[id]+1, seq, "order of %s: %v", id, order)
				lastSeq[id] = seq
			}
		})
	}
}

// TestStreamShutdown: an open stream does not hold up the server's shutdown.
func TestStreamShutdown(t *testing.T) {
	t.Parallel()
	s := startServer(t, "sqlite", nil)
	st, _ := s.openStream(t, "/v1/events/stream?after=now", nil)
	t0 := time.Now()
	s.stop()
	require.Less(t, time.Since(t0), 5*time.Second)
	select {
	case _, ok := <-st.events:
		require.False(t, ok, "the stream ends")
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end")
	}
}
