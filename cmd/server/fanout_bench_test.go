package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/apitest"
)

// BenchmarkFanOut measures what a fan-out costs, on both stores: a parent of
// examples/batch.json whose start input sends N batch_item children (N = 10, 100,
// 1,000), each child calling a local webhook that answers at once, and the parent
// completing with their merged results. It reports the time from the parent's input
// to the last child's creation and to the parent's completion, from the server's own
// timestamps (created_at, completed_at).
//
// Two baselines are measured in the same run on the same server. The same N children
// started by a client instead, one input each, 8 in flight, until the last has
// completed: x-vs-children-by-client is the fan-out's time to the parent's completion
// over it, what starting children through the outbox and answering a parent cost
// beside a client doing the starting. And the parent's N answers (item_done, the data
// a child's ending sends) sent one at a time by a client to a parent of the same
// definition without its sends: x-vs-answers-by-client, what the parent's own
// decisions on its answers cost beside the fan-out as a whole. Run it with
//
//	go test -run '^$' -bench BenchmarkFanOut -benchtime 3x ./cmd/server/
func BenchmarkFanOut(b *testing.B) {
	for _, backend := range backends {
		b.Run(backend, func(b *testing.B) {
			s := startServer(b, backend, map[string]string{"IRONFLOW_WEBHOOK_ALLOW_NETS": "127.0.0.0/8"})
			rcv := httptest.NewServer(http.HandlerFunc(squareWork))
			b.Cleanup(rcv.Close)
			c := s.api
			for _, name := range []string{"batch_item", "batch"} {
				def, err := os.ReadFile(filepath.Join("..", "..", "examples", name+".json"))
				require.NoError(b, err)
				r := c.Do(b, apitest.Request{Method: http.MethodPut, Path: "/v1/workflow-types/" + name, Body: def})
				require.Equal(b, http.StatusCreated, r.Status, "%s", r.Body)
			}
			r := c.Do(b, apitest.Request{Method: http.MethodPut, Path: "/v1/workflow-types/batch_item/webhook", Body: map[string]string{"url": rcv.URL}})
			require.Equal(b, http.StatusCreated, r.Status, "%s", r.Body)
			// batch_sink is the batch without its sends: the parent's own work on the
			// answers, measured with a client sending them.
			r = c.Do(b, apitest.Request{Method: http.MethodPut, Path: "/v1/workflow-types/batch_sink", Body: withoutSends(b)})
			require.Equal(b, http.StatusCreated, r.Status, "%s", r.Body)

			for _, n := range []int{10, 100, 1000} {
				b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
					var toLastChild, toParentDone, byClient, answers time.Duration
					for i := range b.N {
						parent := fmt.Sprintf("f%d-%d", n, i)
						items := make([]int, n)
						for j := range items {
							items[j] = j
						}
						t0 := time.Now()
						r := c.Do(b, apitest.Request{Method: http.MethodPost, Path: "/v1/workflows/batch/" + parent + "/inputs",
							Body: map[string]any{"type": "start", "data": map[string]any{"items": items}}})
						require.Equal(b, http.StatusOK, r.Status, "%s", r.Body)
						wf := waitStatus(b, c, "/v1/workflows/batch/"+parent)
						require.Equal(b, "completed", wf["status"])
						children := c.ListAll(b, "/v1/workflows/batch/"+parent+"/children")
						require.Len(b, children, n)
						toLastChild += latest(b, children, "created_at").Sub(t0)
						toParentDone += stamp(b, wf, "completed_at").Sub(t0)

						// The baseline: the same children, each started by the client.
						prefix := fmt.Sprintf("c%d-%d-", n, i)
						t1 := time.Now()
						var wg sync.WaitGroup
						next := make(chan int)
						for range 8 {
							wg.Go(func() {
								for j := range next {
									r := c.Do(b, apitest.Request{Method: http.MethodPost, Path: fmt.Sprintf("/v1/workflows/batch_item/%s%d/inputs", prefix, j),
										Body: map[string]any{"type": "start", "data": map[string]any{"item": j}}})
									require.Equal(b, http.StatusOK, r.Status, "%s", r.Body)
								}
							})
						}
						for j := range n {
							next <- j
						}
						close(next)
						wg.Wait()
						list := "/v1/workflows?type=batch_item&id_prefix=" + prefix
						deadline := time.Now().Add(5 * time.Minute)
						for len(c.ListAll(b, list+"&status=running")) > 0 {
							require.True(b, time.Now().Before(deadline), "the client's children did not complete within 5 minutes")
							time.Sleep(20 * time.Millisecond)
						}
						done := c.ListAll(b, list+"&status=completed")
						require.Len(b, done, n)
						byClient += latest(b, done, "completed_at").Sub(t1)

						// The second baseline: the parent's answers alone, sent one at a time
						// by a client to a parent that started no children.
						sink := fmt.Sprintf("s%d-%d", n, i)
						r = c.Do(b, apitest.Request{Method: http.MethodPost, Path: "/v1/workflows/batch_sink/" + sink + "/inputs",
							Body: map[string]any{"type": "start", "data": map[string]any{"items": items}}})
						require.Equal(b, http.StatusOK, r.Status, "%s", r.Body)
						t2 := time.Now()
						for j := range n {
							child := map[string]any{"workflow_type": "batch_item", "id": fmt.Sprintf("%s-%d", sink, j), "status": "completed",
								"state": map[string]any{"name": "completed", "data": map[string]any{"item": j, "result": map[string]any{"square": j * j}}}}
							r := c.Do(b, apitest.Request{Method: http.MethodPost, Path: "/v1/workflows/batch_sink/" + sink + "/inputs",
								Body: map[string]any{"type": "item_done", "data": map[string]any{"child": child}}})
							require.Equal(b, http.StatusOK, r.Status, "%s", r.Body)
						}
						answers += time.Since(t2)
						require.Equal(b, "completed", c.Get(b, "/v1/workflows/batch_sink/"+sink).JSON(b)["status"])
					}
					per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
					b.ReportMetric(per(toLastChild), "ms-to-last-child")
					b.ReportMetric(per(toParentDone), "ms-to-parent-done")
					b.ReportMetric(per(byClient), "ms-children-by-client")
					b.ReportMetric(per(answers), "ms-answers-by-client")
					b.ReportMetric(per(toParentDone)/float64(n), "ms/child")
					b.ReportMetric(float64(toParentDone)/float64(byClient), "x-vs-children-by-client")
					b.ReportMetric(float64(toParentDone)/float64(answers), "x-vs-answers-by-client")
				})
			}
		})
	}
}

// withoutSends is examples/batch.json without the effects of its start transition.
func withoutSends(b *testing.B) []byte {
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "batch.json"))
	require.NoError(b, err)
	var def map[string]any
	require.NoError(b, json.Unmarshal(raw, &def))
	states, _ := def["states"].(map[string]any)
	state, _ := states["new"].(map[string]any)
	on, _ := state["on"].(map[string]any)
	start, ok := on["start"].(map[string]any)
	require.True(b, ok, "examples/batch.json has states.new.on.start")
	delete(start, "effects")
	out, err := json.Marshal(def)
	require.NoError(b, err)
	return out
}

// squareWork is the children's webhook: it answers a work effect for item n with the
// result {"square": n²}, routed back as the child's done input.
func squareWork(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Data struct {
			Payload struct {
				Item float64 `json:"item"`
			} `json:"payload"`
		} `json:"data"`
	}
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &msg)
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"input":{"type":"done","data":{"result":{"square":%v}}}}`, msg.Data.Payload.Item*msg.Data.Payload.Item)
}

// waitStatus polls an instance until it has ended, for up to 5 minutes, and returns
// its view.
func waitStatus(b *testing.B, c *apitest.Client, path string) map[string]any {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		r := c.Get(b, path)
		if r.Status == http.StatusOK {
			if wf := r.JSON(b); wf["status"] != "running" {
				return wf
			}
		}
		require.True(b, time.Now().Before(deadline), "%s did not end within 5 minutes", path)
		time.Sleep(20 * time.Millisecond)
	}
}

// stamp reads an RFC 3339 timestamp field of a view.
func stamp(b *testing.B, v map[string]any, field string) time.Time {
	s, _ := v[field].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(b, err, "%s: %q", field, s)
	return at
}

// latest is the latest of a timestamp field over views.
func latest(b *testing.B, views []map[string]any, field string) time.Time {
	var out time.Time
	for _, v := range views {
		if at := stamp(b, v, field); at.After(out) {
			out = at
		}
	}
	return out
}
