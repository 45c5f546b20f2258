package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/openapi"
)

// strictSpec is openapi/openapi.json with every object schema closed
// (additionalProperties: false where the spec leaves it open by omission), so that a
// field the server sends but the spec does not declare fails validation.
var strictSpec = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openapi.JSON())
	if err != nil {
		return nil, err
	}
	closed := map[*openapi3.Schema]bool{}
	var close func(s *openapi3.Schema)
	close = func(s *openapi3.Schema) {
		if s == nil || closed[s] {
			return
		}
		closed[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			no := false
			s.AdditionalProperties.Has = &no
		}
		for _, p := range s.Properties {
			close(p.Value)
		}
		for _, list := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf, s.AllOf} {
			for _, r := range list {
				close(r.Value)
			}
		}
		if s.Items != nil {
			close(s.Items.Value)
		}
		if s.AdditionalProperties.Schema != nil {
			close(s.AdditionalProperties.Schema.Value)
		}
	}
	for _, s := range doc.Components.Schemas {
		close(s.Value)
	}
	doc.Servers = nil // the spec says "/", relative to wherever it is served; match any host
	openapi3filter.RegisterBodyDecoder("text/vnd.graphviz", openapi3filter.PlainBodyDecoder)
	return legacy.NewRouter(doc)
})

// headersAnyResponse are sent by net/http or by every JSON answer and need no
// declaration in the spec.
var headersAnyResponse = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Date": true, "Cache-Control": true,
	"Connection": true, "Transfer-Encoding": true, "Vary": true,
}

// checkAgainstSpec fails t when a response of an API operation has a status, a
// header or a body field that openapi/openapi.json does not declare.
func checkAgainstSpec(t *testing.T, r *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	for _, p := range specProblems(t, r, status, header, body) {
		t.Error(p)
	}
}

// specProblems lists how a response differs from the spec. Requests that match no
// operation (the browser pages, unknown routes, wrong methods, ids with an encoded
// slash that the spec's router cannot tell apart) are left to the tests that send them.
func specProblems(t *testing.T, r *http.Request, status int, header http.Header, body []byte) []string {
	router, err := strictSpec()
	require.NoError(t, err, "openapi/openapi.json does not load")
	if strings.Contains(strings.ToUpper(r.URL.RawPath), "%2F") {
		return nil
	}
	route, params, err := router.FindRoute(r)
	if err != nil {
		return nil
	}
	name := r.Method + " " + route.Path
	resp := route.Operation.Responses.Status(status)
	if resp == nil || resp.Value == nil {
		return []string{fmt.Sprintf("spec: %s answered %d, which its responses do not list (body %.300s)", name, status, body)}
	}
	var problems []string
	for h := range header {
		if headersAnyResponse[h] {
			continue
		}
		declared := false
		for d := range resp.Value.Headers {
			declared = declared || strings.EqualFold(d, h)
		}
		if !declared {
			problems = append(problems, fmt.Sprintf("spec: %s %d sent header %s, which the spec does not declare", name, status, h))
		}
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		problems = append(problems, fmt.Sprintf("spec: %s %d does not match the spec: %v\nbody: %.500s", name, status, err, body))
	}
	return problems
}

// TestSpecCheckFails: the spec check catches what it is for (else the end-to-end tests
// would pass whatever the spec said).
func TestSpecCheckFails(t *testing.T) {
	t.Parallel()
	r, err := http.NewRequest(http.MethodGet, "http://x/v1/workflows/order/o-1", nil)
	require.NoError(t, err)
	ok := http.Header{"Content-Type": {"application/json"}, "Etag": {`"1"`}, "X-Request-Id": {"a"}}
	good := `{"type":"order","id":"o-1","definition_version":1,"state":{"name":"new","data":{}},"status":"running","version":1,` +
		`"created_at":"2030-01-01T00:00:00Z","updated_at":"2030-01-01T00:00:00Z","completed_at":null}`
	for name, tc := range map[string]struct {
		status int
		header http.Header
		body   string
		fails  bool
	}{
		"valid":             {200, ok, good, false},
		"undeclared field":  {200, ok, strings.Replace(good, `"version":1`, `"version":1,"extra":true`, 1), true},
		"missing field":     {200, ok, strings.Replace(good, `"status":"running",`, ``, 1), true},
		"undeclared status": {201, ok, good, true},
		"undeclared header": {200, http.Header{"Content-Type": {"application/json"}, "X-Secret": {"1"}}, good, true},
		"completed_at set":  {200, ok, strings.Replace(good, `"completed_at":null`, `"completed_at":"2030-01-01T00:00:00Z"`, 1), false},
		"bad date":          {200, ok, strings.Replace(good, `"2030-01-01T00:00:00Z"`, `"yesterday"`, 1), true},
	} {
		problems := specProblems(t, r, tc.status, tc.header, []byte(tc.body))
		t.Logf("%s: %v", name, problems)
		require.Equal(t, tc.fails, len(problems) > 0, "%s: %v", name, problems)
	}
}
