// Command oapicodegen runs the README walk-through, and a webhook round trip, through
// the client oapi-codegen generates from openapi/openapi.json (models and
// ClientWithResponses): every outcome, workflow state and status, and problem type is
// read through the generated types, with no cast and no hand-written API type.
package main

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../../../openapi/openapi.json

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/oapi-codegen/oapi-codegen/v2/pkg/securityprovider"

	"github.com/ironflow/ironflow/test/clients/go/oapicodegen/api"
	"github.com/ironflow/ironflow/test/clients/go/walk"
)

func main() {
	env := walk.FromEnv()
	ctx := context.Background()
	bearer, err := securityprovider.NewSecurityProviderBearerToken(env.Key)
	walk.Must(err, "bearer token")
	c, err := api.NewClientWithResponses(env.URL, api.WithRequestEditorFn(bearer.Intercept))
	walk.Must(err, "client")

	// Each run has its own type (so its own webhook), created here.
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	typ := "order_oapi_codegen_" + run
	id := "o-" + run

	// Define the type from examples/order.json, decoded into the generated document.
	var def api.DefinitionDocument
	walk.Must(json.Unmarshal(walk.OrderDefinition(), &def), "decode examples/order.json")
	put, err := c.PutWorkflowTypeWithResponse(ctx, typ, def)
	walk.Must(err, "define")
	walk.Check(put.JSON201 != nil && put.JSON201.Version == 1, "define: %d %s", put.StatusCode(), put.Body)
	again, err := c.PutWorkflowTypeWithResponse(ctx, typ, def)
	walk.Must(err, "define again")
	walk.Check(again.JSON200 != nil && again.JSON200.Version == 1, "define again is unchanged: %d %s", again.StatusCode(), again.Body)

	// Register a webhook: every effect of the type is POSTed, signed, to a receiver on
	// this machine; it answers reserve_stock with the input "reserved".
	recv := walk.StartReceiver()
	defer recv.Close()
	hook, err := c.PutWebhookWithResponse(ctx, typ, api.WebhookRequest{Url: recv.URL})
	walk.Must(err, "webhook")
	walk.Check(hook.JSON201 != nil && hook.JSON201.Status == api.Active, "webhook: %d %s", hook.StatusCode(), hook.Body)
	recv.SetSecret(hook.JSON201.Secret)

	send := func(id, input string, data map[string]any) *api.SendInputResponse {
		body := api.InputRequest{Type: input}
		if data != nil {
			body.Data = &data
		}
		r, err := c.SendInputWithResponse(ctx, typ, id, nil, body)
		walk.Must(err, "send "+input)
		return r
	}

	// Place: accepted, awaiting payment, not completed, one effect.
	placed := send(id, "place", map[string]any{"total": 40, "order_ref": "A-" + run})
	walk.Check(placed.JSON200 != nil && placed.JSON200.Outcome == api.ResultOutcomeAccepted, "place: %d %s", placed.StatusCode(), placed.Body)
	wf := placed.JSON200.Workflow
	walk.Check(wf != nil && wf.State.Name == "awaiting_payment" && wf.Status == api.WorkflowStatusRunning, "place: state")
	walk.Check(wf.CompletedAt == nil, "place: completed_at is null")
	walk.Check(placed.JSON200.Effects != nil && len(*placed.JSON200.Effects) == 1, "place: one effect")
	effect := (*placed.JSON200.Effects)[0]
	walk.Check(effect.Name == "reserve_stock", "place: effect %s", effect.Name)

	// The receiver gets reserve_stock, signed; its answer is applied as "reserved".
	walk.Eventually("reserve_stock delivered", func() bool {
		r, err := c.GetEffectWithResponse(ctx, effect.Id)
		walk.Must(err, "get effect")
		return r.JSON200 != nil && r.JSON200.Status == api.EffectStatusDelivered
	})
	got, err := c.GetEffectWithResponse(ctx, effect.Id)
	walk.Must(err, "get effect")
	walk.Check(got.JSON200 != nil && got.JSON200.DeliveredAt != nil && got.JSON200.Attempts != nil, "effect: delivered_at and attempts")
	last := (*got.JSON200.Attempts)[len(*got.JSON200.Attempts)-1]
	walk.Check(last.StatusCode != nil && *last.StatusCode == http.StatusOK, "effect: the receiver answered 200")
	walk.Check(last.RoutedOutcome != nil && *last.RoutedOutcome == string(api.ResultOutcomeAccepted), "effect: the answer was routed")
	walk.Check(recv.Got("reserve_stock") >= 1 && len(recv.Bad()) == 0, "receiver: %d signed, refused %v", recv.Got("reserve_stock"), recv.Bad())

	// Underpay: rejected, a 409 decision with its typed reason.
	under := send(id, "pay", map[string]any{"amount": 30})
	walk.Check(under.StatusCode() == http.StatusConflict && under.JSON409 != nil, "underpay: %d %s", under.StatusCode(), under.Body)
	walk.Check(under.JSON409.Outcome == api.ResultOutcomeRejected, "underpay: outcome %s", under.JSON409.Outcome)
	walk.Check(under.JSON409.Rejection != nil && under.JSON409.Rejection.Reason == "payment is below the order total", "underpay: reason")

	// Another order with the same order_ref while this one runs: a 409 problem, not a
	// decision, decoded into the typed problem.
	dup := send("dup-"+run, "place", map[string]any{"total": 1, "order_ref": "A-" + run})
	walk.Check(dup.StatusCode() == http.StatusConflict && dup.JSON409 == nil && dup.ApplicationproblemJSON409 != nil, "duplicate: %d %s", dup.StatusCode(), dup.Body)
	walk.Check(dup.ApplicationproblemJSON409.Type == api.UniqueKeyConflict, "duplicate: problem %s", dup.ApplicationproblemJSON409.Type)

	// Pay, ship: accepted; the workflow is done and completed.
	paid := send(id, "pay", map[string]any{"amount": 40})
	walk.Check(paid.JSON200 != nil && paid.JSON200.Workflow != nil && paid.JSON200.Workflow.State.Name == "paid", "pay: %s", paid.Body)
	shipped := send(id, "shipped", nil)
	walk.Check(shipped.JSON200 != nil && shipped.JSON200.Workflow != nil, "ship: %s", shipped.Body)
	walk.Check(shipped.JSON200.Workflow.Status == api.WorkflowStatusCompleted && shipped.JSON200.Workflow.CompletedAt != nil, "ship: completed")

	// Anything later: already completed.
	late := send(id, "pay", map[string]any{"amount": 40})
	walk.Check(late.JSON409 != nil && late.JSON409.Outcome == api.ResultOutcomeAlreadyCompleted, "late: %d %s", late.StatusCode(), late.Body)

	// Read the workflow, its history page by page (one event a page, following
	// next_cursor), and its state at version 1.
	got1, err := c.GetWorkflowWithResponse(ctx, typ, id, nil)
	walk.Must(err, "get")
	walk.Check(got1.JSON200 != nil && got1.JSON200.Version == 4 && got1.JSON200.State.Name == "done", "get: %s", got1.Body)
	var events []string
	one := 1
	params := &api.ListEventsParams{Limit: &one}
	for pages := 0; ; pages++ {
		walk.Check(pages < 10, "events: next_cursor does not end")
		r, err := c.ListEventsWithResponse(ctx, typ, id, params)
		walk.Must(err, "events")
		walk.Check(r.JSON200 != nil, "events: %d %s", r.StatusCode(), r.Body)
		for _, e := range r.JSON200.Items {
			events = append(events, e.Type)
		}
		if r.JSON200.NextCursor == nil {
			break
		}
		params.Cursor = r.JSON200.NextCursor
	}
	walk.Check(strings.Join(events, ",") == "OrderPlaced,StockReserved,PaymentReceived,Shipped", "events: %v", events)
	at1 := 1
	v1, err := c.GetWorkflowWithResponse(ctx, typ, id, &api.GetWorkflowParams{AtVersion: &at1})
	walk.Check(err == nil && v1.JSON200 != nil && v1.JSON200.State.Name == "awaiting_payment", "at_version=1: %v %s", err, v1.Body)

	// Terminate a second order: terminated; a second terminate is already completed.
	id2 := "t-" + run
	placed2 := send(id2, "place", map[string]any{"total": 5, "order_ref": "B-" + run})
	walk.Check(placed2.JSON200 != nil, "place 2: %s", placed2.Body)
	reason := api.TerminateRequest{Reason: "customer cancelled by phone"}
	term, err := c.TerminateWorkflowWithResponse(ctx, typ, id2, nil, reason)
	walk.Must(err, "terminate")
	walk.Check(term.JSON200 != nil && term.JSON200.Workflow != nil && term.JSON200.Workflow.Status == api.WorkflowStatusTerminated, "terminate: %d %s", term.StatusCode(), term.Body)
	term2, err := c.TerminateWorkflowWithResponse(ctx, typ, id2, nil, reason)
	walk.Must(err, "terminate again")
	walk.Check(term2.JSON409 != nil && term2.JSON409.Outcome == api.ResultOutcomeAlreadyCompleted, "terminate again: %d %s", term2.StatusCode(), term2.Body)

	// List the type's instances a page at a time: both, each with its status.
	statuses := map[string]api.WorkflowStatus{}
	list := &api.ListWorkflowsParams{Type: &typ, Limit: &one}
	for pages := 0; ; pages++ {
		walk.Check(pages < 10, "workflows: next_cursor does not end")
		r, err := c.ListWorkflowsWithResponse(ctx, list)
		walk.Must(err, "workflows")
		walk.Check(r.JSON200 != nil && len(r.JSON200.Items) <= 1, "workflows: %d %s", r.StatusCode(), r.Body)
		for _, w := range r.JSON200.Items {
			statuses[w.Id] = w.Status
		}
		if r.JSON200.NextCursor == nil {
			break
		}
		list.Cursor = r.JSON200.NextCursor
	}
	walk.Check(len(statuses) == 2 && statuses[id] == api.WorkflowStatusCompleted && statuses[id2] == api.WorkflowStatusTerminated, "workflows: %v", statuses)
	terminated := api.ListWorkflowsParamsStatusTerminated
	ended, err := c.ListWorkflowsWithResponse(ctx, &api.ListWorkflowsParams{Type: &typ, Status: &terminated})
	walk.Must(err, "workflows ?status=terminated")
	walk.Check(ended.JSON200 != nil && len(ended.JSON200.Items) == 1 && ended.JSON200.Items[0].Id == id2, "workflows ?status=terminated: %s", ended.Body)

	// The effect of the terminated order ends delivered (its answer recorded, not
	// routed) or cancelled, whichever came first.
	walk.Eventually("the terminated order's effect ends", func() bool {
		r, err := c.ListWorkflowEffectsWithResponse(ctx, typ, id2, nil)
		walk.Must(err, "effects")
		walk.Check(r.JSON200 != nil && len(r.JSON200.Items) == 1, "effects: %s", r.Body)
		return slices.Contains([]api.EffectStatus{api.EffectStatusDelivered, api.EffectStatusCancelled}, r.JSON200.Items[0].Status)
	})

	// A problem: its type is one of the documented problem types.
	missing, err := c.GetWorkflowWithResponse(ctx, typ, "no-such-order", nil)
	walk.Must(err, "missing")
	walk.Check(missing.ApplicationproblemJSON404 != nil && missing.ApplicationproblemJSON404.Type == api.WorkflowNotFound, "missing: %d %s", missing.StatusCode(), missing.Body)

	fmt.Println("go (oapi-codegen): walk-through passed")
}
