package http

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/store/sqlite"
)

// fuzzDefinition is the DESIGN §3 order example: schemas, guards, CEL payloads, timers
// and a unique key, so fuzzed inputs reach every part of a decision.
const fuzzDefinition = `{
  "initial_state": "new",
  "unique_key": "input.data.order_ref",
  "inputs": {
    "place":  {"schema": {"type": "object", "required": ["total", "order_ref"]}},
    "pay":    {"schema": {"type": "object", "required": ["amount"]}},
    "expire": {}, "reserved": {}, "shipped": {}
  },
  "states": {
    "new": {"on": {"place": {"to": "awaiting_payment", "event": "OrderPlaced",
                              "effects": [{"name": "reserve_stock", "payload": "{'total': input.data.total}"}]}}},
    "awaiting_payment": {
      "timers": [{"key": "payment_timeout", "after": "30m", "input": {"type": "expire"}}],
      "on": {
        "pay": [
          {"if": "input.data.amount >= state.data.total", "to": "paid", "event": "PaymentReceived", "effects": [{"name": "ship"}]},
          {"reject": "payment is below the order total"}
        ],
        "reserved": {"event": "StockReserved"},
        "expire": {"to": "expired", "event": "PaymentTimedOut"}
      }
    },
    "paid": {"on": {"shipped": {"to": "done", "event": "Shipped"}}},
    "done": {"terminal": true},
    "expired": {"terminal": true}
  }
}`

// fuzzServer is a Server over a fresh SQLite store with the order type defined, shared
// by every iteration of one fuzz target.
func fuzzServer(f *testing.F) *Server {
	f.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	s := New(Config{Engine: engine.New(engine.Config{Store: st}), APIKeys: []string{"fuzz-key"}, MaxBodyBytes: 64 << 10})
	rec := serveFuzz(s, http.MethodPut, "/v1/workflow-types/order", "application/json", []byte(fuzzDefinition), nil)
	if rec.Code != http.StatusCreated {
		f.Fatalf("define order: %d %s", rec.Code, rec.Body)
	}
	return s
}

func serveFuzz(s *Server, method, target, contentType string, body []byte, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://ironflow.test/", bytes.NewReader(body))
	req.URL.Opaque = ""
	req.RequestURI = ""
	u, err := url.Parse(target)
	if err != nil {
		u = &url.URL{Path: "/v1/workflows/order/unparsable/inputs"}
	}
	req.URL = u
	req.Header.Set("Authorization", "Bearer fuzz-key")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = []string{v}
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// checkAnswer fails on a 5xx and on an error that is not problem+json.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, what string) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s: status %d: %s", what, rec.Code, rec.Body)
	}
	// A 409 may be a decision (rejected, already_completed) in plain JSON.
	if ct := rec.Header().Get("Content-Type"); rec.Code >= 400 && ct != "application/problem+json" &&
		(rec.Code != http.StatusConflict || ct != "application/json") {
		t.Fatalf("%s: status %d without problem+json: %q", what, rec.Code, rec.Header().Get("Content-Type"))
	}
}

// FuzzInput posts arbitrary ids, bodies, content types and headers to the input
// handler: nothing a client sends may answer 5xx.
func FuzzInput(f *testing.F) {
	s := fuzzServer(f)
	seeds := []struct {
		id, body, ctype, key, ifMatch, query string
	}{
		{"o-1", `{"type":"place","data":{"total":40,"order_ref":"r-1"}}`, "application/json", "k-1", "", ""},
		{"o-1", `{"type":"pay","data":{"amount":50}}`, "application/json", "", `"1"`, ""},
		{"o-1", `{"type":"pay","data":{"amount":"x"}}`, "application/json", "", "", "dry_run=true"},
		{"o 2", `{"type":"place","data":{"total":1e400,"order_ref":"r"}}`, "application/json; charset=utf-8", "", "", ""},
		{"x'; DROP TABLE inputs;--", `{"type":"place","data":{"total":1,"order_ref":{"a":[1,2,{"b":null}]}}}`, "application/merge-patch+json", "", "", ""},
		{"../../etc/passwd", `{"type":"shipped","expected_version":0}`, "application/json", "", `"0"`, ""},
		{"\x00\xff", "{\"type\":\"pay\",\"data\":{\"a\":\"\\u0000\"}}", "text/plain", "\u00e9", "W/\"1\"", "dry_run=maybe"},
		{"o-3", `{"type":"place","data":{"total":40,"order_ref":"r-3"},"deliver_after":"1s"}`, "application/json", "", "", ""},
		{"o-4", `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, "application/json", "", "", ""},
	}
	for _, sd := range seeds {
		f.Add(sd.id, []byte(sd.body), sd.ctype, sd.key, sd.ifMatch, sd.query)
	}
	f.Fuzz(func(t *testing.T, id string, body []byte, ctype, key, ifMatch, query string) {
		header := map[string]string{}
		if key != "" {
			header["Idempotency-Key"] = key
		}
		if ifMatch != "" {
			header["If-Match"] = ifMatch
		}
		target := "/v1/workflows/order/" + url.PathEscape(id) + "/inputs"
		if query != "" {
			target += "?" + url.PathEscape(query)
		}
		rec := serveFuzz(s, http.MethodPost, target, ctype, body, header)
		checkAnswer(t, rec, "POST input")
		// The server-made-id route shares the handler but not the id path.
		rec = serveFuzz(s, http.MethodPost, "/v1/workflows/order/inputs", ctype, body, header)
		checkAnswer(t, rec, "POST input (new id)")
		// What was accepted reads back.
		if rec := serveFuzz(s, http.MethodGet, "/v1/workflows/order/"+url.PathEscape(id)+"/inputs?limit=5", "", nil, nil); rec.Code >= 500 {
			t.Fatalf("GET inputs: %d %s", rec.Code, rec.Body)
		}
	})
}

// FuzzPutDefinition stores arbitrary definitions: each is stored (200/201) or refused
// with a 4xx problem, never a 5xx.
func FuzzPutDefinition(f *testing.F) {
	s := fuzzServer(f)
	for _, seed := range []string{
		fuzzDefinition,
		`{"initial_state":"a","states":{"a":{"terminal":true}}}`,
		`{"initial_state":"a","inputs":{"x":{"schema":{"type":"object","properties":{"n":{"pattern":"(a+)+$"}}}}},"states":{"a":{"on":{"x":{"to":"b","data":"{'n': input.data.n}"}}},"b":{"terminal":true}}}`,
		`{"initial_state":"a","inputs":{"x":{}},"states":{"a":{"on":{"x":[{"if":"size(input.data) > 1000000","to":"a"},{"reject":"no"}]}}}}`,
		`{"initial_state":"a","inputs":{"x":{}},"states":{"a":{"timers":[{"key":"t","after":"-1s","input":{"type":"x"}}],"on":{"x":{"to":"a"}}}}}`,
		`{"initial_state":"a","inputs":{"x":{"schema":{"$ref":"#"}}},"states":{"a":{"terminal":true}}}`,
		`{"initial_state":"a","inputs":{"x":{"schema":{"$ref":"http://127.0.0.1:1/schema.json"}}},"states":{"a":{"terminal":true}}}`,
		`{"initial_state":"a","states":{"a":{"on":{"x":{"to":"nowhere","effects":[{"name":"e","payload":"[1,2,3].map(x, [x,x,x].map(y, y))"}]}}}}}`,
		`{"unique_key":"input.data.k + 1","initial_state":"a","states":{}}`,
	} {
		f.Add("fuzzed", []byte(seed))
	}
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		rec := serveFuzz(s, http.MethodPut, "/v1/workflow-types/"+url.PathEscape(typ), "application/json", body, nil)
		checkAnswer(t, rec, "PUT definition")
		if rec.Code < 300 {
			for _, p := range []string{"", "/diagram", "/diagram?format=dot", "/versions"} {
				got := serveFuzz(s, http.MethodGet, "/v1/workflow-types/"+url.PathEscape(typ)+p, "", nil, nil)
				checkAnswer(t, got, "GET definition"+p)
			}
		}
		_, _ = io.Copy(io.Discard, rec.Body)
	})
}
