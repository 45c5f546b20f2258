// Command gen turns the Swagger 2.0 document swag writes from the annotations in
// internal/http into the OpenAPI 3.1 document the server serves (openapi/openapi.json).
// `make generate` runs it; decision 0013 says why it exists.
//
// kin-openapi's openapi2conv does the 2.0 to 3.0 conversion. The fix-ups here then say
// what swag's 2.0 output cannot: nullability as 3.1 writes it, free-form maps as
// additionalProperties, problem+json only on error responses with a default problem
// response, the 409 of an input split by media type, the headers that middleware adds
// to every response, HTTP bearer security, and schema names without Go package
// prefixes.
//
// Usage: go run ./openapi/gen -in swagger.json -out openapi/openapi.json
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
)

func main() {
	in := flag.String("in", "", "the Swagger 2.0 document swag wrote")
	out := flag.String("out", "", "where to write the OpenAPI 3.1 document")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "openapi gen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	src, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	doc, err := convert(src)
	if err != nil {
		return err
	}
	return os.WriteFile(out, doc, 0o644)
}

// convert returns the OpenAPI 3.1 document for a swag Swagger 2.0 document.
func convert(swagger2 []byte) ([]byte, error) {
	var v2 openapi2.T
	if err := json.Unmarshal(swagger2, &v2); err != nil {
		return nil, fmt.Errorf("read swagger 2.0: %w", err)
	}
	v3, err := openapi2conv.ToV3(&v2)
	if err != nil {
		return nil, fmt.Errorf("convert to 3.0: %w", err)
	}
	raw, err := json.Marshal(v3)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	if err := fix(doc); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

const (
	problemMedia = "application/problem+json"
	jsonMedia    = "application/json"
	problemRef   = "#/components/schemas/Problem"
)

// fix applies every fix-up to the 3.0 document kin-openapi made.
func fix(doc map[string]any) error {
	doc["openapi"] = "3.1.0"
	doc["servers"] = []any{map[string]any{"url": "/", "description": "the server this document came from"}}
	info := obj(doc, "info")
	info["license"] = map[string]any{"name": "Apache-2.0", "identifier": "Apache-2.0"}

	components := obj(doc, "components")
	names, err := schemaNames(obj(components, "schemas"))
	if err != nil {
		return err
	}
	renameRefs(doc, names)
	schemas := map[string]any{}
	for old, s := range obj(components, "schemas") {
		schemas[names[old]] = s
	}
	components["schemas"] = schemas
	for _, s := range schemas {
		fixSchema(s.(map[string]any))
	}

	components["securitySchemes"] = map[string]any{
		"BearerAuth": map[string]any{
			"type":        "http",
			"scheme":      "bearer",
			"description": "A key from IRONFLOW_API_KEYS, sent as `Authorization: Bearer <key>`. Not needed when the server runs without keys (loopback only).",
		},
	}
	components["headers"] = commonHeaders()
	components["responses"] = map[string]any{
		"Problem": map[string]any{
			"description": "An RFC 9457 problem: the type says which (see the enum of Problem.type).",
			"headers":     map[string]any{"X-Request-Id": headerRef("X-Request-Id")},
			"content":     map[string]any{problemMedia: map[string]any{"schema": map[string]any{"$ref": problemRef}}},
		},
	}

	for path, item := range obj(doc, "paths") {
		for method, o := range item.(map[string]any) {
			if err := fixOperation(method+" "+path, o.(map[string]any)); err != nil {
				return err
			}
		}
	}
	return nil
}

// schemaNames maps swag's names ("engine.Page-engine_EventView") to clean ones
// ("EventPage"): no Go package, no "View" suffix. Clashes are an error, so a new type
// never silently takes an existing name.
func schemaNames(schemas map[string]any) (map[string]string, error) {
	renamed := map[string]string{
		"workflow.Input": "TimerInput", // the input a timer or delayed input executes
		"http.Status":    "HealthStatus",
	}
	names := map[string]string{}
	taken := map[string]string{}
	for old := range schemas {
		name, ok := renamed[old]
		if !ok {
			name = old
			if i := strings.Index(name, "Page-"); i >= 0 {
				name = strings.TrimPrefix(name[i+len("Page-"):], "engine_") + "Page"
			}
			name = name[strings.LastIndex(name, ".")+1:]
			name = strings.Replace(name, "View", "", 1)
		}
		if other, clash := taken[name]; clash {
			return nil, fmt.Errorf("schemas %s and %s would both be named %s", old, other, name)
		}
		taken[name] = old
		names[old] = name
	}
	return names, nil
}

// renameRefs rewrites every $ref to a schema under its new name.
func renameRefs(v any, names map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" && strings.HasPrefix(s, "#/components/schemas/") {
				v[k] = "#/components/schemas/" + names[strings.TrimPrefix(s, "#/components/schemas/")]
				continue
			}
			renameRefs(x, names)
		}
	case []any:
		for _, x := range v {
			renameRefs(x, names)
		}
	}
}

// fixSchema rewrites one schema and those inside it as OpenAPI 3.1 (JSON Schema
// 2020-12) says them.
func fixSchema(s map[string]any) {
	for _, k := range []string{"items", "additionalProperties", "not"} {
		if sub, ok := s[k].(map[string]any); ok {
			fixSchema(sub)
		}
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		for _, sub := range list(s, k) {
			fixSchema(sub.(map[string]any))
		}
	}
	for _, p := range obj(s, "properties") {
		fixSchema(p.(map[string]any))
	}
	if len(obj(s, "properties")) == 0 {
		delete(s, "properties")
	}

	// swag wraps a $ref that has a description in allOf; 3.1 allows siblings of $ref.
	if all := list(s, "allOf"); len(all) == 1 {
		if ref, ok := all[0].(map[string]any)["$ref"]; ok {
			delete(s, "allOf")
			s["$ref"] = ref
		}
	}
	// A free-form object (json.RawMessage, map[string]any): any members. Without
	// additionalProperties generators make it an empty struct.
	if s["type"] == "object" && s["properties"] == nil && s["additionalProperties"] == nil {
		s["additionalProperties"] = map[string]any{}
	}
	// 3.1 has examples, not example, in a schema.
	if ex, ok := s["example"]; ok {
		s["examples"] = []any{ex}
		delete(s, "example")
	}
	// x-nullable (kin-openapi's nullable): the 3.1 way, null as one more type, or as
	// an alternative of a reference.
	if s["nullable"] == true {
		delete(s, "nullable")
		if ref, ok := s["$ref"]; ok {
			delete(s, "$ref")
			s["oneOf"] = []any{map[string]any{"$ref": ref}, map[string]any{"type": "null"}}
		} else if t, ok := s["type"].(string); ok {
			s["type"] = []any{t, "null"}
		}
	}
}

// fixOperation makes one operation's responses say exactly what the server sends.
func fixOperation(name string, op map[string]any) error {
	if params := list(op, "parameters"); params != nil {
		for _, p := range params {
			p := p.(map[string]any)
			if sch, ok := p["schema"].(map[string]any); ok {
				fixSchema(sch)
			}
		}
	}
	if body, ok := op["requestBody"].(map[string]any); ok {
		// Bodies are JSON; any application/*+json is accepted, but one media type
		// keeps generated clients simple.
		content := obj(body, "content")
		for media, m := range content {
			if media != jsonMedia {
				delete(content, media)
				continue
			}
			fixSchema(obj(m.(map[string]any), "schema"))
		}
	}
	secured := op["security"] == nil || len(list(op, "security")) > 0
	if op["security"] == nil {
		op["security"] = []any{map[string]any{"BearerAuth": []any{}}}
	}
	if len(list(op, "security")) == 0 {
		op["security"] = []any{}
	}

	responses := obj(op, "responses")
	if responses["400"] == nil {
		// checkQuery answers every route so.
		responses["400"] = map[string]any{
			"description": "an unknown query parameter, or one given twice",
			"content":     map[string]any{problemMedia: map[string]any{"schema": map[string]any{"$ref": problemRef}}},
		}
	}
	for status, r := range responses {
		r := r.(map[string]any)
		content := obj(r, "content")
		isError := status >= "400"
		for media, m := range content {
			m := m.(map[string]any)
			fixSchema(obj(m, "schema"))
			problem := obj(m, "schema")["$ref"] == problemRef
			switch {
			case isError && media == problemMedia && problem:
			case isError && media == jsonMedia && !problem && status == "409":
				// A decision (rejected, already_completed), not a problem.
			case !isError && media != problemMedia && !problem:
			default:
				delete(content, media)
			}
		}
		if isError && status == "409" && content[jsonMedia] != nil {
			// The 409 of an input is a decision as JSON, or a unique key clash as a
			// problem: the media type tells which.
			content[problemMedia] = map[string]any{"schema": map[string]any{"$ref": problemRef}}
		}
		if len(content) == 0 {
			delete(r, "content")
		}
		headers := obj(r, "headers")
		for h, v := range headers {
			v := v.(map[string]any)
			if sch, ok := v["schema"].(map[string]any); ok {
				fixSchema(sch)
			}
			headers[h] = v
		}
		headers["X-Request-Id"] = headerRef("X-Request-Id")
		if secured {
			for _, h := range rateLimitHeaders {
				headers[h] = headerRef(h)
			}
		}
		switch status {
		case "429":
			headers["Retry-After"] = headerRef("Retry-After")
		case "401":
			headers["WWW-Authenticate"] = headerRef("WWW-Authenticate")
		}
		r["headers"] = headers
	}
	responses["default"] = map[string]any{"$ref": "#/components/responses/Problem"}
	if secured && responses["401"] == nil {
		return fmt.Errorf("%s needs a key but documents no 401", name)
	}
	return nil
}

// rateLimitHeaders are sent on every authenticated response when IRONFLOW_RATE_LIMIT
// is set (go-chi/httprate).
var rateLimitHeaders = []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}

// commonHeaders declares the headers middleware adds, referenced from each response.
func commonHeaders() map[string]any {
	h := func(desc string, schema map[string]any) map[string]any {
		return map[string]any{"description": desc, "schema": schema}
	}
	str := map[string]any{"type": "string"}
	integer := map[string]any{"type": "integer"}
	return map[string]any{
		"X-Request-Id":          h("The request's id (the client's X-Request-Id when it sent a valid one); problems carry it as request_id and the access log under request_id.", str),
		"X-RateLimit-Limit":     h("Requests allowed per second for this API key (or client address); only when IRONFLOW_RATE_LIMIT is set.", integer),
		"X-RateLimit-Remaining": h("Requests left in the current one-second window; only when IRONFLOW_RATE_LIMIT is set.", integer),
		"X-RateLimit-Reset":     h("Unix time in seconds when the window resets; only when IRONFLOW_RATE_LIMIT is set.", integer),
		"Retry-After":           h("Seconds to wait before retrying.", integer),
		"WWW-Authenticate":      h(`Bearer realm="ironflow".`, str),
	}
}

func headerRef(name string) map[string]any {
	return map[string]any{"$ref": "#/components/headers/" + name}
}

// obj returns m[k] as an object, creating it when absent.
func obj(m map[string]any, k string) map[string]any {
	if v, ok := m[k].(map[string]any); ok {
		return v
	}
	v := map[string]any{}
	m[k] = v
	return v
}

func list(m map[string]any, k string) []any {
	v, _ := m[k].([]any)
	return v
}
