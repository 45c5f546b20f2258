package http

import (
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/openapi"
)

type specOperation struct {
	OperationID string              `json:"operationId"`
	Security    *[]map[string][]any `json:"security"`
	Parameters  []map[string]any    `json:"parameters"`
	RequestBody map[string]any      `json:"requestBody"`
	Responses   map[string]any      `json:"responses"`
}

type spec struct {
	OpenAPI    string                              `json:"openapi"`
	Paths      map[string]map[string]specOperation `json:"paths"`
	Components struct {
		Schemas map[string]map[string]any `json:"schemas"`
	} `json:"components"`
}

func loadSpec(t *testing.T) spec {
	t.Helper()
	var s spec
	require.NoError(t, json.Unmarshal(openapi.JSON(), &s))
	require.Equal(t, "3.1.0", s.OpenAPI)
	return s
}

// TestSpecMatchesRoutes: every API route of the table is documented with the query
// parameters it takes, and every documented operation is routed (make generate after
// changing either). The browser pages under /docs and /ui are not operations.
func TestSpecMatchesRoutes(t *testing.T) {
	t.Parallel()
	s := loadSpec(t)
	var routed, documented []string
	public := map[string]bool{}
	query := map[string][]string{}
	for _, rt := range (&Server{}).routes() {
		if slices.Contains(rt.query, anyQuery) {
			require.True(t, rt.public, "%s: only public browser pages take any query", rt.pattern)
			require.Contains(t, []string{"/docs", "/docs/*", "/ui", "/ui/*"}, rt.pattern)
			continue
		}
		key := strings.ToLower(rt.method) + " " + rt.pattern
		routed = append(routed, key)
		public[key] = rt.public
		query[key] = rt.query
	}
	for p, ops := range s.Paths {
		for m := range ops {
			documented = append(documented, m+" "+p)
		}
	}
	sort.Strings(routed)
	sort.Strings(documented)
	require.Equal(t, routed, documented, "run make generate")

	params := regexp.MustCompile(`\{(\w+)\}`)
	ids := map[string]bool{}
	for p, ops := range s.Paths {
		for m, op := range ops {
			key := m + " " + p
			require.NotEmpty(t, op.OperationID, key)
			require.False(t, ids[op.OperationID], "duplicate operationId %s", op.OperationID)
			ids[op.OperationID] = true

			// Auth is documented as it is enforced.
			require.NotNil(t, op.Security, key)
			if public[key] {
				require.Empty(t, *op.Security, "%s is public", key)
			} else {
				require.Equal(t, []map[string][]any{{"BearerAuth": {}}}, *op.Security, key)
				require.Contains(t, op.Responses, "401", "%s needs a key, so it can answer 401", key)
			}
			// Every path parameter is declared, and the query parameters are the ones
			// the route table lets through.
			declared := map[string]bool{}
			var inQuery []string
			for _, prm := range op.Parameters {
				switch prm["in"] {
				case "path":
					declared[prm["name"].(string)] = true
				case "query":
					inQuery = append(inQuery, prm["name"].(string))
				}
			}
			require.ElementsMatch(t, query[key], inQuery, "%s: query parameters of the route table and the spec", key)
			for _, m := range params.FindAllStringSubmatch(p, -1) {
				require.True(t, declared[m[1]], "%s: path parameter %s undeclared", key, m[1])
			}
			require.Contains(t, op.Responses, "default", key)
			require.Contains(t, op.Responses, "400", "%s: any route answers 400 to an unknown query parameter", key)
			// Every problem the body routes can produce is documented.
			if op.RequestBody != nil {
				for _, code := range []string{"400", "413", "415", "422"} {
					require.Contains(t, op.Responses, code, "%s takes a body", key)
				}
			}
		}
	}
}

// TestSpecReferencesResolve: every $ref points at a component.
func TestSpecReferencesResolve(t *testing.T) {
	t.Parallel()
	s := loadSpec(t)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(openapi.JSON(), &doc))
	refs := regexp.MustCompile(`"\$ref":\s*"#/components/(\w+)/([^"]+)"`).FindAllStringSubmatch(string(openapi.JSON()), -1)
	require.NotEmpty(t, refs)
	components := doc["components"].(map[string]any)
	for _, m := range refs {
		require.Contains(t, components[m[1]], m[2], m[0])
	}
	for _, name := range []string{"Problem", "Result", "Workflow", "InputRequest"} {
		require.Contains(t, s.Components.Schemas, name)
	}
}

// TestSpecProblemTypes: the enum of Problem.type is every type the error table can
// answer, so a client switching on it sees every case.
func TestSpecProblemTypes(t *testing.T) {
	t.Parallel()
	s := loadSpec(t)
	var documented []string
	for _, v := range s.Components.Schemas["Problem"]["properties"].(map[string]any)["type"].(map[string]any)["enum"].([]any) {
		documented = append(documented, v.(string))
	}
	answered := []string{"internal"}
	for _, k := range errorKinds() {
		if !slices.Contains(answered, k.typ) {
			answered = append(answered, k.typ)
		}
	}
	require.ElementsMatch(t, answered, documented, "the enums tag of Problem.Type")
}

// TestSpecStatusFilters: a list's status filter offers every status its items can have
// (the server accepts each of them), so a generated client can ask for any.
func TestSpecStatusFilters(t *testing.T) {
	t.Parallel()
	s := loadSpec(t)
	enum := func(schema map[string]any) []any {
		return schema["enum"].([]any)
	}
	item := map[string]string{
		"listWorkflows": "Workflow", "listChildren": "Workflow", "listEffects": "Effect", "listWorkflowEffects": "Effect",
		"listTimers": "Timer", "listWorkflowTimers": "Timer",
	}
	seen := map[string]bool{}
	for p, ops := range s.Paths {
		for m, op := range ops {
			for _, prm := range op.Parameters {
				if prm["in"] != "query" || prm["name"] != "status" {
					continue
				}
				schema, ok := item[op.OperationID]
				require.True(t, ok, "%s %s has a status filter: name the schema of its items here", m, p)
				seen[op.OperationID] = true
				status := s.Components.Schemas[schema]["properties"].(map[string]any)["status"].(map[string]any)
				require.ElementsMatch(t, enum(status), enum(prm["schema"].(map[string]any)),
					"%s: the status filter and %s.status", op.OperationID, schema)
			}
		}
	}
	require.Len(t, seen, len(item))
}

// TestSpecBodilessStatuses: 204 and 304 answers have no body, so the spec gives them
// no content (a client would otherwise try to decode one).
func TestSpecBodilessStatuses(t *testing.T) {
	t.Parallel()
	s := loadSpec(t)
	found := 0
	for p, ops := range s.Paths {
		for m, op := range ops {
			for _, code := range []string{"204", "304"} {
				if r, ok := op.Responses[code]; ok {
					found++
					require.NotContains(t, r.(map[string]any), "content", "%s %s %s", m, p, code)
				}
			}
		}
	}
	require.Positive(t, found)
}
