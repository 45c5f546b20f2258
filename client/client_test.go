package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/client"
	"github.com/ironflow/ironflow/internal/apitest"
)

func order(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../examples/order.json")
	require.NoError(t, err)
	return b
}

func data(s string) json.RawMessage { return json.RawMessage(s) }

// TestClient runs every method against the real server (cmd/server) and checks what
// it decodes: definitions and their pages, decisions of each outcome, idempotent
// replays, conditions, dry runs, delayed inputs, history, effects, timers,
// termination, and problems as *Problem errors.
func TestClient(t *testing.T) {
	t.Parallel()
	url := apitest.StartServer(t)
	ctx := context.Background()
	_, err := client.New("ftp://example")
	require.Error(t, err)
	c, err := client.New(url+"/", client.WithAPIKey("k"))
	require.NoError(t, err)

	// Problems: no key, an invalid definition with its paths.
	anon, err := client.New(url)
	require.NoError(t, err)
	_, err = anon.ListDefinitions(ctx, "", 0)
	require.True(t, client.IsProblem(err, "unauthorized"), "%v", err)
	_, _, err = c.PutDefinition(ctx, "broken", []byte(`{"initial_state": "nowhere", "states": {}}`))
	var p *client.Problem
	require.ErrorAs(t, err, &p)
	require.Equal(t, "invalid_definition", p.Type)
	require.Equal(t, 422, p.Status)
	require.NotEmpty(t, p.Errors)
	require.Contains(t, err.Error(), p.Errors[0].Path+": "+p.Errors[0].Message)

	// Definitions: created, unchanged, read back, paged.
	d, created, err := c.PutDefinition(ctx, "order", order(t))
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, 1, d.Version)
	_, created, err = c.PutDefinition(ctx, "order", order(t))
	require.NoError(t, err)
	require.False(t, created)
	_, _, err = c.PutDefinition(ctx, "parcel", order(t))
	require.NoError(t, err)
	got, err := c.GetDefinition(ctx, "order", 1)
	require.NoError(t, err)
	require.Equal(t, "order", got.Type)
	require.JSONEq(t, string(order(t)), string(got.Definition))
	var names []string
	cursor := ""
	for {
		page, err := c.ListDefinitions(ctx, cursor, 1)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Items), 1)
		for _, d := range page.Items {
			names = append(names, d.Type)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	require.Equal(t, []string{"order", "parcel"}, names)
	mermaid, err := c.Diagram(ctx, "order", "", 0)
	require.NoError(t, err)
	require.Contains(t, mermaid, "stateDiagram")
	dot, err := c.Diagram(ctx, "order", "dot", 1)
	require.NoError(t, err)
	require.Contains(t, dot, "digraph")
	_, err = c.GetDefinition(ctx, "nothing", 0)
	require.True(t, client.IsProblem(err, "type_not_found"), "%v", err)

	// A dry run decides and commits nothing.
	place := client.Input{Type: "place", Data: data(`{"total": 40, "order_ref": "C-1"}`)}
	res, err := c.Send(ctx, "order", "c-1", place, client.SendOptions{DryRun: true})
	require.NoError(t, err)
	require.Equal(t, client.OutcomeAccepted, res.Outcome)
	_, err = c.GetWorkflow(ctx, "order", "c-1", 0)
	require.True(t, client.IsProblem(err, "workflow_not_found"), "%v", err)

	// Accepted, then replayed by its idempotency key; conditions; rejected.
	zero := int64(0)
	res, err = c.Send(ctx, "order", "c-1", place, client.SendOptions{IdempotencyKey: "place-c-1", IfVersion: &zero})
	require.NoError(t, err)
	require.Equal(t, client.OutcomeAccepted, res.Outcome)
	require.False(t, res.Replayed)
	require.Equal(t, "awaiting_payment", res.Workflow.State.Name)
	require.Nil(t, res.Workflow.CompletedAt)
	require.Len(t, res.Effects, 1)
	require.Len(t, res.Timers.Scheduled, 1)
	require.Equal(t, "payment_timeout", res.Timers.Scheduled[0].Key)
	again, err := c.Send(ctx, "order", "c-1", place, client.SendOptions{IdempotencyKey: "place-c-1"})
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, res.Workflow.Version, again.Workflow.Version)
	seven := int64(7)
	_, err = c.Send(ctx, "order", "c-1", client.Input{Type: "pay", Data: data(`{"amount": 40}`)}, client.SendOptions{IfVersion: &seven})
	require.True(t, client.IsProblem(err, "version_mismatch"), "%v", err)
	rejected, err := c.Send(ctx, "order", "c-1", client.Input{Type: "pay", Data: data(`{"amount": 1}`)}, client.SendOptions{})
	require.NoError(t, err, "a rejection is a decision, not an error")
	require.Equal(t, client.OutcomeRejected, rejected.Outcome)
	require.Equal(t, "payment is below the order total", rejected.Rejection.Reason)
	_, err = c.Send(ctx, "order", "c-2", client.Input{Type: "place", Data: data(`{"total": 1, "order_ref": "C-1"}`)}, client.SendOptions{})
	require.True(t, client.IsProblem(err, "unique_key_conflict"), "%v", err)

	// A delayed input is stored as a timer; an id the server makes.
	scheduled, err := c.Send(ctx, "order", "c-1", client.Input{Type: "pay", Data: data(`{"amount": 40}`), DeliverAfter: "1h"}, client.SendOptions{})
	require.NoError(t, err)
	require.Equal(t, client.OutcomeScheduled, scheduled.Outcome)
	require.NotNil(t, scheduled.Timer)
	require.Equal(t, "pay", scheduled.Timer.Input.Type)
	made, err := c.Send(ctx, "order", "", client.Input{Type: "place", Data: data(`{"total": 2, "order_ref": "C-3"}`)}, client.SendOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, made.Workflow.ID)

	// History, inputs, state at a version.
	w, err := c.GetWorkflow(ctx, "order", "c-1", 1)
	require.NoError(t, err)
	require.Equal(t, "awaiting_payment", w.State.Name)
	events, err := c.ListEvents(ctx, "order", "c-1", "", 0)
	require.NoError(t, err)
	require.Len(t, events.Items, 1)
	require.Equal(t, "OrderPlaced", events.Items[0].Type)
	inputs, err := c.ListInputs(ctx, "order", "c-1", "", 0)
	require.NoError(t, err)
	var outcomes []string
	for _, in := range inputs.Items {
		outcomes = append(outcomes, in.Type+":"+in.Outcome)
	}
	require.Equal(t, []string{"place:accepted", "pay:rejected"}, outcomes)
	children, err := c.ListChildren(ctx, "order", "c-1", "running", "", 10)
	require.NoError(t, err)
	require.Empty(t, children.Items, "an order sends no children")
	_, err = c.ListChildren(ctx, "order", "nobody", "", "", 0)
	require.True(t, client.IsProblem(err, "workflow_not_found"), "%v", err)

	// Effects and timers, filtered; retrying what is not dead is a problem.
	effects, err := c.ListEffects(ctx, client.ListFilter{WorkflowType: "order", WorkflowID: "c-1", Limit: 10})
	require.NoError(t, err)
	require.Len(t, effects.Items, 1)
	e, err := c.GetEffect(ctx, effects.Items[0].ID)
	require.NoError(t, err)
	require.Equal(t, "reserve_stock", e.Name)
	require.JSONEq(t, `{"total": 40}`, string(e.Payload))
	_, err = c.RetryEffect(ctx, e.ID)
	require.True(t, client.IsProblem(err, "wrong_status"), "%v", err)
	timers, err := c.ListTimers(ctx, client.ListFilter{WorkflowID: "c-1", Status: "pending"})
	require.NoError(t, err)
	require.Len(t, timers.Items, 2, "payment_timeout and the delayed pay")
	_, err = c.RetryTimer(ctx, timers.Items[0].ID)
	require.True(t, client.IsProblem(err, "wrong_status"), "%v", err)

	// Terminate: the instance ends, its timers are cancelled; twice is already completed.
	ended, err := c.Terminate(ctx, "order", "c-1", "customer cancelled by phone", client.TerminateOptions{})
	require.NoError(t, err)
	require.Equal(t, client.OutcomeAccepted, ended.Outcome)
	require.Equal(t, "terminated", ended.Workflow.Status)
	require.NotNil(t, ended.Workflow.CompletedAt)
	timers, err = c.ListTimers(ctx, client.ListFilter{WorkflowID: "c-1", Status: "cancelled"})
	require.NoError(t, err)
	require.Len(t, timers.Items, 2)
	twice, err := c.Terminate(ctx, "order", "c-1", "again", client.TerminateOptions{})
	require.NoError(t, err)
	require.Equal(t, client.OutcomeAlreadyCompleted, twice.Outcome)
	_, err = c.Terminate(ctx, "order", "c-404", "x", client.TerminateOptions{})
	require.True(t, client.IsProblem(err, "workflow_not_found"), "%v", err)

	// A request that cannot be made is an error, not a *Problem.
	gone, err := client.New("http://127.0.0.1:1")
	require.NoError(t, err)
	_, err = gone.GetWorkflow(ctx, "order", "c-1", 0)
	require.Error(t, err)
	require.False(t, errors.As(err, &p))
	require.True(t, strings.HasPrefix(err.Error(), "client: GET "), "%v", err)
}
