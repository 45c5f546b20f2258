package workflow

import (
	"os"
	"testing"
)

func BenchmarkParseOrder(b *testing.B) {
	body, err := os.ReadFile("testdata/order.json")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Parse("order", body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewEnv(b *testing.B) {
	for b.Loop() {
		if _, err := newEnv(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecideOrderPay(b *testing.B) {
	d := orderDefinition(b)
	state := st("awaiting_payment", `{"total": 40, "order_ref": "r-1"}`)
	input := in("pay", `{"amount": 41}`)
	for b.Loop() {
		if _, err := Decide(d, testWF, state, input, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
