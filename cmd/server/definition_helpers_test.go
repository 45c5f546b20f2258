package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The definition helpers are pure decisions: one store shows them end to end.

// putDefinition stores body as type typ and requires status.
func (s *testServer) putDefinition(t *testing.T, typ, body string, status int) response {
	t.Helper()
	r := s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/" + typ, Body: body})
	require.Equal(t, status, r.Status, "%s", r.Body)
	return r
}

// requireDefinitionErrors checks a 422 invalid_definition answer lists exactly paths,
// the first message containing msg.
func requireDefinitionErrors(t *testing.T, r response, msg string, paths ...string) {
	t.Helper()
	p := requireProblem(t, r, http.StatusUnprocessableEntity, "invalid_definition")
	var got []string
	for _, e := range p["errors"].([]any) {
		got = append(got, path(t, e, "path").(string))
	}
	require.Equal(t, paths, got, "%s", r.Body)
	require.Contains(t, path(t, p, "errors", 0, "message"), msg)
}

// firesAt returns the fire_at of the scheduled timer key in an accepted answer.
func firesAt(t *testing.T, r response, key string) time.Time {
	t.Helper()
	for _, tm := range path(t, r.JSON(t), "timers", "scheduled").([]any) {
		if path(t, tm, "key") == key {
			at, err := time.Parse(time.RFC3339Nano, path(t, tm, "fire_at").(string))
			require.NoError(t, err)
			return at
		}
	}
	t.Fatalf("timer %q not scheduled: %s", key, r.Body)
	return time.Time{}
}

func TestISODurationsAndMergeEndToEnd(t *testing.T) {
	t.Parallel()
	s := startServer(t, "sqlite", nil)
	s.putDefinition(t, "subscription", `{
		"initial_state": "active",
		"inputs": {"start": {}, "renew": {}, "expire": {}},
		"states": {
			"active": {
				"timers": [{"key": "grace", "after": "P1DT2H", "input": {"type": "expire"}}],
				"on": {
					"start": {"data": "{'plan': merge(state.data.?plan.orValue({'tier': 'basic', 'seats': 1}), input.data.plan)}",
						"timers": [{"key": "renewal", "at": "add_calendar(timestamp(input.data.from), 'P1M')", "input": {"type": "renew"}},
						           {"key": "reminder", "after": "PT90S", "input": {"type": "renew"}}]},
					"expire": {"to": "ended"}
				}
			},
			"ended": {"terminal": true}
		}
	}`, http.StatusCreated)

	r := s.input(t, "subscription", "s-1", map[string]any{"type": "start", "data": map[string]any{
		"from": "2028-01-31T09:30:00Z", "plan": map[string]any{"seats": 5, "trial": nil}}}, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, map[string]any{"plan": map[string]any{"tier": "basic", "seats": 5.0}}, path(t, r.JSON(t), "workflow", "state", "data"))
	require.Equal(t, time.Date(2028, 2, 29, 9, 30, 0, 0, time.UTC), firesAt(t, r, "renewal"), "Jan 31 + 1 month is the last day of February")
	created, err := time.Parse(time.RFC3339Nano, path(t, r.JSON(t), "workflow", "created_at").(string))
	require.NoError(t, err)
	require.Equal(t, 90*time.Second, firesAt(t, r, "reminder").Sub(created))
	require.Equal(t, 26*time.Hour, firesAt(t, r, "grace").Sub(created))

	// Months in a fixed duration, and a misspelt calendar literal, are refused at PUT.
	requireDefinitionErrors(t, s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/bad_months", Body: `{
		"initial_state": "a", "inputs": {"go": {}},
		"states": {"a": {"timers": [{"key": "t", "after": "P1M", "input": {"type": "go"}}],
		                 "on": {"go": {"timers": [{"key": "u", "at": "add_calendar(now, 'P1Q')", "input": {"type": "go"}}]}}}}}`}),
		"add_calendar(now, 'P1M')", "/states/a/timers/0/after", "/states/a/on/go/timers/0/at")
}
