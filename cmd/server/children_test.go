package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// parentDefinition fans out one child per element of input.data.chunks and counts the
// children that completed; childDefinition is created by start and completed by finish.
const (
	parentDefinition = `{
		"initial_state": "new",
		"inputs": {"split": {}, "chunk_done": {}, "chunk_failed": {}},
		"states": {
			"new": {"on": {"split": {"to": "waiting", "data": "{'done': 0}", "effects": [{"name": "start_chunk",
				"for_each": "input.data.chunks",
				"send": {"workflow_type": "chunk", "id": "workflow.id + '/' + string(index)",
				         "input": {"type": "start", "data": "{'n': item}"},
				         "child": {"on_completed": "chunk_done", "on_failed": "chunk_failed", "on_parent_end": "terminate"}}}]}}},
			"waiting": {"on": {"chunk_done": {"data": "{'done': int(state.data.done) + 1}"}, "chunk_failed": {}}}}}`
	childDefinition = `{
		"initial_state": "new",
		"inputs": {"start": {}, "finish": {}},
		"states": {
			"new": {"on": {"start": {"to": "working"}}},
			"working": {"on": {"finish": {"to": "done"}}},
			"done": {"terminal": true}}}`
)

// TestChildrenEndToEnd: a send with child creates children through the server's effect
// worker; GET …/children lists them (with parent in each view, and a status filter);
// a child's completion reaches the parent; terminating the parent terminates the
// running ones. The answers match the spec.
func TestChildrenEndToEnd(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, backend, nil)
			s.putDefinition(t, "batch", parentDefinition, http.StatusCreated)
			s.putDefinition(t, "chunk", childDefinition, http.StatusCreated)
			r := s.input(t, "batch", "b-1", map[string]any{"type": "split", "data": map[string]any{"chunks": []int{1, 2, 3}}}, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			effectID := path(t, r.JSON(t), "effects", 0, "id").(string)

			children := func(query string) []any {
				r := s.do(t, req{Method: http.MethodGet, Path: "/v1/workflows/batch/b-1/children" + query})
				require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
				return path(t, r.JSON(t), "items").([]any)
			}
			require.Eventually(t, func() bool { return len(children("")) == 3 }, 20*time.Second, 10*time.Millisecond)
			items := children("?limit=2")
			require.Len(t, items, 2, "paged")
			for _, it := range items {
				require.Equal(t, map[string]any{"workflow_type": "batch", "id": "b-1"}, path(t, it, "parent"))
				require.Equal(t, "working", path(t, it, "state", "name"))
			}
			require.Equal(t, map[string]any{"workflow_type": "chunk", "id": "b-1/0"},
				path(t, s.do(t, req{Method: http.MethodGet, Path: "/v1/effects/" + effectID}).JSON(t), "send"))
			require.Nil(t, path(t, s.get(t, "/v1/workflows/batch/b-1").JSON(t), "parent"))

			r = s.input(t, "chunk", "b-1%2F0", map[string]any{"type": "finish"}, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Eventually(t, func() bool {
				return path(t, s.get(t, "/v1/workflows/batch/b-1").JSON(t), "state", "data", "done") == float64(1)
			}, 20*time.Second, 10*time.Millisecond, "%s", s.get(t, "/v1/workflows/chunk/b-1%2F0/effects").Body)
			require.Len(t, children("?status=completed"), 1)
			require.Len(t, children("?status=running"), 2)

			r = s.do(t, req{Method: http.MethodPost, Path: "/v1/workflows/batch/b-1/terminate", Body: map[string]any{"reason": "enough"}})
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Eventually(t, func() bool { return len(children("?status=terminated")) == 2 }, 20*time.Second, 10*time.Millisecond)
			require.Empty(t, children("?status=running"))

			requireProblem(t, s.get(t, "/v1/workflows/batch/nope/children"), http.StatusNotFound, "workflow_not_found")
			requireProblem(t, s.get(t, "/v1/workflows/batch/b-1/children?state=x"), http.StatusBadRequest, "unknown_query_parameter")
			requireProblem(t, s.get(t, "/v1/workflows/batch/b-1/children?status=gone"), http.StatusBadRequest, "invalid_argument")
			require.Contains(t, string(s.get(t, "/v1/workflow-types/batch/diagram").Body), "send start_chunk → chunk for each input.data.chunks")
		})
	}
}
