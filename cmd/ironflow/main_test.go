package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/client"
	"github.com/ironflow/ironflow/internal/apitest"
)

// startServer runs the real server against which the CLI is tested.
var startServer = apitest.StartServer

// ironflow runs the CLI against url and returns its exit status and output.
func ironflow(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	env := map[string]string{"IRONFLOW_URL": url, "IRONFLOW_API_KEY": "k"}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestCLI(t *testing.T) {
	t.Parallel()
	url := startServer(t, "IRONFLOW_MAX_ATTEMPTS=1")

	// apply: a folder, twice (idempotent).
	dir := t.TempDir()
	order, err := os.ReadFile("../../examples/order.json")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "order.json"), order, 0o600))
	code, out, errOut := ironflow(t, url, "apply", "-f", dir)
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "order: defined version 1\n", out)
	code, out, _ = ironflow(t, url, "apply", "-f", dir)
	require.Equal(t, exitOK, code)
	require.Equal(t, "order: unchanged (version 1)\n", out)

	// send: accepted, rejected (exit 3), then get and events.
	code, out, errOut = ironflow(t, url, "send", "order", "o-1", "place", `{"total": 40, "order_ref": "A-1"}`)
	require.Equal(t, exitOK, code, errOut)
	var res client.Result
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Equal(t, client.OutcomeAccepted, res.Outcome)
	require.Equal(t, "awaiting_payment", res.Workflow.State.Name)
	code, out, _ = ironflow(t, url, "send", "order", "o-1", "pay", `{"amount": 1}`)
	require.Equal(t, exitDeclined, code)
	require.Contains(t, out, "payment is below the order total")
	code, out, errOut = ironflow(t, url, "send", "order", "o-404", "pay", `{"amount": 1}`, "--if-version", "3")
	require.Equal(t, exitError, code)
	require.Empty(t, out)
	require.Contains(t, errOut, "version_mismatch")

	code, out, _ = ironflow(t, url, "get", "order", "o-1")
	require.Equal(t, exitOK, code)
	var wf client.Workflow
	require.NoError(t, json.Unmarshal([]byte(out), &wf))
	require.EqualValues(t, 1, wf.Version)
	require.Nil(t, wf.CompletedAt)

	code, out, _ = ironflow(t, url, "events", "order", "o-1")
	require.Equal(t, exitOK, code)
	require.Equal(t, 1, strings.Count(out, "\n"))
	require.Contains(t, out, `"type":"OrderPlaced"`)

	code, out, _ = ironflow(t, url, "diagram", "order", "--format", "dot")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "digraph")

	code, _, errOut = ironflow(t, url, "get", "order", "nope")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "404 workflow_not_found")
	code, _, _ = ironflow(t, url, "send", "order")
	require.Equal(t, exitUsage, code)
	code, _, _ = ironflow(t, url, "frobnicate")
	require.Equal(t, exitUsage, code)
}

// TestEventsFollow: --follow prints events as they are recorded, until interrupted.
func TestEventsFollow(t *testing.T) {
	t.Parallel()
	url := startServer(t)
	cl, err := client.New(url, client.WithAPIKey("k"))
	require.NoError(t, err)
	ctx := context.Background()
	order, err := os.ReadFile("../../examples/order.json")
	require.NoError(t, err)
	_, _, err = cl.PutDefinition(ctx, "order", order)
	require.NoError(t, err)
	_, err = cl.Send(ctx, "order", "f-1", client.Input{Type: "place", Data: json.RawMessage(`{"total": 5, "order_ref": "F-1"}`)}, client.SendOptions{})
	require.NoError(t, err)

	out := &apitest.SyncBuffer{}
	followCtx, stop := context.WithCancel(ctx)
	done := make(chan int)
	go func() {
		done <- run(followCtx, []string{"events", "--follow", "--interval", "50ms", "order", "f-1"},
			func(k string) string { return map[string]string{"IRONFLOW_URL": url, "IRONFLOW_API_KEY": "k"}[k] }, out, out)
	}()
	require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") == 1 }, 10*time.Second, 20*time.Millisecond)
	res, err := cl.Send(ctx, "order", "f-1", client.Input{Type: "pay", Data: json.RawMessage(`{"amount": 5}`)}, client.SendOptions{})
	require.NoError(t, err)
	require.Equal(t, client.OutcomeAccepted, res.Outcome)
	require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") == 2 }, 10*time.Second, 20*time.Millisecond)
	require.Contains(t, out.String(), `"type":"PaymentReceived"`)
	stop()
	require.Equal(t, exitOK, <-done)
}

// TestDeadAndRetry: an effect whose receiver fails dies (one attempt); dead lists it
// and retry delivers it once the receiver answers.
func TestDeadAndRetry(t *testing.T) {
	t.Parallel()
	var healthy sync.Map
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := healthy.Load("yes"); !ok {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	url := startServer(t, "IRONFLOW_MAX_ATTEMPTS=1")
	cl, err := client.New(url, client.WithAPIKey("k"))
	require.NoError(t, err)
	ctx := context.Background()
	order, err := os.ReadFile("../../examples/order.json")
	require.NoError(t, err)
	_, _, err = cl.PutDefinition(ctx, "order", order)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPut, url+"/v1/workflow-types/order/webhook", strings.NewReader(`{"url": "`+receiver.URL+`"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer k")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	res, err := cl.Send(ctx, "order", "d-1", client.Input{Type: "place", Data: json.RawMessage(`{"total": 5, "order_ref": "D-1"}`)}, client.SendOptions{})
	require.NoError(t, err)
	effectID := res.Effects[0].ID

	var out string
	require.Eventually(t, func() bool {
		_, out, _ = ironflow(t, url, "dead", "--type", "order")
		return strings.Contains(out, effectID)
	}, 15*time.Second, 100*time.Millisecond)
	require.Contains(t, out, "effect "+effectID+"\torder/d-1\treserve_stock")

	healthy.Store("yes", true)
	code, out, errOut := ironflow(t, url, "retry", "effect", effectID)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, `"status": "pending"`)
	require.Eventually(t, func() bool {
		e, err := cl.GetEffect(ctx, effectID)
		return err == nil && e.Status == "delivered"
	}, 15*time.Second, 100*time.Millisecond)
	code, _, errOut = ironflow(t, url, "retry", "effect", effectID)
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "wrong_status")
}

// TestValidateMatchesServer: validate answers with the errors, and the paths, that a
// PUT of the same file gets from the server.
func TestValidateMatchesServer(t *testing.T) {
	t.Parallel()
	url := startServer(t)
	dir := t.TempDir()
	bad := `{"initial_state": "nowhere", "inputs": {"go": {"schema": {"type": 7}}},
	  "states": {"a": {"on": {"go": {"to": "missing", "data": "1 +", "effects": [{"name": "Bad-Name"}]}},
	                     "timers": [{"key": "t", "after": "soon", "input": {"type": "go"}}]},
	             "b": {"terminal": true, "on": {"go": {"to": "a"}}}}}`
	file := filepath.Join(dir, "broken.json")
	require.NoError(t, os.WriteFile(file, []byte(bad), 0o600))

	cl, err := client.New(url, client.WithAPIKey("k"))
	require.NoError(t, err)
	_, _, err = cl.PutDefinition(context.Background(), "broken", []byte(bad))
	var p *client.Problem
	require.ErrorAs(t, err, &p)
	require.Equal(t, "invalid_definition", p.Type)
	require.GreaterOrEqual(t, len(p.Errors), 5, "the example has many problems")
	var want strings.Builder
	want.WriteString(file + ": invalid\n")
	for _, fe := range p.Errors {
		fmt.Fprintf(&want, "  %s: %s\n", fe.Path, fe.Message)
	}

	code, out, _ := ironflow(t, "http://127.0.0.1:1", "validate", "-f", dir) // offline: no server at that address
	require.Equal(t, exitError, code)
	require.Equal(t, want.String(), out)

	good := filepath.Join(dir, "order.json")
	order, err := os.ReadFile("../../examples/order.json")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(good, order, 0o600))
	code, out, _ = ironflow(t, "http://127.0.0.1:1", "validate", "-f", good)
	require.Equal(t, exitOK, code)
	require.Equal(t, good+": ok\n", out)
}

// TestTerminate: terminate ends a running workflow with its reason, cancels its timer
// and frees its unique key; a retry with the same key replays the answer, a second
// terminate exits 3 (already completed), a missing workflow is a problem.
func TestTerminate(t *testing.T) {
	t.Parallel()
	url := startServer(t)
	cl, err := client.New(url, client.WithAPIKey("k"))
	require.NoError(t, err)
	ctx := context.Background()
	order, err := os.ReadFile("../../examples/order.json")
	require.NoError(t, err)
	_, _, err = cl.PutDefinition(ctx, "order", order)
	require.NoError(t, err)
	place := client.Input{Type: "place", Data: json.RawMessage(`{"total": 5, "order_ref": "T-1"}`)}
	_, err = cl.Send(ctx, "order", "t-1", place, client.SendOptions{})
	require.NoError(t, err)

	code, _, errOut := ironflow(t, url, "terminate", "order", "t-1")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "--reason is required")
	code, _, errOut = ironflow(t, url, "terminate", "order", "t-1", "--reason", "wrong", "--if-version", "7")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "version_mismatch")

	code, out, errOut := ironflow(t, url, "terminate", "order", "t-1", "--reason", "customer cancelled by phone", "--idempotency-key", "end-t-1")
	require.Equal(t, exitOK, code, errOut)
	var res client.Result
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Equal(t, client.OutcomeAccepted, res.Outcome)
	require.Equal(t, "terminated", res.Workflow.Status)
	require.Equal(t, "awaiting_payment", res.Workflow.State.Name, "a termination stays in the current state")
	require.NotNil(t, res.Workflow.CompletedAt)
	require.Len(t, res.Events, 1)
	require.Equal(t, "Terminated", res.Events[0].Type)

	// The same key: the first answer again, not already_completed.
	again, err := cl.Terminate(ctx, "order", "t-1", "customer cancelled by phone", client.TerminateOptions{IdempotencyKey: "end-t-1"})
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, client.OutcomeAccepted, again.Outcome)

	code, out, _ = ironflow(t, url, "terminate", "order", "t-1", "--reason", "twice")
	require.Equal(t, exitDeclined, code)
	require.Contains(t, out, `"outcome": "already_completed"`)

	// The reason is in the input log, the timer is cancelled, the unique key is free.
	inputs, err := cl.ListInputs(ctx, "order", "t-1", "", 0)
	require.NoError(t, err)
	last := inputs.Items[len(inputs.Items)-1]
	require.Equal(t, "$terminate", last.Type)
	require.JSONEq(t, `{"reason": "twice"}`, string(last.Data))
	require.Equal(t, client.OutcomeAlreadyCompleted, last.Outcome)
	require.Equal(t, "$terminate", inputs.Items[len(inputs.Items)-2].Type)
	require.JSONEq(t, `{"reason": "customer cancelled by phone"}`, string(inputs.Items[len(inputs.Items)-2].Data))
	timers, err := cl.ListTimers(ctx, client.ListFilter{WorkflowType: "order", WorkflowID: "t-1"})
	require.NoError(t, err)
	require.Len(t, timers.Items, 1)
	require.Equal(t, "cancelled", timers.Items[0].Status)
	res2, err := cl.Send(ctx, "order", "t-2", place, client.SendOptions{})
	require.NoError(t, err)
	require.Equal(t, client.OutcomeAccepted, res2.Outcome, "the terminated order's order_ref is free again")

	code, _, errOut = ironflow(t, url, "terminate", "order", "nope", "--reason", "x")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "404 workflow_not_found")
}
