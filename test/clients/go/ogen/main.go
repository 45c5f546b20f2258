// Command ogen runs the README walk-through, and a webhook round trip, through the
// client ogen generates from openapi/openapi.json: every answer is one of the
// operation's typed responses (a decision and a problem on the same 409 are two
// types), and every outcome, workflow state and status, and problem type is read
// through the generated types, with no hand-written API type.
package main

//go:generate go tool ogen -config ogen.yml -target api -package api -clean -loglevel error ../../../../openapi/openapi.json

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-faster/jx"

	"github.com/ironflow/ironflow/test/clients/go/ogen/api"
	"github.com/ironflow/ironflow/test/clients/go/walk"
)

// bearer is the SecuritySource: the API key as an HTTP bearer token.
type bearer string

func (b bearer) BearerAuth(context.Context, api.OperationName) (api.BearerAuth, error) {
	return api.BearerAuth{Token: string(b)}, nil
}

// data builds an input's data; ogen keeps free-form values as raw JSON.
func data(kv map[string]string) api.OptInputRequestData {
	d := api.InputRequestData{}
	for k, v := range kv {
		d[k] = jx.Raw(v)
	}
	return api.NewOptInputRequestData(d)
}

func main() {
	env := walk.FromEnv()
	ctx := context.Background()
	c, err := api.NewClient(env.URL, bearer(env.Key))
	walk.Must(err, "client")

	// Each run has its own type (so its own webhook), created here.
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	typ := "order_ogen_" + run
	id := "o-" + run

	// Define the type from examples/order.json, decoded into the generated document.
	var def api.DefinitionDocument
	walk.Must(def.UnmarshalJSON(walk.OrderDefinition()), "decode examples/order.json")
	put, err := c.PutWorkflowType(ctx, &def, api.PutWorkflowTypeParams{Type: typ})
	walk.Must(err, "define")
	created, ok := put.(*api.PutWorkflowTypeCreatedHeaders)
	walk.Check(ok && created.Response.Version == 1, "define: %#v", put)
	walk.Check(created.Location.Value == "/v1/workflow-types/"+typ+"/versions/1", "define: Location %q", created.Location.Value)
	again, err := c.PutWorkflowType(ctx, &def, api.PutWorkflowTypeParams{Type: typ})
	walk.Must(err, "define again")
	unchanged, ok := again.(*api.DefinitionHeaders)
	walk.Check(ok && unchanged.Response.Version == 1, "define again is unchanged: %#v", again)

	// Register a webhook: every effect of the type is POSTed, signed, to a receiver on
	// this machine; it answers reserve_stock with the input "reserved".
	recv := walk.StartReceiver()
	defer recv.Close()
	hookRes, err := c.PutWebhook(ctx, &api.WebhookRequest{URL: recv.URL}, api.PutWebhookParams{Type: typ})
	walk.Must(err, "webhook")
	hook, ok := hookRes.(*api.PutWebhookCreated)
	walk.Check(ok && hook.Response.Status == api.WebhookStatusActive, "webhook: %#v", hookRes)
	recv.SetSecret(hook.Response.Secret)

	send := func(id, input string, kv map[string]string) api.SendInputRes {
		body := &api.InputRequest{Type: input}
		if kv != nil {
			body.Data = data(kv)
		}
		r, err := c.SendInput(ctx, body, api.SendInputParams{Type: typ, ID: id})
		walk.Must(err, "send "+input)
		return r
	}
	// decided is the decision of a 200; rejected and already-completed inputs are the
	// decision of a 409 JSON answer, another type.
	decided := func(r api.SendInputRes, what string) api.Result {
		switch r := r.(type) {
		case *api.SendInputOK:
			return r.Response
		case *api.SendInputApplicationJSONConflict:
			return r.Response
		}
		walk.Failf("%s: not a decision: %#v", what, r)
		return api.Result{}
	}

	// Place: accepted, awaiting payment, not completed, one effect.
	placedRes := send(id, "place", map[string]string{"total": "40", "order_ref": `"A-` + run + `"`})
	placedOK, ok := placedRes.(*api.SendInputOK)
	walk.Check(ok, "place: %#v", placedRes)
	placed := placedOK.Response
	walk.Check(placedOK.ETag.Value == `"1"`, "place: ETag %q", placedOK.ETag.Value)
	walk.Check(placed.Outcome == api.ResultOutcomeAccepted, "place: outcome %s", placed.Outcome)
	wf, ok := placed.Workflow.Get()
	walk.Check(ok && wf.State.Name == "awaiting_payment" && wf.Status == api.WorkflowStatusRunning, "place: state")
	walk.Check(wf.CompletedAt.IsNull(), "place: completed_at is null")
	walk.Check(len(placed.Effects) == 1 && placed.Effects[0].Name == "reserve_stock", "place: effects %v", placed.Effects)
	effectID := placed.Effects[0].ID

	// The receiver gets reserve_stock, signed; its answer is applied as "reserved".
	getEffect := func() api.Effect {
		r, err := c.GetEffect(ctx, api.GetEffectParams{ID: effectID})
		walk.Must(err, "get effect")
		e, ok := r.(*api.EffectHeaders)
		walk.Check(ok, "get effect: %#v", r)
		return e.Response
	}
	walk.Eventually("reserve_stock delivered", func() bool { return getEffect().Status == api.EffectStatusDelivered })
	effect := getEffect()
	walk.Check(!effect.DeliveredAt.IsNull() && len(effect.Attempts) > 0, "effect: delivered_at and attempts")
	last := effect.Attempts[len(effect.Attempts)-1]
	walk.Check(last.StatusCode.Value == 200, "effect: the receiver answered %d", last.StatusCode.Value)
	walk.Check(last.RoutedOutcome.Value == string(api.ResultOutcomeAccepted), "effect: the answer was routed: %q", last.RoutedOutcome.Value)
	walk.Check(recv.Got("reserve_stock") >= 1 && len(recv.Bad()) == 0, "receiver: %d signed, refused %v", recv.Got("reserve_stock"), recv.Bad())

	// Underpay: rejected, a 409 decision with its typed reason.
	under := send(id, "pay", map[string]string{"amount": "30"})
	rejected, ok := under.(*api.SendInputApplicationJSONConflict)
	walk.Check(ok && rejected.Response.Outcome == api.ResultOutcomeRejected, "underpay: %#v", under)
	walk.Check(rejected.Response.Rejection.Value.Reason == "payment is below the order total", "underpay: reason")

	// Another order with the same order_ref while this one runs: a 409 problem, not a
	// decision, decoded into the typed problem.
	dup := send("dup-"+run, "place", map[string]string{"total": "1", "order_ref": `"A-` + run + `"`})
	problem, ok := dup.(*api.SendInputConflictApplicationProblemJSONHeaders)
	walk.Check(ok && problem.Response.Type == api.ProblemTypeUniqueKeyConflict, "duplicate: %#v", dup)

	// Pay, ship: accepted; the workflow is done and completed.
	paid := decided(send(id, "pay", map[string]string{"amount": "40"}), "pay")
	walk.Check(paid.Workflow.Value.State.Name == "paid", "pay: state %s", paid.Workflow.Value.State.Name)
	shipped := decided(send(id, "shipped", nil), "ship")
	walk.Check(shipped.Workflow.Value.Status == api.WorkflowStatusCompleted && !shipped.Workflow.Value.CompletedAt.IsNull(), "ship: completed")

	// Anything later: already completed.
	late := send(id, "pay", map[string]string{"amount": "40"})
	lateDecision, ok := late.(*api.SendInputApplicationJSONConflict)
	walk.Check(ok && lateDecision.Response.Outcome == api.ResultOutcomeAlreadyCompleted, "late: %#v", late)

	// Read the workflow, its history page by page (one event a page, following
	// next_cursor), and its state at version 1.
	getWorkflow := func(id string, at int) api.GetWorkflowRes {
		p := api.GetWorkflowParams{Type: typ, ID: id}
		if at > 0 {
			p.AtVersion = api.NewOptInt(at)
		}
		r, err := c.GetWorkflow(ctx, p)
		walk.Must(err, "get")
		return r
	}
	now, ok := getWorkflow(id, 0).(*api.WorkflowHeaders)
	walk.Check(ok && now.Response.Version == 4 && now.Response.State.Name == "done" && now.ETag.Value == `"4"`, "get: %#v", now)
	var events []string
	params := api.ListEventsParams{Type: typ, ID: id, Limit: api.NewOptInt(1)}
	for pages := 0; ; pages++ {
		walk.Check(pages < 10, "events: next_cursor does not end")
		r, err := c.ListEvents(ctx, params)
		walk.Must(err, "events")
		page, ok := r.(*api.EventPageHeaders)
		walk.Check(ok, "events: %#v", r)
		for _, e := range page.Response.Items {
			events = append(events, e.Type)
		}
		if !page.Response.NextCursor.Set {
			break
		}
		params.Cursor = page.Response.NextCursor
	}
	walk.Check(strings.Join(events, ",") == "OrderPlaced,StockReserved,PaymentReceived,Shipped", "events: %v", events)
	v1, ok := getWorkflow(id, 1).(*api.WorkflowHeaders)
	walk.Check(ok && v1.Response.State.Name == "awaiting_payment", "at_version=1: %#v", v1)

	// Terminate a second order: terminated; a second terminate is already completed.
	id2 := "t-" + run
	decided(send(id2, "place", map[string]string{"total": "5", "order_ref": `"B-` + run + `"`}), "place 2")
	reason := &api.TerminateRequest{Reason: "customer cancelled by phone"}
	term, err := c.TerminateWorkflow(ctx, reason, api.TerminateWorkflowParams{Type: typ, ID: id2})
	walk.Must(err, "terminate")
	terminated, ok := term.(*api.TerminateWorkflowOK)
	walk.Check(ok && terminated.Response.Workflow.Value.Status == api.WorkflowStatusTerminated, "terminate: %#v", term)
	term2, err := c.TerminateWorkflow(ctx, reason, api.TerminateWorkflowParams{Type: typ, ID: id2})
	walk.Must(err, "terminate again")
	ended, ok := term2.(*api.TerminateWorkflowApplicationJSONConflict)
	walk.Check(ok && ended.Response.Outcome == api.ResultOutcomeAlreadyCompleted, "terminate again: %#v", term2)

	// List the type's instances a page at a time: both, each with its status.
	statuses := map[string]api.WorkflowStatus{}
	list := api.ListWorkflowsParams{Type: api.NewOptString(typ), Limit: api.NewOptInt(1)}
	for pages := 0; ; pages++ {
		walk.Check(pages < 10, "workflows: next_cursor does not end")
		r, err := c.ListWorkflows(ctx, list)
		walk.Must(err, "workflows")
		page, ok := r.(*api.WorkflowPageHeaders)
		walk.Check(ok && len(page.Response.Items) <= 1, "workflows: %#v", r)
		for _, w := range page.Response.Items {
			statuses[w.ID] = w.Status
		}
		if !page.Response.NextCursor.Set {
			break
		}
		list.Cursor = page.Response.NextCursor
	}
	walk.Check(len(statuses) == 2 && statuses[id] == api.WorkflowStatusCompleted && statuses[id2] == api.WorkflowStatusTerminated, "workflows: %v", statuses)
	byStatus, err := c.ListWorkflows(ctx, api.ListWorkflowsParams{Type: api.NewOptString(typ), Status: api.NewOptListWorkflowsStatus(api.ListWorkflowsStatusTerminated)})
	walk.Must(err, "workflows ?status=terminated")
	endedPage, ok := byStatus.(*api.WorkflowPageHeaders)
	walk.Check(ok && len(endedPage.Response.Items) == 1 && endedPage.Response.Items[0].ID == id2, "workflows ?status=terminated: %#v", byStatus)

	// The effect of the terminated order ends delivered (its answer recorded, not
	// routed) or cancelled, whichever came first.
	walk.Eventually("the terminated order's effect ends", func() bool {
		r, err := c.ListWorkflowEffects(ctx, api.ListWorkflowEffectsParams{Type: typ, ID: id2})
		walk.Must(err, "effects")
		page, ok := r.(*api.EffectPageHeaders)
		walk.Check(ok && len(page.Response.Items) == 1, "effects: %#v", r)
		return slices.Contains([]api.EffectStatus{api.EffectStatusDelivered, api.EffectStatusCancelled}, page.Response.Items[0].Status)
	})

	// A problem: its type is one of the documented problem types.
	missing, ok := getWorkflow("no-such-order", 0).(*api.GetWorkflowNotFound)
	walk.Check(ok && missing.Response.Type == api.ProblemTypeWorkflowNotFound, "missing: %#v", missing)

	fmt.Println("go (ogen): walk-through passed")
}
