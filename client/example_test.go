package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/ironflow/ironflow/client"
)

// Define a workflow type, send inputs and act on each decision. Runs against a server
// on 127.0.0.1:8080 (make run).
func Example() {
	ctx := context.Background()
	c, err := client.New("http://127.0.0.1:8080", client.WithAPIKey(os.Getenv("IRONFLOW_API_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	def, err := os.ReadFile("examples/order.json")
	if err != nil {
		log.Fatal(err)
	}
	if _, _, err := c.PutDefinition(ctx, "order", def); err != nil {
		log.Fatal(err) // a *client.Problem of type "invalid_definition" lists every error
	}
	res, err := c.Send(ctx, "order", "o-1", client.Input{
		Type: "place",
		Data: json.RawMessage(`{"total": 40, "order_ref": "A-100"}`),
	}, client.SendOptions{IdempotencyKey: "place-o-1"})
	switch {
	case client.IsProblem(err, "unique_key_conflict"):
		fmt.Println("another running order has this order_ref")
	case err != nil:
		log.Fatal(err)
	case res.Outcome == client.OutcomeRejected:
		fmt.Println("rejected:", res.Rejection.Reason)
	default:
		fmt.Println(res.Outcome, res.Workflow.State.Name)
	}
}
