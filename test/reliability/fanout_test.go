package reliability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The fan-out tests run examples/batch.json (a parent that starts one batch_item child
// per element of its input's items and completes with their merged results) and
// examples/batch_fail_fast.json against the real server: children are started by send
// effects through the outbox, each child's webhook answers with its result, and each
// child's ending reaches the parent as an input. After each run every instance's
// history is compared with the one the definitions imply, so a lost, doubled or
// reordered child input shows as a difference.
//
// They are not parallel: they run (their two stores side by side) before the parallel
// tests start, so their hundreds of children weigh on no bystander's timing.

// exampleDefinition reads examples/<name>.json.
func exampleDefinition(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", name+".json"))
	require.NoError(t, err)
	return b
}

// startBatchServer starts a receiver that answers the children's work effects
// (workAnswer) and a server on dbURL with env, and stores the batch examples under their
// file names, the children's webhook at the receiver.
func startBatchServer(t *testing.T, dbURL string, env map[string]string) (*receiver, *server, *apiClient) {
	t.Helper()
	rcv := startReceiver(t)
	rcv.answer = workAnswer
	srv := startServer(t, dbURL, env)
	c := newClient(srv.URL, 30*time.Second)
	t.Cleanup(c.Close)
	for _, name := range []string{"batch_item", "batch", "batch_fail_fast"} {
		c.putDefinition(t, name, exampleDefinition(t, name))
	}
	c.putWebhook(t, "batch_item", rcv.URL)
	return rcv, srv, c
}

// workAnswer answers a batch_item work effect: the item, a number, comes back as the
// result {"square": item²}; an item of -1 is answered with a failure.
func workAnswer(body []byte) string {
	var msg struct {
		Data struct {
			Payload struct {
				Item float64 `json:"item"`
			} `json:"payload"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &msg)
	n := msg.Data.Payload.Item
	if n < 0 {
		return `{"input":{"type":"failed","data":{"error":"item refused"}}}`
	}
	return fmt.Sprintf(`{"input":{"type":"done","data":{"result":{"square":%v}}}}`, n*n)
}

// workItem returns the item of a work effect's delivery, -1 when it has none.
func workItem(body []byte) int {
	var msg struct {
		Data struct {
			Effect  string `json:"effect"`
			Payload struct {
				Item *float64 `json:"item"`
			} `json:"payload"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.Data.Effect != "work" || msg.Data.Payload.Item == nil {
		return -1
	}
	return int(*msg.Data.Payload.Item)
}

// startBatch sends the start input of parent typ/id with items 0…n-1.
func startBatch(t *testing.T, c *apiClient, typ, id string, items []int) {
	t.Helper()
	r := c.Do(t, request{Method: http.MethodPost, Path: "/v1/workflows/" + typ + "/" + id + "/inputs",
		Body:   map[string]any{"type": "start", "data": map[string]any{"items": items}},
		Header: map[string]string{"Idempotency-Key": "start-" + id}})
	require.Equal(t, http.StatusOK, r.Status, "start %s/%s: %s", typ, id, r.Body)
	require.Equal(t, "accepted", r.JSON(t)["outcome"], "%s", r.Body)
}

// upTo returns 0…n-1.
func upTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// getWorkflow reads an instance view.
func getWorkflow(t *testing.T, c *apiClient, typ, id string) map[string]any {
	t.Helper()
	r := c.Get(t, "/v1/workflows/"+typ+"/"+url.PathEscape(id))
	require.Equal(t, http.StatusOK, r.Status, "GET %s/%s: %s", typ, id, r.Body)
	return r.JSON(t)
}

// waitEnded polls an instance until its status is no longer running and returns it.
func waitEnded(t *testing.T, c *apiClient, typ, id string, timeout time.Duration) map[string]any {
	t.Helper()
	var wf map[string]any
	waitFor(t, timeout, typ+"/"+id+" to end", func() bool {
		r := c.Get(t, "/v1/workflows/"+typ+"/"+url.PathEscape(id))
		if r.Status != http.StatusOK {
			return false
		}
		wf = r.JSON(t)
		return wf["status"] != "running"
	})
	return wf
}

// compact is the canonical JSON of v: object keys sorted, numbers as JSON writes them.
func compact(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// instanceRecord is what "the same history" means for one instance: its status, final
// state and data, and its events (type, transition and data). A parent's child
// answers arrive in whatever order the children end, so its events after the first
// are compared as a sorted list, with the transition of the last one apart.
type instanceRecord struct {
	Status string
	State  string
	Data   string
	Events []string
	// Last is the transition of the last event (for a parent, the one that ended it).
	Last string
	// Inputs is the number of accepted inputs, each one an event.
	Inputs int
}

// readRecord reads one instance's record through the API and checks what every
// instance must satisfy: accepted inputs are its events, one each, seq 1…version, and
// no idempotency key is recorded twice.
func readRecord(t *testing.T, c *apiClient, typ, id string, sortAfterFirst bool) instanceRecord {
	t.Helper()
	wf := getWorkflow(t, c, typ, id)
	events := listEvents(t, c, typ, url.PathEscape(id))
	require.EqualValues(t, len(events), wf["version"], "%s/%s: version and events", typ, id)
	rec := instanceRecord{
		Status: wf["status"].(string),
		State:  path(wf, "state", "name").(string),
		Data:   compact(t, path(wf, "state", "data")),
	}
	for i, ev := range events {
		require.EqualValues(t, i+1, ev["seq"], "%s/%s: seq gap", typ, id)
		rec.Events = append(rec.Events, fmt.Sprintf("%s:%s->%s %s", ev["type"], ev["from"], ev["to"], compact(t, ev["data"])))
	}
	if n := len(events); n > 0 {
		rec.Last = fmt.Sprintf("%s->%s", events[n-1]["from"], events[n-1]["to"])
	}
	if sortAfterFirst && len(rec.Events) > 1 {
		rest := rec.Events[1:]
		for i, ev := range events[1:] {
			// The transition is in Last; the others all stay in the same state.
			rest[i] = fmt.Sprintf("%s %s", ev["type"], compact(t, ev["data"]))
		}
		sort.Strings(rest)
	}
	keys := map[string]int{}
	for _, in := range c.ListAll(t, "/v1/workflows/"+typ+"/"+url.PathEscape(id)+"/inputs") {
		if in["outcome"] == "accepted" {
			rec.Inputs++
		}
		if k, _ := in["idempotency_key"].(string); k != "" {
			keys[k]++
			require.Equal(t, 1, keys[k], "%s/%s: input key %s recorded twice", typ, id, k)
		}
	}
	return rec
}

// path walks a decoded JSON value by keys.
func path(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// childID is the id the batch examples give the child of element index.
func childID(parent string, index int) string { return fmt.Sprintf("%s-%d", parent, index) }

// expectedBatch is the record every instance of a batch run over items 0…n-1 must
// end with, the parent's under "batch/<parent>".
func expectedBatch(parent string, n int) map[string]instanceRecord {
	out := map[string]instanceRecord{}
	results := map[string]any{}
	var answers []string
	for i := range n {
		id := childID(parent, i)
		square := fmt.Sprintf(`{"square":%d}`, i*i)
		out["batch_item/"+id] = instanceRecord{
			Status: "completed", State: "completed",
			Data: fmt.Sprintf(`{"item":%d,"result":%s}`, i, square),
			Events: []string{
				fmt.Sprintf(`start:new->working {"item":%d}`, i),
				fmt.Sprintf(`done:working->completed {"result":%s}`, square),
			},
			Last: "working->completed", Inputs: 2,
		}
		results[id] = map[string]any{"square": i * i}
		answers = append(answers, fmt.Sprintf(`item_done {"results":{%q:%s}}`, id, square))
	}
	sort.Strings(answers)
	data, _ := json.Marshal(map[string]any{"expected": n, "failures": map[string]any{}, "results": results})
	out["batch/"+parent] = instanceRecord{
		Status: "completed", State: "done", Data: string(data),
		Events: append([]string{fmt.Sprintf(`start:new->waiting {"expected":%d,"failures":{},"results":{}}`, n)}, answers...),
		Last:   "waiting->done", Inputs: n + 1,
	}
	return out
}

// batchRecords reads the record of the parent and of every child the children route
// lists, checks that they link to each other, and returns the records by "type/id".
func batchRecords(t *testing.T, c *apiClient, parent string) map[string]instanceRecord {
	t.Helper()
	out := map[string]instanceRecord{"batch/" + parent: readRecord(t, c, "batch", parent, true)}
	children := c.ListAll(t, "/v1/workflows/batch/"+parent+"/children")
	for _, ch := range children {
		id := ch["id"].(string)
		require.Equal(t, "batch_item", ch["type"], "child %s", id)
		require.Equal(t, map[string]any{"workflow_type": "batch", "id": parent}, ch["parent"], "child %s names its parent", id)
		out["batch_item/"+id] = readRecord(t, c, "batch_item", id, false)
	}
	return out
}

// requireNoDoubleApplication checks the database as a whole: every accepted input is
// one event, and no instance holds two accepted inputs of one type from the same
// sender (a child's start, a parent's answer from one child).
func requireNoDoubleApplication(t *testing.T, dbURL string) {
	t.Helper()
	require.Equal(t, queryInt(t, dbURL, "SELECT count(*) FROM events"),
		queryInt(t, dbURL, "SELECT count(*) FROM inputs WHERE outcome = 'accepted'"), "one event per accepted input")
	require.Zero(t, queryInt(t, dbURL, `SELECT count(*) FROM (SELECT workflow_type, workflow_id, idempotency_key FROM inputs
  WHERE idempotency_key <> '' GROUP BY workflow_type, workflow_id, idempotency_key HAVING count(*) > 1) d`))
	// A child's input of each type is applied once: start from its parent's send,
	// done from its webhook.
	require.Zero(t, queryInt(t, dbURL, `SELECT count(*) FROM (SELECT workflow_id, type FROM inputs
  WHERE workflow_type = 'batch_item' AND outcome = 'accepted' GROUP BY workflow_id, type HAVING count(*) > 1) d`))
}

// requireBatchDone waits for the batch parent (items 0…n-1) to end and checks the run:
// the parent completed, every instance's record is the one the definitions imply,
// nothing was applied twice, each work effect reached the receiver, and every effect
// was delivered. It returns how many work deliveries were repeated.
func requireBatchDone(t *testing.T, c *apiClient, dbURL string, rcv *receiver, parent string, n int) (redelivered int) {
	t.Helper()
	wf := waitEnded(t, c, "batch", parent, pick(90*time.Second, 5*time.Minute))
	require.Equal(t, "completed", wf["status"], "%v", wf["state"])
	require.Equal(t, expectedBatch(parent, n), batchRecords(t, c, parent))
	requireNoDoubleApplication(t, dbURL)
	seen := rcv.seen()
	require.Len(t, seen, n, "one work effect per child reached the receiver")
	for _, k := range seen {
		redelivered += k - 1
	}
	requireAllDelivered(t, dbURL)
	return redelivered
}

// requireAllDelivered waits until no effect is pending (the parent's ending still has
// its children to end when it completes) and checks that every effect was delivered.
func requireAllDelivered(t *testing.T, dbURL string) {
	t.Helper()
	waitFor(t, 30*time.Second, "no effect pending", func() bool {
		return queryInt(t, dbURL, "SELECT count(*) FROM effects WHERE status = 'pending'") == 0
	})
	require.Zero(t, queryInt(t, dbURL, "SELECT count(*) FROM effects WHERE status <> 'delivered'"))
}

// logErrors shows the first ERROR lines the server logged, if any.
func logErrors(t *testing.T, srv *server) {
	t.Helper()
	b, err := os.ReadFile(srv.logPath)
	require.NoError(t, err)
	n := 0
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.Contains(line, []byte(`"level":"ERROR"`)) && n < 5 {
			t.Logf("%s logged: %s", srv.name, line)
			n++
		}
	}
}

// fanOutEnv are the server settings of the fan-out runs: a short lease (3 × 1 s) so a
// killed process's claims come back soon, and quick retries.
var fanOutEnv = map[string]string{
	"IRONFLOW_WEBHOOK_TIMEOUT":        "1s",
	"IRONFLOW_RETRY_INITIAL_INTERVAL": "100ms",
	"IRONFLOW_RETRY_MAX_INTERVAL":     "1s",
}

// TestFanOutBatch runs examples/batch.json with 200 children (1,000 in the long
// variant) on both stores: the parent completes once, with every child's result
// merged, each child's webhook was called once and each child input applied once.
func TestFanOutBatch(t *testing.T) {
	n := pick(200, 1000)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dbURL := newDatabaseURL(t, backend)
			// The default lease (3 × 10 s): without a kill no claim expires, so each
			// work effect reaches the receiver once.
			rcv, srv, c := startBatchServer(t, dbURL, nil)

			t0 := time.Now()
			startBatch(t, c, "batch", "b", upTo(n))
			require.Zero(t, requireBatchDone(t, c, dbURL, rcv, "b", n), "without a kill no work effect is delivered twice")
			done, err := time.Parse(time.RFC3339Nano, getWorkflow(t, c, "batch", "b")["completed_at"].(string))
			require.NoError(t, err)
			took := done.Sub(t0)
			errs, panics := srv.logCounts()
			require.Zero(t, panics)
			logErrors(t, srv)
			t.Logf("fan-out (%s): %d children, parent completed %s after its input; %d events, %d effects, %d error log lines",
				backend, n, took.Round(time.Millisecond), queryInt(t, dbURL, "SELECT count(*) FROM events"),
				queryInt(t, dbURL, "SELECT count(*) FROM effects"), errs)
		})
	}
}

// TestFanOutKillNine runs the batch of TestFanOutBatch and kills the server with
// SIGKILL once about a third of the children have completed (twice, further apart,
// in the long variant), restarting it on the same database each time. The final
// records are those of a run without a kill; a work effect may reach the receiver
// again only if it was in flight at a kill, and no child input is applied twice.
func TestFanOutKillNine(t *testing.T) {
	n := pick(200, 1000)
	kills := pick(1, 2)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dbURL := newDatabaseURL(t, backend)
			rcv, srv, c := startBatchServer(t, dbURL, fanOutEnv)
			rcv.delay = 10 * time.Millisecond // deliveries in flight when the kill comes
			startBatch(t, c, "batch", "k", upTo(n))

			inFlight := 0
			for k := range kills {
				mark := int64(n * (k + 1) / (kills + 2))
				waitFor(t, 60*time.Second, fmt.Sprintf("%d children completed", mark), func() bool {
					return queryInt(t, dbURL, "SELECT count(*) FROM instances WHERE type = 'batch_item' AND status = 'completed'") >= mark
				})
				srv.kill()
				delivered := map[string]bool{}
				for _, id := range queryStrings(t, dbURL, "SELECT id FROM effects WHERE status = 'delivered'") {
					delivered[id] = true
				}
				for id := range rcv.seen() {
					if !delivered[id] {
						inFlight++
					}
				}
				srv.start()
			}
			// The records of a run without a kill.
			duplicates := requireBatchDone(t, c, dbURL, rcv, "k", n)
			require.LessOrEqual(t, duplicates, inFlight, "deliveries again ≤ deliveries in flight at the kills")
			logErrors(t, srv)
			t.Logf("fan-out kill -9 (%s): %d children, %d kill(s), %d work deliveries again (≤ %d in flight), no input applied twice",
				backend, n, kills, duplicates, inFlight)
		})
	}
}

// TestFanOutTwoServers runs the batch on two server processes sharing one PostgreSQL
// database, the parent started on one and read on the other: both deliver the
// children's sends and webhooks, and none is applied twice.
func TestFanOutTwoServers(t *testing.T) {
	n := pick(200, 1000)
	dbURL := newDatabaseURL(t, "postgres")
	rcv, a, ca := startBatchServer(t, dbURL, fanOutEnv)
	b := startServerProc(t, dbURL, serverOpts{name: "server2", env: fanOutEnv})
	cb := newClient(b.URL, 30*time.Second)
	defer cb.Close()
	startBatch(t, ca, "batch", "m", upTo(n))
	duplicates := requireBatchDone(t, cb, dbURL, rcv, "m", n)
	logErrors(t, a)
	logErrors(t, b)
	t.Logf("fan-out on two servers: %d children, 0 inputs applied twice, %d work deliveries again", n, duplicates)
}

// TestFanOutParentEnds ends parents while some of their children still wait for
// their webhook's answer (the receiver holds the deliveries of odd items):
// terminating a batch parent terminates those children (reason parent_ended) and
// cancels their pending work effects, and an answer that arrives afterwards is never
// routed; a parent whose children are declared "on_parent_end": "abandon" leaves
// them running, and they complete. A fail-fast parent (examples/batch_fail_fast.json)
// fails at its first failed child, and its children still running are terminated.
func TestFanOutParentEnds(t *testing.T) {
	const n = 10
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dbURL := newDatabaseURL(t, backend)
			// Held deliveries stay in flight: the attempt timeout outlasts the test.
			rcv, _, c := startBatchServer(t, dbURL, map[string]string{"IRONFLOW_WEBHOOK_TIMEOUT": "60s"})
			rcv.hold = func(body []byte) bool { return workItem(body)%2 == 1 }
			rcv.held.pause()
			abandon := exampleDefinition(t, "batch")
			from := []byte(`"child": {"on_completed": "item_done", "on_failed": "item_failed"}`)
			require.True(t, bytes.Contains(abandon, from), "examples/batch.json declares its children as this test expects")
			c.putDefinition(t, "batch_abandon", bytes.Replace(abandon, from,
				[]byte(`"child": {"on_completed": "item_done", "on_failed": "item_failed", "on_parent_end": "abandon"}`), 1))

			// Fail fast: item -1 is refused by the receiver, its child fails, and so does
			// the parent; item 1 is held, so its child is still running then.
			startBatch(t, c, "batch_fail_fast", "f", []int{0, 1, -1})
			startBatch(t, c, "batch", "t", upTo(n))
			startBatch(t, c, "batch_abandon", "a", upTo(n))

			ff := waitEnded(t, c, "batch_fail_fast", "f", 60*time.Second)
			require.Equal(t, "failed", ff["status"])
			require.Equal(t, "failed", path(ff, "state", "name"))
			require.Equal(t, map[string]any{"id": "f-2", "status": "failed",
				"state": map[string]any{"name": "failed", "data": map[string]any{"item": -1.0, "error": "item refused"}}},
				path(ff, "state", "data", "failed_child"))
			held := waitEnded(t, c, "batch_item", "f-1", 30*time.Second)
			require.Equal(t, "terminated", held["status"], "the fail-fast parent's running child is terminated")
			requireTerminatedByParent(t, c, "f-1")

			// Both parents wait for their odd children, whose deliveries are held.
			for _, p := range []string{"batch/t", "batch_abandon/a"} {
				typ, id, _ := strings.Cut(p, "/")
				waitFor(t, 30*time.Second, p+" to have its even children's results", func() bool {
					res, _ := path(getWorkflow(t, c, typ, id), "state", "data", "results").(map[string]any)
					return len(res) == n/2
				})
			}
			// Every work effect reached the receiver: f-0, f-1 and f-2, and the n
			// children of each batch, the odd ones held.
			var seen map[string]int
			defer func() { // a failure names what the receiver had, against the server's log
				if t.Failed() && len(seen) != 2*n+3 {
					t.Logf("the receiver had seen %d work effects (webhook-id → deliveries): %v", len(seen), seen)
				}
			}()
			waitFor(t, 30*time.Second, "every work effect delivered or held", func() bool {
				seen = rcv.seen()
				return len(seen) == 2*n+3
			})
			for _, p := range []string{"batch/t", "batch_abandon/a"} {
				typ, id, _ := strings.Cut(p, "/")
				r := c.Do(t, request{Method: http.MethodPost, Path: "/v1/workflows/" + typ + "/" + id + "/terminate",
					Body: map[string]string{"reason": "operator stops the batch"}})
				require.Equal(t, http.StatusOK, r.Status, "terminate %s: %s", p, r.Body)
			}
			tVersion := getWorkflow(t, c, "batch", "t")["version"]

			// The terminated batch's running children are terminated, their work
			// effects cancelled; the completed ones stay completed.
			for i := range n {
				id := childID("t", i)
				wf := waitEnded(t, c, "batch_item", id, 30*time.Second)
				if i%2 == 0 {
					require.Equal(t, "completed", wf["status"], id)
					continue
				}
				require.Equal(t, "terminated", wf["status"], id)
				requireTerminatedByParent(t, c, id)
			}
			// The abandoned children still run, their work still pending.
			for i := 1; i < n; i += 2 {
				id := childID("a", i)
				wf := getWorkflow(t, c, "batch_item", id)
				require.Equal(t, "running", wf["status"], "%s is abandoned, not terminated", id)
				require.Equal(t, "pending", workEffect(t, c, id)["status"], id)
			}

			// Answers now arrive: the abandoned children complete; the terminated
			// children's answers are recorded, never routed.
			rcv.held.resume()
			for i := 1; i < n; i += 2 {
				id := childID("a", i)
				require.Equal(t, "completed", waitEnded(t, c, "batch_item", id, 30*time.Second)["status"], id)
			}
			waitFor(t, 30*time.Second, "no effect left pending", func() bool {
				return queryInt(t, dbURL, "SELECT count(*) FROM effects WHERE status = 'pending'") == 0
			})
			for i := 1; i < n; i += 2 {
				id := childID("t", i)
				wf := getWorkflow(t, c, "batch_item", id)
				require.Equal(t, "terminated", wf["status"], id)
				require.Equal(t, "working", path(wf, "state", "name"), id)
			}
			require.Equal(t, tVersion, getWorkflow(t, c, "batch", "t")["version"], "an ended parent takes no child answer")
			require.Equal(t, "terminated", getWorkflow(t, c, "batch_abandon", "a")["status"])
			require.Zero(t, queryInt(t, dbURL, "SELECT count(*) FROM effects WHERE status = 'dead'"),
				"a child's ending sent to an ended parent is no failure")
			requireNoDoubleApplication(t, dbURL)
		})
	}
}

// requireTerminatedByParent checks that child id of batch_item was terminated because
// its parent ended, and that its work effect was cancelled.
func requireTerminatedByParent(t *testing.T, c *apiClient, id string) {
	t.Helper()
	var reasons []any
	for _, in := range c.ListAll(t, "/v1/workflows/batch_item/"+id+"/inputs") {
		if in["type"] == "$terminate" && in["outcome"] == "accepted" {
			reasons = append(reasons, path(in, "data", "reason"))
		}
	}
	require.Equal(t, []any{"parent_ended"}, reasons, "%s is terminated once, because its parent ended", id)
	require.Equal(t, "cancelled", workEffect(t, c, id)["status"], "%s's work effect", id)
}

// workEffect returns the work effect of child id of batch_item (its other effects are
// the engine's: the answer to its parent once it ends).
func workEffect(t *testing.T, c *apiClient, id string) map[string]any {
	t.Helper()
	var work []map[string]any
	for _, e := range c.ListAll(t, "/v1/workflows/batch_item/"+id+"/effects") {
		if e["name"] == "work" {
			work = append(work, e)
		}
	}
	require.Len(t, work, 1, "%s has one work effect", id)
	return work[0]
}

// TestSendDies sends to a workflow type that does not exist, and to one whose
// definition rejects the input: the send is retried per its policy, then dies, and
// the sender's on_dead input runs.
func TestSendDies(t *testing.T) {
	sender := func(target string) string {
		return `{"initial_state":"new","inputs":{"go":{},"gave_up":{}},"states":{
  "new":{"on":{"go":{"to":"sending","effects":[{"name":"hello",
    "send":{"workflow_type":"` + target + `","id":"workflow.id","input":{"type":"hello","data":"{'from': workflow.id}"}},
    "retry":{"max_attempts":2,"initial_interval":"50ms","max_interval":"100ms"},
    "on_dead":{"type":"gave_up","data":"{'error': effect.last_error, 'attempts': effect.attempts}"}}]}}},
  "sending":{"on":{"gave_up":{"to":"gave_up"}}},
  "gave_up":{"terminal":"failed"}}}`
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, newDatabaseURL(t, backend), nil)
			c := newClient(srv.URL, 30*time.Second)
			defer c.Close()
			c.putDefinition(t, "picky", `{"initial_state":"s","inputs":{"hello":{}},"states":{"s":{"on":{"hello":{"reject":"not today"}}}}}`)
			for _, target := range []string{"nowhere", "picky"} {
				typ := "to_" + target
				c.putDefinition(t, typ, sender(target))
				r := c.Do(t, request{Method: http.MethodPost, Path: "/v1/workflows/" + typ + "/s-1/inputs", Body: map[string]any{"type": "go"}})
				require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

				wf := waitEnded(t, c, typ, "s-1", 30*time.Second)
				require.Equal(t, "failed", wf["status"], target)
				require.Equal(t, "gave_up", path(wf, "state", "name"), target)
				require.EqualValues(t, 2, path(wf, "state", "data", "attempts"), target)
				require.NotEmpty(t, path(wf, "state", "data", "error"), target)

				effects := c.ListAll(t, "/v1/workflows/"+typ+"/s-1/effects")
				require.Len(t, effects, 1, target)
				eff := c.Get(t, "/v1/effects/"+effects[0]["id"].(string)).JSON(t)
				require.Equal(t, "dead", eff["status"], target)
				require.EqualValues(t, 2, eff["attempt_count"], target)
				require.Equal(t, "accepted", eff["on_dead_outcome"], target)
				require.Equal(t, map[string]any{"workflow_type": target, "id": "s-1"}, eff["send"], target)
				require.Len(t, eff["attempts"], 2, target)
				r = c.Get(t, "/v1/workflows/"+target+"/s-1")
				require.Equal(t, http.StatusNotFound, r.Status, "%s: no instance was created: %s", target, r.Body)
			}
		})
	}
}
