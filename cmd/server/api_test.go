package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestAPI drives the DESIGN §3 order example through every route, outcome and error
// status over real HTTP, against a real server on each store.
func TestAPI(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, backend, map[string]string{"IRONFLOW_MAX_BODY_BYTES": "65536"})
			s.defineOrder(t, "order")

			for name, test := range map[string]func(*testing.T, *testServer){
				"Outcomes":              testOutcomes,
				"RejectedFirstInput":    testRejectedFirstInput,
				"Idempotency":           testIdempotency,
				"IfMatch":               testIfMatch,
				"DryRun":                testDryRun,
				"ServerMadeID":          testServerMadeID,
				"UniqueKeyConflict":     testUniqueKeyConflict,
				"ListPaging":            testListPaging,
				"Definitions":           testDefinitions,
				"InvalidDefinition":     testInvalidDefinition,
				"Diagram":               testDiagram,
				"InputErrors":           testInputErrors,
				"BodyErrors":            testBodyErrors,
				"PercentEncodedIDs":     testPercentEncodedIDs,
				"Auth":                  testAuth,
				"NotFound":              testNotFound,
				"OperationsAndDocs":     testOperationsAndDocs,
				"Metrics":               testMetrics,
				"RequestIDAndAccessLog": testRequestIDAndAccessLog,
				"OddInputsNever500":     testOddInputsNever500,
				"QueryParameters":       testQueryParameters,
				"SubCollections":        testSubCollections,
				"DefinitionPaging":      testDefinitionPaging,
				"ConsoleQueries":        testConsoleQueries,
				"DiscardEffect":         testDiscardEffect,
			} {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					test(t, s)
				})
			}
		})
	}
}

func place(total float64, ref string) map[string]any {
	return map[string]any{"type": "place", "data": map[string]any{"total": total, "order_ref": ref}}
}

func pay(amount float64) map[string]any {
	return map[string]any{"type": "pay", "data": map[string]any{"amount": amount}}
}

func testOutcomes(t *testing.T, s *testServer) {
	id := "o-outcomes"
	r := s.input(t, "order", id, place(40, "R-outcomes"), nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, `"1"`, r.Header.Get("ETag"))
	b := r.JSON(t)
	require.Equal(t, "accepted", b["outcome"])
	require.Equal(t, "awaiting_payment", path(t, b, "workflow", "state", "name"))
	require.EqualValues(t, 40, path(t, b, "workflow", "state", "data", "total"))
	require.Equal(t, "running", path(t, b, "workflow", "status"))
	require.EqualValues(t, 1, path(t, b, "workflow", "version"))
	require.EqualValues(t, 1, path(t, b, "workflow", "definition_version"))
	require.Nil(t, path(t, b, "workflow", "completed_at"))
	require.Equal(t, "OrderPlaced", path(t, b, "events", 0, "type"))
	require.Equal(t, "new", path(t, b, "events", 0, "from"))
	require.Equal(t, "reserve_stock", path(t, b, "effects", 0, "name"))
	require.NotEmpty(t, path(t, b, "effects", 0, "id"))
	require.Equal(t, "payment_timeout", path(t, b, "timers", "scheduled", 0, "key"))

	// Below the total: rejected, nothing changes.
	r = s.input(t, "order", id, pay(30), nil)
	require.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	b = r.JSON(t)
	require.Equal(t, "rejected", b["outcome"])
	require.Equal(t, map[string]any{"reason": "payment is below the order total", "state": "awaiting_payment", "input": "pay"}, b["rejection"])
	require.EqualValues(t, 1, path(t, b, "workflow", "version"))

	// A transition that stays in the state.
	r = s.input(t, "order", id, map[string]any{"type": "reserved"}, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "awaiting_payment", path(t, r.JSON(t), "workflow", "state", "name"))

	r = s.input(t, "order", id, pay(40), nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	b = r.JSON(t)
	require.Equal(t, "paid", path(t, b, "workflow", "state", "name"))
	require.Equal(t, "ship", path(t, b, "effects", 0, "name"))
	require.Equal(t, []any{"payment_timeout"}, path(t, b, "timers", "cancelled"))

	r = s.input(t, "order", id, map[string]any{"type": "shipped"}, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	b = r.JSON(t)
	require.Equal(t, "done", path(t, b, "workflow", "state", "name"))
	require.Equal(t, "completed", path(t, b, "workflow", "status"))
	require.NotNil(t, path(t, b, "workflow", "completed_at"))

	// Completed: already_completed, decide never runs (even for a pay that would be
	// rejected or an undeclared-in-state input).
	r = s.input(t, "order", id, pay(40), nil)
	require.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
	b = r.JSON(t)
	require.Equal(t, "already_completed", b["outcome"])
	require.Equal(t, "done", path(t, b, "workflow", "state", "name"))

	// The instance alone, with its ETag.
	r = s.get(t, "/v1/workflows/order/"+id)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, `"4"`, r.Header.Get("ETag"))
	b = r.JSON(t)
	require.Equal(t, id, b["id"])
	require.Equal(t, "order", b["type"])
	require.Equal(t, "done", path(t, b, "state", "name"))
	require.EqualValues(t, 4, b["version"])

	// at_version replays the history.
	r = s.get(t, "/v1/workflows/order/"+id+"?at_version=1")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	b = r.JSON(t)
	require.Equal(t, "awaiting_payment", path(t, b, "state", "name"))
	require.Equal(t, "running", b["status"])
	require.EqualValues(t, 1, b["version"])
	require.Nil(t, b["completed_at"])
	r = s.get(t, "/v1/workflows/order/"+id+"?at_version=3")
	require.Equal(t, "paid", path(t, r.JSON(t), "state", "name"))
	for _, bad := range []string{"9", "0", "-1", "x"} {
		requireProblem(t, s.get(t, "/v1/workflows/order/"+id+"?at_version="+bad), http.StatusBadRequest, "invalid_argument")
	}

	// History.
	r = s.get(t, "/v1/workflows/order/"+id+"/events")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	b = r.JSON(t)
	var types []string
	for i, e := range b["items"].([]any) {
		require.EqualValues(t, i+1, path(t, e, "seq"))
		types = append(types, path(t, e, "type").(string))
	}
	require.Equal(t, []string{"OrderPlaced", "StockReserved", "PaymentReceived", "Shipped"}, types)
	require.NotContains(t, b, "next_cursor")

	// Every input and its outcome.
	r = s.get(t, "/v1/workflows/order/"+id+"/inputs")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var outcomes []string
	for _, in := range r.JSON(t)["items"].([]any) {
		outcomes = append(outcomes, path(t, in, "outcome").(string))
		require.Equal(t, "api", path(t, in, "source"))
	}
	require.Equal(t, []string{"accepted", "rejected", "accepted", "accepted", "accepted", "already_completed"}, outcomes)
}

func testRejectedFirstInput(t *testing.T, s *testServer) {
	r := s.input(t, "order", "o-rejected-first", pay(10), nil)
	require.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
	b := r.JSON(t)
	require.Equal(t, "rejected", b["outcome"])
	require.Equal(t, "new", path(t, b, "rejection", "state"))
	require.Nil(t, b["workflow"])
	require.Empty(t, r.Header.Get("ETag"))

	// No instance row…
	requireProblem(t, s.get(t, "/v1/workflows/order/o-rejected-first"), http.StatusNotFound, "workflow_not_found")
	requireProblem(t, s.get(t, "/v1/workflows/order/o-rejected-first/events"), http.StatusNotFound, "workflow_not_found")
	// …but the input record.
	r = s.get(t, "/v1/workflows/order/o-rejected-first/inputs")
	require.Equal(t, http.StatusOK, r.Status)
	require.Len(t, r.JSON(t)["items"], 1)
}

func testIdempotency(t *testing.T, s *testServer) {
	id := "o-idem"
	key := map[string]string{"Idempotency-Key": "place-once"}
	first := s.input(t, "order", id, place(10, "R-idem"), key)
	require.Equal(t, http.StatusOK, first.Status, "%s", first.Body)
	require.Empty(t, first.Header.Get("Idempotent-Replayed"))

	again := s.input(t, "order", id, place(10, "R-idem"), key)
	require.Equal(t, http.StatusOK, again.Status)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, string(first.Body), string(again.Body), "a replay returns the first body byte for byte")

	// The same key with another body.
	p := requireProblem(t, s.input(t, "order", id, place(11, "R-idem"), key), http.StatusUnprocessableEntity, "idempotency_key_reused")
	require.Contains(t, p["detail"], "idempotency")

	// A rejection replays as a rejection and decides nothing.
	rkey := map[string]string{"Idempotency-Key": "underpay"}
	rej := s.input(t, "order", id, pay(1), rkey)
	require.Equal(t, http.StatusConflict, rej.Status)
	rej2 := s.input(t, "order", id, pay(1), rkey)
	require.Equal(t, http.StatusConflict, rej2.Status)
	require.Equal(t, "true", rej2.Header.Get("Idempotent-Replayed"))
	require.Equal(t, string(rej.Body), string(rej2.Body))

	r := s.get(t, "/v1/workflows/order/"+id+"/inputs")
	require.Len(t, r.JSON(t)["items"], 2, "replays record nothing")

	requireProblem(t, s.input(t, "order", id, pay(1), map[string]string{"Idempotency-Key": "bad\tkey"}), http.StatusBadRequest, "malformed_request")
}

func testIfMatch(t *testing.T, s *testServer) {
	id := "o-ifmatch"
	r := s.input(t, "order", id, place(10, "R-ifmatch"), map[string]string{"If-Match": `"0"`})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	p := requireProblem(t, s.input(t, "order", id, map[string]any{"type": "reserved"}, map[string]string{"If-Match": `"0"`}),
		http.StatusPreconditionFailed, "version_mismatch")
	require.NotEmpty(t, p["detail"])

	r = s.input(t, "order", id, map[string]any{"type": "reserved"}, map[string]string{"If-Match": r.Header.Get("ETag")})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, `"2"`, r.Header.Get("ETag"))

	// expected_version in the body works the same way.
	requireProblem(t, s.input(t, "order", id, map[string]any{"type": "reserved", "expected_version": 1}, nil),
		http.StatusPreconditionFailed, "version_mismatch")
	r = s.input(t, "order", id, map[string]any{"type": "reserved", "expected_version": 2}, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	requireProblem(t, s.input(t, "order", id, map[string]any{"type": "reserved"}, map[string]string{"If-Match": "abc"}),
		http.StatusBadRequest, "malformed_request")
	requireProblem(t, s.input(t, "order", id, map[string]any{"type": "reserved", "expected_version": 3}, map[string]string{"If-Match": `"4"`}),
		http.StatusBadRequest, "malformed_request")
	p = requireProblem(t, s.input(t, "order", id, map[string]any{"type": "reserved", "expected_version": -1}, nil),
		http.StatusUnprocessableEntity, "invalid_request")
	require.Equal(t, "/expected_version", path(t, p, "errors", 0, "path"))
}

func testDryRun(t *testing.T, s *testServer) {
	id := "o-dry"
	r := s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/order/" + id + "/inputs?dry_run=true", Body: place(10, "R-dry")})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "accepted", r.JSON(t)["outcome"])
	require.Equal(t, "awaiting_payment", path(t, r.JSON(t), "workflow", "state", "name"))

	// Nothing was committed: no instance, no input record, the unique key is free.
	requireProblem(t, s.get(t, "/v1/workflows/order/"+id), http.StatusNotFound, "workflow_not_found")
	r = s.get(t, "/v1/workflows/order/"+id+"/inputs")
	require.Empty(t, r.JSON(t)["items"])
	r = s.input(t, "order", id, place(10, "R-dry"), nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	// A dry-run rejection is a 409 too.
	r = s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/order/" + id + "/inputs?dry_run=true", Body: pay(1)})
	require.Equal(t, http.StatusConflict, r.Status)
	r = s.get(t, "/v1/workflows/order/"+id+"/inputs")
	require.Len(t, r.JSON(t)["items"], 1)

	requireProblem(t, s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/order/" + id + "/inputs?dry_run=maybe", Body: pay(1)}),
		http.StatusBadRequest, "invalid_argument")
}

func testServerMadeID(t *testing.T, s *testServer) {
	r := s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/order/inputs", Body: place(5, "R-auto-1")})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	id := path(t, r.JSON(t), "workflow", "id").(string)
	u, err := uuid.Parse(id)
	require.NoError(t, err)
	require.EqualValues(t, 7, u.Version())
	require.Equal(t, "/v1/workflows/order/"+id, r.Header.Get("Location"))
	require.Equal(t, http.StatusOK, s.get(t, r.Header.Get("Location")).Status)

	// With an Idempotency-Key the id is derived from it, so a retry replays.
	key := map[string]string{"Idempotency-Key": "create-auto-2"}
	first := s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/order/inputs", Body: place(5, "R-auto-2"), Header: key})
	require.Equal(t, http.StatusOK, first.Status, "%s", first.Body)
	again := s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/order/inputs", Body: place(5, "R-auto-2"), Header: key})
	require.Equal(t, http.StatusOK, again.Status)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, first.Header.Get("Location"), again.Header.Get("Location"))
	require.Equal(t, string(first.Body), string(again.Body))

	requireProblem(t, s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/nope/inputs", Body: place(5, "x")}), http.StatusNotFound, "type_not_found")
}

func testUniqueKeyConflict(t *testing.T, s *testServer) {
	r := s.input(t, "order", "o-unique-1", place(10, "R-unique"), nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	p := requireProblem(t, s.input(t, "order", "o-unique-2", place(10, "R-unique"), nil), http.StatusConflict, "unique_key_conflict")
	require.Contains(t, p["detail"], "unique key")
	require.NotContains(t, p["detail"], "sqlite")
	require.NotContains(t, p["detail"], "postgres")
	require.NotContains(t, p["detail"], "execute")
	requireProblem(t, s.get(t, "/v1/workflows/order/o-unique-2"), http.StatusNotFound, "workflow_not_found")
}

func testListPaging(t *testing.T, s *testServer) {
	const typ = "order_paging"
	s.defineOrder(t, typ)
	want := map[string]bool{}
	for i := range 5 {
		id := fmt.Sprintf("p-%d", i)
		want[id] = true
		r := s.input(t, typ, id, place(10, id), nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	}
	r := s.input(t, typ, "p-0", pay(10), nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	got := map[string]bool{}
	cursor, pages := "", 0
	for {
		q := url.Values{"type": {typ}, "limit": {"2"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := s.get(t, "/v1/workflows?"+q.Encode())
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		b := r.JSON(t)
		pages++
		for _, it := range b["items"].([]any) {
			got[path(t, it, "id").(string)] = true
		}
		next, ok := b["next_cursor"].(string)
		if !ok {
			break
		}
		require.NotEmpty(t, next)
		cursor = next
		require.Less(t, pages, 5)
	}
	require.Equal(t, want, got)
	require.Equal(t, 3, pages)

	// Filters.
	r = s.get(t, "/v1/workflows?type="+typ+"&state=paid")
	b := r.JSON(t)
	require.Len(t, b["items"], 1)
	require.Equal(t, "p-0", path(t, b, "items", 0, "id"))
	r = s.get(t, "/v1/workflows?type="+typ+"&status=running&state=awaiting_payment")
	require.Len(t, r.JSON(t)["items"], 4)
	r = s.get(t, "/v1/workflows?type="+typ+"&status=completed")
	require.Empty(t, r.JSON(t)["items"])

	requireProblem(t, s.get(t, "/v1/workflows?status=bogus"), http.StatusBadRequest, "invalid_argument")
	requireProblem(t, s.get(t, "/v1/workflows?limit=0"), http.StatusBadRequest, "invalid_argument")
	requireProblem(t, s.get(t, "/v1/workflows?limit=501"), http.StatusBadRequest, "invalid_argument")
	requireProblem(t, s.get(t, "/v1/workflows?cursor=%21%21not-a-cursor"), http.StatusBadRequest, "invalid_cursor")

	// Events page by seq.
	for range 2 {
		require.Equal(t, http.StatusOK, s.input(t, typ, "p-1", map[string]any{"type": "reserved"}, nil).Status)
	}
	r = s.get(t, "/v1/workflows/"+typ+"/p-1/events?limit=2")
	b = r.JSON(t)
	require.Len(t, b["items"], 2)
	require.Equal(t, "2", b["next_cursor"])
	r = s.get(t, "/v1/workflows/"+typ+"/p-1/events?limit=2&after=2")
	b = r.JSON(t)
	require.Len(t, b["items"], 1)
	require.EqualValues(t, 3, path(t, b, "items", 0, "seq"))
	require.NotContains(t, b, "next_cursor")
	requireProblem(t, s.get(t, "/v1/workflows/"+typ+"/p-1/events?after=-1"), http.StatusBadRequest, "invalid_argument")
	// cursor, as every list takes it: a generic paginator that follows next_cursor ends.
	r = s.get(t, "/v1/workflows/"+typ+"/p-1/events?limit=2&cursor=2")
	b = r.JSON(t)
	require.Len(t, b["items"], 1)
	require.EqualValues(t, 3, path(t, b, "items", 0, "seq"))
	require.NotContains(t, b, "next_cursor")
	require.Equal(t, http.StatusOK, s.get(t, "/v1/workflows/"+typ+"/p-1/events?cursor=2&after=2").Status)
	requireProblem(t, s.get(t, "/v1/workflows/"+typ+"/p-1/events?cursor=1&after=2"), http.StatusBadRequest, "invalid_argument")
	requireProblem(t, s.get(t, "/v1/workflows/"+typ+"/p-1/events?cursor=x"), http.StatusBadRequest, "invalid_cursor")

	// Inputs page by cursor.
	r = s.get(t, "/v1/workflows/"+typ+"/p-1/inputs?limit=2")
	b = r.JSON(t)
	require.Len(t, b["items"], 2)
	next := b["next_cursor"].(string)
	r = s.get(t, "/v1/workflows/"+typ+"/p-1/inputs?limit=2&cursor="+url.QueryEscape(next))
	b = r.JSON(t)
	require.Len(t, b["items"], 1)
	require.NotContains(t, b, "next_cursor")
	requireProblem(t, s.get(t, "/v1/workflows/"+typ+"/p-1/inputs?cursor=garbage!"), http.StatusBadRequest, "invalid_cursor")
}

func testDefinitions(t *testing.T, s *testServer) {
	const typ = "order_versions"
	def := orderDefinition(t)
	s.defineOrder(t, typ)

	// An identical PUT makes no version.
	r := s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/" + typ, Body: def})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.EqualValues(t, 1, r.JSON(t)["version"])
	require.Empty(t, r.Header.Get("Location"))

	// An instance pinned to version 1.
	require.Equal(t, http.StatusOK, s.input(t, typ, "v-1", place(10, "R-v"), nil).Status)

	changed := strings.Replace(string(def), "Order lifecycle", "Order lifecycle, v2", 1)
	r = s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/" + typ, Body: changed})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Equal(t, "/v1/workflow-types/"+typ+"/versions/2", r.Header.Get("Location"))
	b := r.JSON(t)
	require.EqualValues(t, 2, b["version"])
	require.Equal(t, typ, b["type"])
	require.Equal(t, "Order lifecycle, v2", path(t, b, "definition", "description"))
	require.NotEmpty(t, b["created_at"])

	r = s.get(t, "/v1/workflow-types/"+typ)
	require.Equal(t, http.StatusOK, r.Status)
	require.EqualValues(t, 2, r.JSON(t)["version"])

	r = s.get(t, "/v1/workflow-types/"+typ+"/versions/1")
	require.Equal(t, http.StatusOK, r.Status)
	b = r.JSON(t)
	require.EqualValues(t, 1, b["version"])
	require.Equal(t, "Order lifecycle", path(t, b, "definition", "description"))
	require.Equal(t, "input.data.amount >= state.data.total", path(t, b, "definition", "states", "awaiting_payment", "on", "pay", 0, "if"))

	r = s.get(t, "/v1/workflow-types/"+typ+"/versions")
	require.Equal(t, http.StatusOK, r.Status)
	require.Len(t, r.JSON(t)["items"], 2)

	r = s.get(t, "/v1/workflow-types")
	require.Equal(t, http.StatusOK, r.Status)
	var names []string
	for _, it := range r.JSON(t)["items"].([]any) {
		names = append(names, path(t, it, "type").(string))
	}
	require.Contains(t, names, typ)
	require.Contains(t, names, "order")

	// The instance stays on version 1; new ones take version 2.
	r = s.get(t, "/v1/workflows/"+typ+"/v-1")
	require.EqualValues(t, 1, r.JSON(t)["definition_version"])
	r = s.input(t, typ, "v-2", place(10, "R-v2"), nil)
	require.EqualValues(t, 2, path(t, r.JSON(t), "workflow", "definition_version"))

	requireProblem(t, s.get(t, "/v1/workflow-types/"+typ+"/versions/99"), http.StatusNotFound, "type_not_found")
	requireProblem(t, s.get(t, "/v1/workflow-types/"+typ+"/versions/abc"), http.StatusBadRequest, "invalid_argument")
	requireProblem(t, s.get(t, "/v1/workflow-types/"+typ+"/versions/0"), http.StatusBadRequest, "invalid_argument")
}

// testQueryParameters: an unknown query parameter, or one given twice, is a 400 on
// every route, as an unknown body field is (DESIGN §10).
func testQueryParameters(t *testing.T, s *testServer) {
	require.Equal(t, http.StatusOK, s.input(t, "order", "o-query", place(1, "R-query"), nil).Status)
	for _, p := range []string{
		"/v1/workflows?sate=paid",
		"/v1/workflow-types?page=2",
		"/v1/workflow-types/order?version=1",
		"/v1/workflow-types/order/versions?offset=1",
		"/v1/workflow-types/order/diagram?fmt=dot",
		"/v1/workflows/order/o-query?version=1",
		"/v1/workflows/order/o-query/events?since=1",
		"/v1/workflows/order/o-query/inputs?after=1",
		"/v1/effects?state=dead",
		"/v1/timers?type=order",
		"/metrics?x=1",
		"/healthz?verbose=1",
	} {
		requireProblem(t, s.get(t, p), http.StatusBadRequest, "unknown_query_parameter")
	}
	p := requireProblem(t, s.get(t, "/v1/workflows?sate=paid"), http.StatusBadRequest, "unknown_query_parameter")
	require.Contains(t, p["detail"], `"sate"`)
	p = requireProblem(t, s.get(t, "/v1/workflows?limit=1&limit=2"), http.StatusBadRequest, "malformed_request")
	require.Contains(t, p["detail"], "limit")
	r := s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/order/o-query/inputs?dryrun=true", Body: pay(1)})
	requireProblem(t, r, http.StatusBadRequest, "unknown_query_parameter")
	r = s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/order/o-query/inputs?dry_run=true", Body: pay(1)})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	// The console's static assets take cache busters.
	require.Equal(t, http.StatusOK, s.get(t, "/ui/js/app.js?v=1").Status)
}

// testSubCollections: the lists under an instance that does not exist answer 404, not
// an empty page, unless something is recorded for its id (a rejected first input, a
// delayed input waiting to create it).
func testSubCollections(t *testing.T, s *testServer) {
	for _, sub := range []string{"events", "effects", "timers", "inputs"} {
		requireProblem(t, s.get(t, "/v1/workflows/order/no-such-instance/"+sub), http.StatusNotFound, "workflow_not_found")
	}
	r := s.input(t, "order", "o-sub-rejected", pay(1), nil)
	require.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
	r = s.get(t, "/v1/workflows/order/o-sub-rejected/inputs")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Len(t, r.JSON(t)["items"], 1)
	r = s.input(t, "order", "o-sub-later", map[string]any{"type": "place", "deliver_after": "1h", "data": map[string]any{"total": 1, "order_ref": "R-sub-later"}}, nil)
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
	r = s.get(t, "/v1/workflows/order/o-sub-later/timers")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Len(t, r.JSON(t)["items"], 1)
}

// testDefinitionPaging: the type and version lists page with cursor and limit.
func testDefinitionPaging(t *testing.T, s *testServer) {
	const typ = "order_vpaging"
	def := string(orderDefinition(t))
	for i := range 3 {
		body := strings.Replace(def, "Order lifecycle", fmt.Sprintf("Order lifecycle %d", i), 1)
		r := s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/" + typ, Body: body})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	}
	var versions []any
	cursor := ""
	for pages := 1; ; pages++ {
		q := url.Values{"limit": {"2"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		b := s.get(t, "/v1/workflow-types/"+typ+"/versions?"+q.Encode()).JSON(t)
		for _, it := range b["items"].([]any) {
			versions = append(versions, path(t, it, "version"))
		}
		next, ok := b["next_cursor"].(string)
		if !ok {
			require.Equal(t, 2, pages)
			break
		}
		cursor = next
	}
	require.Equal(t, []any{1.0, 2.0, 3.0}, versions)

	var types []string
	cursor = ""
	for {
		q := url.Values{"limit": {"1"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		b := s.get(t, "/v1/workflow-types?"+q.Encode()).JSON(t)
		require.LessOrEqual(t, len(b["items"].([]any)), 1)
		for _, it := range b["items"].([]any) {
			types = append(types, path(t, it, "type").(string))
		}
		next, ok := b["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	require.Contains(t, types, typ)
	require.Contains(t, types, "order")
	require.IsIncreasing(t, types)
	requireProblem(t, s.get(t, "/v1/workflow-types?cursor=Not+A+Type"), http.StatusBadRequest, "invalid_cursor")
	requireProblem(t, s.get(t, "/v1/workflow-types/"+typ+"/versions?cursor=0"), http.StatusBadRequest, "invalid_cursor")
	requireProblem(t, s.get(t, "/v1/workflow-types/"+typ+"/versions?limit=501"), http.StatusBadRequest, "invalid_argument")
}

func testInvalidDefinition(t *testing.T, s *testServer) {
	bad := `{"initial_state": "nowhere", "inputs": {"go": {}}, "states": {"a": {"on": {"go": {"to": "missing", "data": "1 +"}}}}}`
	p := requireProblem(t, s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/broken", Body: bad}),
		http.StatusUnprocessableEntity, "invalid_definition")
	errs := p["errors"].([]any)
	require.GreaterOrEqual(t, len(errs), 2, "every problem is listed: %v", errs)
	for _, e := range errs {
		require.NotEmpty(t, path(t, e, "message"))
		require.True(t, strings.HasPrefix(path(t, e, "path").(string), "/"), "%v", e)
	}
	requireProblem(t, s.get(t, "/v1/workflow-types/broken"), http.StatusNotFound, "type_not_found")

	// A bad type name.
	requireProblem(t, s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/Not-Valid", Body: orderDefinition(t)}),
		http.StatusUnprocessableEntity, "invalid_definition")
}

func testDiagram(t *testing.T, s *testServer) {
	r := s.get(t, "/v1/workflow-types/order/diagram")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "text/plain; charset=utf-8", r.Header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(string(r.Body), "stateDiagram-v2"), "%s", r.Body)
	require.Contains(t, string(r.Body), "reserve_stock")

	r = s.get(t, "/v1/workflow-types/order/diagram?format=mermaid&version=1")
	require.Equal(t, http.StatusOK, r.Status)

	r = s.get(t, "/v1/workflow-types/order/diagram?format=dot")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "text/vnd.graphviz; charset=utf-8", r.Header.Get("Content-Type"))
	require.Contains(t, string(r.Body), "digraph")

	requireProblem(t, s.get(t, "/v1/workflow-types/order/diagram?format=svg"), http.StatusBadRequest, "invalid_argument")
	requireProblem(t, s.get(t, "/v1/workflow-types/order/diagram?version=7"), http.StatusNotFound, "type_not_found")
	requireProblem(t, s.get(t, "/v1/workflow-types/nope/diagram"), http.StatusNotFound, "type_not_found")
}

func testInputErrors(t *testing.T, s *testServer) {
	id := "o-input-errors"
	p := requireProblem(t, s.input(t, "order", id, map[string]any{"type": "refund"}, nil), http.StatusUnprocessableEntity, "unknown_input")
	require.Equal(t, "/type", path(t, p, "errors", 0, "path"))

	p = requireProblem(t, s.input(t, "order", id, map[string]any{"type": "place", "data": map[string]any{"total": 1}}, nil),
		http.StatusUnprocessableEntity, "invalid_input")
	require.NotEmpty(t, p["errors"])
	require.True(t, strings.HasPrefix(path(t, p, "errors", 0, "path").(string), "/data"), "%v", p["errors"])

	p = requireProblem(t, s.input(t, "order", id, map[string]any{"data": map[string]any{}}, nil), http.StatusUnprocessableEntity, "invalid_request")
	require.Equal(t, "/type", path(t, p, "errors", 0, "path"))

	requireProblem(t, s.input(t, "nope", id, place(1, "x"), nil), http.StatusNotFound, "type_not_found")

	// Ids: 1–200 printable characters.
	requireProblem(t, s.input(t, "order", strings.Repeat("x", 201), place(1, "x"), nil), http.StatusBadRequest, "invalid_id")
	requireProblem(t, s.input(t, "order", "bell%07", place(1, "x"), nil), http.StatusBadRequest, "invalid_id")
	requireProblem(t, s.get(t, "/v1/workflows/order/bell%07"), http.StatusBadRequest, "invalid_id")
	r := s.input(t, "order", strings.Repeat("é", 200), place(1, "R-long-id"), nil)
	require.Equal(t, http.StatusOK, r.Status, "200 characters are fine: %s", r.Body)
}

func testBodyErrors(t *testing.T, s *testServer) {
	in := "/v1/workflows/order/o-body/inputs"
	for name, tc := range map[string]struct {
		r      req
		status int
		typ    string
		detail string
	}{
		"malformed JSON":   {req{Body: `{"type": "place",`}, 400, "malformed_request", "not valid JSON"},
		"not an object":    {req{Body: `[1, 2]`}, 400, "malformed_request", "object"},
		"invalid UTF-8":    {req{Body: []byte("{\"type\": \"pl\xffce\"}")}, 400, "malformed_request", "UTF-8"},
		"trailing data":    {req{Body: `{"type": "place"} {}`}, 400, "malformed_request", "JSON"},
		"unknown field":    {req{Body: `{"type": "place", "colour": "red"}`}, 400, "malformed_request", `"colour"`},
		"wrong field type": {req{Body: `{"type": 7}`}, 400, "malformed_request", `"type"`},
		"empty body":       {req{Body: ``}, 400, "malformed_request", "empty"},
		"too large":        {req{Body: `{"type": "place", "data": {"pad": "` + strings.Repeat("x", 70000) + `"}}`}, 413, "body_too_large", "65536"},
		"text/plain":       {req{Body: `{"type": "place"}`, Header: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type", "application/json"},
		"form encoded":     {req{Body: `type=place`, Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, "unsupported_media_type", "application/json"},
		"no content type":  {req{Body: `{"type": "place"}`, ContentType: "-"}, 415, "unsupported_media_type", "none"},
		"latin-1 charset":  {req{Body: `{"type": "place"}`, Header: map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}}, 415, "unsupported_media_type", "application/json"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.r.Method, tc.r.Path = http.MethodPost, in
			p := requireProblem(t, s.do(t, tc.r), tc.status, tc.typ)
			require.Contains(t, p["detail"], tc.detail)
		})
	}
	// +json media types and an explicit UTF-8 charset are JSON.
	r := s.do(t, req{Method: http.MethodPost, Path: in, Body: place(1, "R-body"), Header: map[string]string{"Content-Type": "application/vnd.order+json; charset=UTF-8"}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	// The definition route checks bodies the same way.
	requireProblem(t, s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/body_check", Body: `{"initial_state": `}), 400, "malformed_request")
	requireProblem(t, s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/body_check", Body: `{}`, Header: map[string]string{"Content-Type": "text/yaml"}}), 415, "unsupported_media_type")
}

func testPercentEncodedIDs(t *testing.T, s *testServer) {
	for i, id := range []string{"a/b", "100%", "with space", "q?x=1#frag", "ünïcødé ✓", "a%2Fb", "..", "inputs", "events"} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			ref := fmt.Sprintf("R-pct-%d", i)
			esc := url.PathEscape(id)
			if id == ".." {
				esc = "%2E%2E" // literal dot segments would be cleaned by any HTTP client
			}
			r := s.input(t, "order", esc, place(1, ref), nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Equal(t, id, path(t, r.JSON(t), "workflow", "id"))

			r = s.get(t, "/v1/workflows/order/"+esc)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Equal(t, id, r.JSON(t)["id"])
			r = s.get(t, "/v1/workflows/order/"+esc+"/events")
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Len(t, r.JSON(t)["items"], 1)
		})
	}
	// The server-made Location is escaped too.
	r := s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/order/inputs", Body: place(1, "R-pct-loc"), Header: map[string]string{"Idempotency-Key": "a/b c"}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, http.StatusOK, s.get(t, r.Header.Get("Location")).Status)
}

func testAuth(t *testing.T, s *testServer) {
	for _, p := range []string{"/v1/workflow-types", "/v1/workflows", "/v1/workflows/order/o-1", "/metrics", "/v1/workflow-types/order/diagram"} {
		r := s.do(t, req{Method: http.MethodGet, Path: p, NoAuth: true})
		requireProblem(t, r, http.StatusUnauthorized, "unauthorized")
		require.Equal(t, `Bearer realm="ironflow"`, r.Header.Get("WWW-Authenticate"))
	}
	for _, h := range []string{"Bearer wrong", "Bearer ", "Basic dGVzdC1rZXktMTo=", "test-key-1", "Bearer test-key-1x"} {
		r := s.do(t, req{Method: http.MethodGet, Path: "/v1/workflow-types", NoAuth: true, Header: map[string]string{"Authorization": h}})
		requireProblem(t, r, http.StatusUnauthorized, "unauthorized")
	}
	// Writes are refused before the body is looked at.
	requireProblem(t, s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/order/o-auth/inputs", Body: place(1, "x"), NoAuth: true}),
		http.StatusUnauthorized, "unauthorized")
	// Either configured key works; the scheme is case-insensitive.
	for _, h := range []string{"Bearer test-key-1", "Bearer test-key-2", "bearer test-key-2"} {
		r := s.do(t, req{Method: http.MethodGet, Path: "/v1/workflow-types", NoAuth: true, Header: map[string]string{"Authorization": h}})
		require.Equal(t, http.StatusOK, r.Status, h)
	}
	// Open routes.
	for _, p := range []string{"/healthz", "/readyz", "/openapi.json", "/docs/index.html"} {
		r := s.do(t, req{Method: http.MethodGet, Path: p, NoAuth: true})
		require.Equal(t, http.StatusOK, r.Status, p)
	}
}

func testNotFound(t *testing.T, s *testServer) {
	requireProblem(t, s.get(t, "/v1/nothing-here"), http.StatusNotFound, "not_found")
	r := s.do(t, req{Method: http.MethodDelete, Path: "/v1/workflow-types/order"})
	requireProblem(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	require.Equal(t, "GET, PUT", r.Header.Get("Allow"))
	requireProblem(t, s.get(t, "/v1/workflow-types/nope"), http.StatusNotFound, "type_not_found")
	requireProblem(t, s.get(t, "/v1/workflow-types/nope/versions"), http.StatusNotFound, "type_not_found")
	requireProblem(t, s.get(t, "/v1/workflows/order/never-seen"), http.StatusNotFound, "workflow_not_found")
	requireProblem(t, s.get(t, "/v1/workflows/nope/never-seen"), http.StatusNotFound, "workflow_not_found")
}

func testOperationsAndDocs(t *testing.T, s *testServer) {
	r := s.get(t, "/healthz")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "ok", r.JSON(t)["status"])
	r = s.get(t, "/readyz")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "ready", r.JSON(t)["status"])

	r = s.get(t, "/openapi.json")
	require.Equal(t, http.StatusOK, r.Status)
	spec := r.JSON(t)
	require.Equal(t, "3.1.0", spec["openapi"])
	require.Contains(t, spec["paths"], "/v1/workflows/{type}/{id}/inputs")
	require.NotContains(t, spec["paths"], "/docs")
	require.NotContains(t, spec["paths"], "/ui/{file}")

	// Swagger UI's own doc.json is the spec, never a 500.
	r = s.get(t, "/docs/doc.json")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "3.1.0", r.JSON(t)["openapi"])

	for _, p := range []string{"/docs", "/docs/"} {
		r = s.get(t, p)
		require.Equal(t, http.StatusFound, r.Status, p)
		require.Equal(t, "/docs/index.html", r.Header.Get("Location"))
	}
	r = s.get(t, "/docs/index.html")
	require.Equal(t, http.StatusOK, r.Status)
	require.Contains(t, r.Header.Get("Content-Type"), "text/html")
	require.Contains(t, string(r.Body), "/openapi.json")
	require.NotContains(t, string(r.Body), "https://", "no CDN: the UI works offline")
	require.Regexp(t, `persistAuthorization:\s+false`, string(r.Body), "the key is not kept in localStorage")
	csp := r.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "default-src 'none'")
	require.Contains(t, csp, "script-src 'self' 'sha256-", "the inline configuration script by its hash, no other inline script")
	require.Contains(t, csp, "connect-src 'self'", "a key typed into the page reaches no other origin")
	require.NotContains(t, csp, "unsafe-eval")
	r = s.get(t, "/docs/swagger-ui-bundle.js")
	require.Equal(t, http.StatusOK, r.Status)
	require.Greater(t, len(r.Body), 100000)
}

func testMetrics(t *testing.T, s *testServer) {
	r := s.input(t, "order", "o-metrics", place(10, "R-metrics"), nil)
	require.Equal(t, http.StatusOK, r.Status)
	r = s.input(t, "order", "o-metrics", pay(1), nil)
	require.Equal(t, http.StatusConflict, r.Status)

	r = s.get(t, "/metrics")
	require.Equal(t, http.StatusOK, r.Status)
	body := string(r.Body)
	for _, want := range []string{
		`ironflow_inputs_total{input_type="place",outcome="accepted",workflow_type="order"}`,
		`ironflow_inputs_total{input_type="pay",outcome="rejected",workflow_type="order"}`,
		`ironflow_decision_duration_seconds_bucket{workflow_type="order",le=`,
		`ironflow_http_requests_total{method="POST",route="/v1/workflows/{type}/{id}/inputs",status="200"}`,
		`ironflow_http_requests_total{method="POST",route="/v1/workflows/{type}/{id}/inputs",status="409"}`,
		`ironflow_http_request_duration_seconds_bucket{method="POST",route="/v1/workflows/{type}/{id}/inputs",le=`,
		"go_goroutines ",
		"process_",
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "o-metrics", "ids never become labels")
}

func testRequestIDAndAccessLog(t *testing.T, s *testServer) {
	r := s.do(t, req{Method: http.MethodGet, Path: "/v1/workflows/order/no-such-id", Header: map[string]string{"X-Request-Id": "trace-me-123"}})
	require.Equal(t, "trace-me-123", r.Header.Get("X-Request-Id"))
	require.Equal(t, "trace-me-123", r.JSON(t)["request_id"])
	require.Equal(t, "/v1/workflows/order/no-such-id", r.JSON(t)["instance"])

	r = s.get(t, "/healthz")
	require.NotEmpty(t, r.Header.Get("X-Request-Id"))

	var line map[string]any
	for _, l := range s.logs.find("http request") {
		if l["request_id"] == "trace-me-123" {
			line = l
		}
	}
	require.NotNil(t, line, "one access-log line per request, with the request id")
	require.Equal(t, "GET", line["method"])
	require.Equal(t, "/v1/workflows/{type}/{id}", line["route"])
	require.EqualValues(t, 404, line["status"])
	require.Contains(t, line, "duration_ms")
}

// testOddInputsNever500: nothing a client sends produces a 500.
func testOddInputsNever500(t *testing.T, s *testServer) {
	bodies := []string{
		`{"type":"place","data":5}`, `{"type":"place","data":null}`, `{"type":"place","data":"s"}`,
		`{"type":"place","data":{"total":"x","order_ref":"odd-1"}}`, `{"type":"pay","data":{"amount":5}}`,
		`{"type":"place","data":{"total":1,"order_ref":5}}`, `{"type":"expire","data":[1]}`,
		`{"type":"place","expected_version":1e30}`, `{"type":"place","data":{"total":1e400,"order_ref":"x"}}`,
		`{"type":"\u0000"}`, `{"type":"place","data":{"total":1,"order_ref":"odd-2","x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}}`,
		`{"type":"place","data":{"total":-0.0,"order_ref":"\ud800"}}`, `null`, `"str"`, `{"type":null}`, `{"type":"place","data":{}}`,
		`{"type":"place","data":{"total":1,"order_ref":"nul\u0000"}}`, `{"type":"place","data":{"total":1,"order_ref":"odd-3","n\u0000":1}}`,
	}
	for i, b := range bodies {
		for _, id := range []string{"odd", fmt.Sprintf("odd-%d", i)} {
			r := s.input(t, "order", id, b, nil)
			require.Less(t, r.Status, 500, "%s: %s", b, r.Body)
		}
	}
	for _, p := range []string{
		"/v1/workflows/order/odd?at_version=99999999999999999999", "/v1/workflows/order/odd/events?after=99999999999999999999",
		"/v1/workflows?limit=-1", "/v1/workflows?cursor=" + strings.Repeat("A", 4000), "/v1/workflow-types/%00", "/v1/workflow-types/order/versions/99999999999999999999",
		"/v1/workflows/%00/%00", "/v1/workflows/order/odd/inputs?cursor=%FF", "/v1/workflows?type=%00", "/v1/workflows?state=%FF&type=order",
		"/v1/workflows?cursor=%00", "/v1/workflow-types/%FF/diagram", "/v1/workflows/order/%FF",
	} {
		r := s.get(t, p)
		require.Less(t, r.Status, 500, "%s: %s", p, r.Body)
	}
	r := s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/nul", Body: strings.Replace(string(orderDefinition(t)), "Order lifecycle", `Order\u0000lifecycle`, 1)})
	requireProblem(t, r, http.StatusUnprocessableEntity, "invalid_request")
	r = s.input(t, "order", "odd-nul", `{"type":"place","data":{"total":1,"order_ref":"nul\u0000"}}`, nil)
	requireProblem(t, r, http.StatusUnprocessableEntity, "invalid_request")
	r = s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/%00/inputs", Body: place(1, "x")})
	requireProblem(t, r, http.StatusNotFound, "type_not_found")
}
