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
	Responses   map[string]any      `json:"responses"`
}

type spec struct {
	Swagger     string                              `json:"swagger"`
	Paths       map[string]map[string]specOperation `json:"paths"`
	Definitions map[string]any                      `json:"definitions"`
}

func loadSpec(t *testing.T) spec {
	t.Helper()
	var s spec
	require.NoError(t, json.Unmarshal(openapi.JSON(), &s))
	require.Equal(t, "2.0", s.Swagger)
	return s
}

// TestSpecMatchesRoutes: every route of the table is documented and every documented
// operation is routed (make generate after changing either).
func TestSpecMatchesRoutes(t *testing.T) {
	t.Parallel()
	s := loadSpec(t)
	var routed, documented []string
	public := map[string]bool{}
	query := map[string][]string{}
	for _, rt := range (&Server{}).routes() {
		p := strings.Replace(rt.pattern, "/*", "/{file}", 1)
		key := strings.ToLower(rt.method) + " " + p
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
				require.NotEmpty(t, *op.Security, key)
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
			if !slices.Contains(query[key], anyQuery) {
				require.ElementsMatch(t, query[key], inQuery, "%s: query parameters of the route table and the spec", key)
			}
			for _, m := range params.FindAllStringSubmatch(p, -1) {
				require.True(t, declared[m[1]], "%s: path parameter %s undeclared", key, m[1])
			}
			require.NotEmpty(t, op.Responses, key)
			// Every problem the body routes can produce is documented.
			for _, prm := range op.Parameters {
				if prm["in"] == "body" {
					for _, code := range []string{"400", "413", "415", "422"} {
						require.Contains(t, op.Responses, code, "%s takes a body", key)
					}
				}
			}
		}
	}
}

// TestSpecReferencesResolve: every $ref points at a definition.
func TestSpecReferencesResolve(t *testing.T) {
	t.Parallel()
	s := loadSpec(t)
	refs := regexp.MustCompile(`"\$ref":\s*"#/definitions/([^"]+)"`).FindAllStringSubmatch(string(openapi.JSON()), -1)
	require.NotEmpty(t, refs)
	for _, m := range refs {
		name := strings.ReplaceAll(strings.ReplaceAll(m[1], "~1", "/"), "~0", "~")
		require.Contains(t, s.Definitions, name)
	}
	for _, name := range []string{"http.Problem", "engine.Result", "engine.WorkflowView", "http.InputRequest"} {
		require.Contains(t, s.Definitions, name)
	}
}
