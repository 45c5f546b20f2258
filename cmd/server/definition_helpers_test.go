package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
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

// timersByStatus lists an instance's timers as "key fire_at" per status.
func (s *testServer) timersByStatus(t *testing.T, typ, id string) map[string][]string {
	t.Helper()
	r := s.get(t, "/v1/workflows/"+typ+"/"+id+"/timers")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	out := map[string][]string{}
	for _, tm := range path(t, r.JSON(t), "items").([]any) {
		st := path(t, tm, "status").(string)
		out[st] = append(out[st], path(t, tm, "key").(string)+" "+path(t, tm, "fire_at").(string))
	}
	return out
}

// TestReenterAndOnAnyEndToEnd: a state timer's at sees the data its transition
// recorded; reenter re-arms it; on_any cancels from a state without its own entry.
func TestReenterAndOnAnyEndToEnd(t *testing.T) {
	t.Parallel()
	s := startServer(t, "sqlite", nil)
	s.putDefinition(t, "approval", `{
		"initial_state": "new",
		"inputs": {"open": {}, "extend": {}, "remind": {}, "approve": {}, "cancel": {}},
		"on_any": {"cancel": {"to": "cancelled", "event": "Cancelled"}},
		"states": {
			"new": {"on": {"open": {"to": "review", "data": "{'due': input.data.due}",
				"effects": [{"name": "ask_reviewer", "scope": "state"}]}}},
			"review": {
				"timers": [{"key": "remind", "at": "timestamp(state.data.due)", "input": {"type": "remind"}}],
				"on": {"extend": {"reenter": true, "event": "Extended", "data": "{'due': input.data.due}"},
				       "approve": {"to": "approved"}}},
			"approved": {"terminal": true},
			"cancelled": {"terminal": "failed"}
		}
	}`, http.StatusCreated)

	r := s.input(t, "approval", "a-1", map[string]any{"type": "open", "data": map[string]any{"due": "2030-01-01T00:00:00Z"}}, nil)
	require.Equal(t, http.StatusOK, r.Status, "the timer's at sees the due date the transition recorded: %s", r.Body)
	require.Equal(t, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), firesAt(t, r, "remind"))

	r = s.input(t, "approval", "a-1", map[string]any{"type": "extend", "data": map[string]any{"due": "2030-02-01T00:00:00Z"}}, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, []any{"remind"}, path(t, r.JSON(t), "timers", "cancelled"))
	require.Equal(t, time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC), firesAt(t, r, "remind"))
	require.Equal(t, map[string]any{"seq": 2.0, "type": "Extended", "from": "review", "to": "review"},
		map[string]any{"seq": path(t, r.JSON(t), "events", 0, "seq"), "type": path(t, r.JSON(t), "events", 0, "type"),
			"from": path(t, r.JSON(t), "events", 0, "from"), "to": path(t, r.JSON(t), "events", 0, "to")})
	timers := s.timersByStatus(t, "approval", "a-1")
	require.Equal(t, []string{"remind 2030-02-01T00:00:00Z"}, timers["pending"], "one pending timer, re-armed: %v", timers)
	require.Equal(t, []string{"remind 2030-01-01T00:00:00Z"}, timers["cancelled"])
	// Reentering left the state: its undelivered scoped effect (no webhook is
	// registered, so it was still pending) is cancelled.
	eff := s.get(t, "/v1/workflows/approval/a-1/effects")
	require.Equal(t, http.StatusOK, eff.Status, "%s", eff.Body)
	require.Equal(t, "ask_reviewer", path(t, eff.JSON(t), "items", 0, "name"))
	require.Equal(t, "cancelled", path(t, eff.JSON(t), "items", 0, "status"), "%s", eff.Body)

	r = s.input(t, "approval", "a-1", map[string]any{"type": "cancel"}, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "cancelled", path(t, r.JSON(t), "workflow", "state", "name"))
	require.Equal(t, "failed", path(t, r.JSON(t), "workflow", "status"))
	require.Equal(t, "Cancelled", path(t, r.JSON(t), "events", 0, "type"))
	require.Empty(t, s.timersByStatus(t, "approval", "a-1")["pending"])

	// on_any applies to the initial state too when it has no entry of its own.
	r = s.input(t, "approval", "a-2", map[string]any{"type": "cancel"}, nil)
	require.Equal(t, http.StatusOK, r.Status, "on_any applies to the initial state too: %s", r.Body)
	require.Equal(t, "cancelled", path(t, r.JSON(t), "workflow", "state", "name"))

	d := s.get(t, "/v1/workflow-types/approval/diagram")
	require.Contains(t, string(d.Body), "ANY --> cancelled: cancel / Cancelled")
	require.Contains(t, string(d.Body), "review --> review: extend / Extended reenter timer remind at → remind")

	requireDefinitionErrors(t, s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/bad_helpers", Body: `{
		"initial_state": "a", "inputs": {"go": {}, "stop": {}},
		"on_any": {"stop": {"to": "nowhere"}},
		"states": {"a": {"on": {"go": {"to": "b", "reenter": true}}}, "b": {}}}`}),
		"only a transition that stays in its state can reenter it", "/states/a/on/go/reenter", "/on_any/stop/to")
}

// TestForEachEndToEnd: one effect and one timer per element, keys from CEL, the
// cap from IRONFLOW_MAX_FOR_EACH, and the 422s with their paths.
func TestForEachEndToEnd(t *testing.T) {
	t.Parallel()
	s := startServer(t, "sqlite", map[string]string{"IRONFLOW_MAX_FOR_EACH": "4", "IRONFLOW_WEBHOOK_ALLOW_NETS": "127.0.0.0/8"})
	var (
		mu   sync.Mutex
		keys = map[string]string{} // key → sku of each delivery
	)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Data struct {
				Key     string `json:"key"`
				Payload struct {
					SKU string `json:"sku"`
				} `json:"payload"`
			} `json:"data"`
		}
		if json.NewDecoder(r.Body).Decode(&msg) == nil {
			mu.Lock()
			keys[msg.Data.Key] = msg.Data.Payload.SKU
			mu.Unlock()
		}
	}))
	t.Cleanup(rcv.Close)
	s.putDefinition(t, "batch", `{
		"initial_state": "new",
		"inputs": {"place": {}, "remind": {"schema": {"type": "object", "required": ["sku"]}}, "received": {}},
		"states": {
			"new": {"on": {"place": {"to": "open",
				"effects": [{"name": "reserve", "for_each": "input.data.items", "key": "item.sku",
				             "payload": "{'sku': item.sku, 'position': index}"}],
				"timers": [{"for_each": "input.data.items", "key": "'remind_' + item.sku", "after": "PT1H",
				            "input": {"type": "remind", "data": "{'sku': item.sku}"}}]}}},
			"open": {"on": {"remind": {}, "received": {"cancel_timers": [{"key": "'remind_' + input.data.sku"}]}}}
		}
	}`, http.StatusCreated)
	r := s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/batch/webhook", Body: map[string]string{"url": rcv.URL}})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)

	r = s.input(t, "batch", "b-1", map[string]any{"type": "place", "data": map[string]any{
		"items": []any{map[string]any{"sku": "s-1"}, map[string]any{"sku": "s-2"}}}}, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	body := r.JSON(t)
	require.Equal(t, "reserve", path(t, body, "effects", 0, "name"))
	require.Equal(t, "s-1", path(t, body, "effects", 0, "key"))
	require.Equal(t, "s-2", path(t, body, "effects", 1, "key"))
	require.Equal(t, "remind_s-1", path(t, body, "timers", "scheduled", 0, "key"))
	require.Equal(t, "remind_s-2", path(t, body, "timers", "scheduled", 1, "key"))

	// Each delivery carries its element's key.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(keys) == 2
	}, 30*time.Second, 10*time.Millisecond, "both effects delivered")
	mu.Lock()
	require.Equal(t, map[string]string{"s-1": "s-1", "s-2": "s-2"}, keys)
	mu.Unlock()

	effects := s.get(t, "/v1/workflows/batch/b-1/effects")
	require.Equal(t, http.StatusOK, effects.Status, "%s", effects.Body)
	got := map[string]any{}
	for _, e := range path(t, effects.JSON(t), "items").([]any) {
		got[path(t, e, "key").(string)] = path(t, e, "payload")
	}
	require.Equal(t, map[string]any{
		"s-1": map[string]any{"sku": "s-1", "position": 0.0},
		"s-2": map[string]any{"sku": "s-2", "position": 1.0},
	}, got)
	timers := s.get(t, "/v1/workflows/batch/b-1/timers")
	for _, tm := range path(t, timers.JSON(t), "items").([]any) {
		require.Equal(t, path(t, tm, "key"), "remind_"+path(t, tm, "input", "data", "sku").(string))
	}

	// One element's reminder is cancelled by a computed key; the other stays.
	r = s.input(t, "batch", "b-1", map[string]any{"type": "received", "data": map[string]any{"sku": "s-1"}}, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, []any{"remind_s-1"}, path(t, r.JSON(t), "timers", "cancelled"))
	byStatus := s.timersByStatus(t, "batch", "b-1")
	require.Len(t, byStatus["cancelled"], 1)
	require.Contains(t, byStatus["cancelled"][0], "remind_s-1 ")
	require.Len(t, byStatus["pending"], 1)
	require.Contains(t, byStatus["pending"][0], "remind_s-2 ")

	// Two elements with one key, and more elements than the setting allows (two
	// lists of three: six), are refused with the path; nothing is recorded.
	dup := s.input(t, "batch", "b-2", map[string]any{"type": "place", "data": map[string]any{
		"items": []any{map[string]any{"sku": "s"}, map[string]any{"sku": "s"}}}}, nil)
	p := requireProblem(t, dup, http.StatusUnprocessableEntity, "evaluation_failed")
	require.Equal(t, "/states/new/on/place/effects/0/key", path(t, p, "errors", 0, "path"))
	many := s.input(t, "batch", "b-3", map[string]any{"type": "place", "data": map[string]any{
		"items": []any{map[string]any{"sku": "a"}, map[string]any{"sku": "b"}, map[string]any{"sku": "c"}}}}, nil)
	p = requireProblem(t, many, http.StatusUnprocessableEntity, "too_large")
	require.Equal(t, "/states/new/on/place/timers/0/for_each", path(t, p, "errors", 0, "path"))
	require.Contains(t, path(t, p, "errors", 0, "message"), "more than 4, the limit")
	requireProblem(t, s.get(t, "/v1/workflows/batch/b-2"), http.StatusNotFound, "workflow_not_found")
	requireProblem(t, s.get(t, "/v1/workflows/batch/b-3"), http.StatusNotFound, "workflow_not_found")

	d := s.get(t, "/v1/workflow-types/batch/diagram")
	require.Contains(t, string(d.Body), "effect reserve for each input.data.items")

	requireDefinitionErrors(t, s.do(t, req{Method: http.MethodPut, Path: "/v1/workflow-types/bad_fan", Body: `{
		"initial_state": "a", "inputs": {"go": {}},
		"states": {"a": {"on": {"go": {"effects": [
			{"name": "e", "for_each": "input.data.items.size()"},
			{"name": "start_chunk", "send": {"workflow_type": "chunk", "input": {"type": "start"}}}]}}}}}`}),
		"must evaluate to a list", "/states/a/on/go/effects/0/for_each", "/states/a/on/go/effects/1/send/id")
}
