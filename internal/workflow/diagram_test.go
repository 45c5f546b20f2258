package workflow

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMermaid(t *testing.T) {
	t.Parallel()
	d := orderDefinition(t)
	got := d.Mermaid()
	require.Equal(t, `stateDiagram-v2
    [*] --> new
    new --> awaiting_payment: place / OrderPlaced effect reserve_stock timer payment_timeout 30m → expire
    awaiting_payment --> paid: pay [if] / PaymentReceived effect ship
    awaiting_payment --> awaiting_payment: reserved / StockReserved
    awaiting_payment --> expired: expire / PaymentTimedOut
    paid --> done: shipped / Shipped
    done --> [*]
    expired --> [*]
`, got)
	require.Equal(t, got, d.MermaidHighlight("nope"), "an unknown state highlights nothing")

	hl := d.MermaidHighlight("paid")
	require.True(t, strings.HasPrefix(hl, got))
	require.Contains(t, hl, "\n    classDef current ")
	require.True(t, strings.HasSuffix(hl, "    class paid current\n"))
}

func TestMermaidTimersAndText(t *testing.T) {
	t.Parallel()
	d := mustParse(t, withStates(`{
		"a": {"description": "Start; #1\nhere", "timers": [{"key": "ta", "after": "1h", "input": {"type": "go"}}],
		      "on": {"go": {"to": "b", "timers": [{"key": "tt", "at": "now", "input": {"type": "back"}}]}}},
		"b": {"on": {"back": {"to": "a", "cancel_timers": ["tt"]}}}}`))
	got := d.Mermaid()
	require.Contains(t, got, "    [*] --> a: timer ta 1h → go\n")
	require.Contains(t, got, "    a: Start, 1 here\n")
	require.Contains(t, got, "    a --> b: go / go timer tt at → back\n")
	require.Contains(t, got, "    b --> a: back / back timer ta 1h → go cancel tt\n")
	require.NotContains(t, got, "--> [*]\n", "no terminal states")
}

func TestDOT(t *testing.T) {
	t.Parallel()
	d := orderDefinition(t)
	got := d.DOT()
	require.True(t, strings.HasPrefix(got, "digraph \"order\" {\n"))
	require.True(t, strings.HasSuffix(got, "}\n"))
	for _, line := range []string{
		`  "__start" -> "new";`,
		`  "done" [shape=doublecircle];`,
		`  "new" -> "awaiting_payment" [label="place / OrderPlaced\neffect reserve_stock\ntimer payment_timeout 30m → expire"];`,
		`  "awaiting_payment" -> "paid" [label="pay [if] / PaymentReceived\neffect ship"];`,
		`  "awaiting_payment" -> "awaiting_payment" [label="reserved / StockReserved"];`,
		`  "paid" -> "done" [label="shipped / Shipped"];`,
		`  "done" -> "__end";`,
		`  "expired" -> "__end";`,
	} {
		require.Contains(t, got, line+"\n")
	}
	require.Equal(t, strings.Count(got, "{"), strings.Count(got, "}"))
}

func TestDOTEscapes(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `{"initial_state": "a", "states": {"a": {"description": "say \"hi\" \\ bye"}}}`)
	require.Contains(t, d.DOT(), `  "a" [tooltip="say \"hi\" \\ bye"];`+"\n")
}
