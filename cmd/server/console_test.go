package main

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testConsoleQueries: GET /v1/workflows by id prefix and creation time, and
// GET /v1/workflow-counts.
func testConsoleQueries(t *testing.T, s *testServer) {
	const typ = "order_console"
	s.defineOrder(t, typ)
	ids := []string{"c-1", "c-2", "c_3", "c%4", "cx"}
	var between time.Time
	for i, id := range ids {
		if i == 3 {
			// The server keeps microseconds: a time it takes later is not before this.
			between = time.Now().UTC().Truncate(time.Microsecond)
		}
		r := s.input(t, typ, url.PathEscape(id), place(1, "R-console-"+id), nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	}
	require.Equal(t, http.StatusOK, s.input(t, typ, "c-2", pay(1), nil).Status)

	list := func(q url.Values) []string {
		t.Helper()
		q.Set("type", typ)
		r := s.get(t, "/v1/workflows?"+q.Encode())
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		out := []string{}
		for _, it := range r.JSON(t)["items"].([]any) {
			out = append(out, path(t, it, "id").(string))
		}
		return out
	}
	require.Equal(t, []string{"c-1", "c-2"}, list(url.Values{"id_prefix": {"c-"}}))
	require.Equal(t, []string{"c_3"}, list(url.Values{"id_prefix": {"c_"}}), "_ is no wildcard")
	require.Equal(t, []string{"c%4"}, list(url.Values{"id_prefix": {"c%"}}), "% is no wildcard")
	require.Equal(t, []string{"c-2"}, list(url.Values{"id_prefix": {"c-"}, "state": {"paid"}}))
	after := between.Format(time.RFC3339Nano)
	require.Equal(t, []string{"c%4", "cx"}, list(url.Values{"created_after": {after}}))
	require.Equal(t, []string{"c-1", "c-2", "c_3"}, list(url.Values{"created_before": {after}}))
	require.Equal(t, []string{"cx"}, list(url.Values{"created_after": {after}, "id_prefix": {"cx"}}))

	// Paging keeps the filters.
	r := s.get(t, "/v1/workflows?type="+typ+"&id_prefix=c&limit=2")
	next := r.JSON(t)["next_cursor"].(string)
	r = s.get(t, "/v1/workflows?type="+typ+"&id_prefix=c&limit=2&cursor="+url.QueryEscape(next))
	require.Len(t, r.JSON(t)["items"], 2)

	for _, name := range []string{"created_after", "created_before"} {
		for _, bad := range []string{"yesterday", "2030-01-02", "2030-01-02T15:04:05"} {
			p := requireProblem(t, s.get(t, "/v1/workflows?"+name+"="+url.QueryEscape(bad)), http.StatusBadRequest, "invalid_argument")
			require.Contains(t, p["detail"], name)
			p = requireProblem(t, s.get(t, "/v1/workflow-counts?"+name+"="+url.QueryEscape(bad)), http.StatusBadRequest, "invalid_argument")
			require.Contains(t, p["detail"], name)
		}
	}
	requireProblem(t, s.get(t, "/v1/workflow-counts?status=running"), http.StatusBadRequest, "unknown_query_parameter")
	requireProblem(t, s.get(t, "/v1/workflow-counts?id_prefix=c"), http.StatusBadRequest, "unknown_query_parameter")

	r = s.get(t, "/v1/workflow-counts?type="+typ)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.JSONEq(t, `{"counts": {"running": 5, "completed": 0, "failed": 0, "terminated": 0}, "capped": false, "cap": 10000}`, string(r.Body))
	r = s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/" + typ + "/cx/terminate", Body: map[string]string{"reason": "test"}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	r = s.get(t, "/v1/workflow-counts?type="+typ+"&created_after="+url.QueryEscape(after))
	require.JSONEq(t, `{"counts": {"running": 1, "completed": 0, "failed": 0, "terminated": 1}, "capped": false, "cap": 10000}`, string(r.Body))
	r = s.get(t, "/v1/workflow-counts?type=no_such_type")
	require.JSONEq(t, `{"counts": {"running": 0, "completed": 0, "failed": 0, "terminated": 0}, "capped": false, "cap": 10000}`, string(r.Body))
}

// testDiscardEffect: DELETE /v1/effects/{id} discards a pending effect once.
func testDiscardEffect(t *testing.T, s *testServer) {
	r := s.input(t, "order", "o-discard", place(1, "R-discard"), nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	id := path(t, r.JSON(t), "effects", 0, "id").(string)
	r = s.do(t, req{Method: http.MethodDelete, Path: "/v1/effects/" + id})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "cancelled", r.JSON(t)["status"])
	require.Equal(t, id, r.JSON(t)["id"])
	require.Equal(t, "cancelled", s.get(t, "/v1/effects/"+id).JSON(t)["status"])
	requireProblem(t, s.do(t, req{Method: http.MethodDelete, Path: "/v1/effects/" + id}), http.StatusConflict, "wrong_status")
	requireProblem(t, s.do(t, req{Method: http.MethodPost, Path: "/v1/effects/" + id + "/retry"}), http.StatusConflict, "wrong_status")
	requireProblem(t, s.do(t, req{Method: http.MethodDelete, Path: "/v1/effects/nope"}), http.StatusNotFound, "effect_not_found")
}
