package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/workflow"
)

// routeOnEscapedPath makes chi match routes against the escaped path, so that a path
// parameter is always still percent-encoded and pathParam can decode it exactly once:
// "/v1/workflows/order/a%2Fb" has the id "a/b" and "100%25" has the id "100%".
// Without it chi routes on r.URL.Path whenever the escaping is canonical, and on
// r.URL.RawPath otherwise, so a parameter would be decoded sometimes.
func routeOnEscapedPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePath == "" {
			rctx.RoutePath = r.URL.EscapedPath()
		}
		next.ServeHTTP(w, r)
	})
}

// pathParam returns the percent-decoded path parameter name.
func pathParam(r *http.Request, name string) (string, error) {
	v, err := url.PathUnescape(chi.URLParam(r, name))
	if err != nil {
		return "", fmt.Errorf("%w: path parameter %s is not percent-encoded correctly", errMalformed, name)
	}
	return v, nil
}

// typeParam returns the workflow type of the path. A name that no definition can have
// (DESIGN §1: ^[a-z][a-z0-9_]{0,62}$) is ErrTypeNotFound without asking the store, so
// bytes the database cannot hold (NUL, invalid UTF-8) never reach it.
func typeParam(r *http.Request) (string, error) {
	typ, err := pathParam(r, "type")
	if err != nil {
		return "", err
	}
	if !validTypeName(typ) {
		return "", fmt.Errorf("%w: %q is not a workflow type name", engine.ErrTypeNotFound, typ)
	}
	return typ, nil
}

func validTypeName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// checkQuery wraps h so that a request with a query parameter outside allowed (the
// route's declaration in the route table), or with one given more than once, is a 400
// problem naming it. Query strings that do not parse are refused the same way, so a
// handler never sees a parameter it did not declare.
func checkQuery(allowed []string, h handlerFunc) handlerFunc {
	if slices.Contains(allowed, anyQuery) {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.RawQuery == "" {
			return h(w, r)
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return fmt.Errorf("%w: the query string does not parse: %v", errMalformed, err)
		}
		names := slices.Sorted(maps.Keys(q))
		for _, name := range names {
			switch {
			case !slices.Contains(allowed, name) && len(allowed) == 0:
				return fmt.Errorf("%w: %q; this operation takes no query parameters", errUnknownQueryParameter, name)
			case !slices.Contains(allowed, name):
				return fmt.Errorf("%w: %q; this operation takes %s", errUnknownQueryParameter, name, strings.Join(allowed, ", "))
			case len(q[name]) > 1:
				return fmt.Errorf("%w: query parameter %s is given %d times", errMalformed, name, len(q[name]))
			}
		}
		return h(w, r)
	}
}

// textQuery returns a query parameter after checking that it is text a database can
// hold: valid UTF-8 without control characters.
func textQuery(r *http.Request, name string) (string, error) {
	v := r.URL.Query().Get(name)
	if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
		return "", fmt.Errorf("%w: query parameter %s must be printable UTF-8 text", engine.ErrInvalidArgument, name)
	}
	return v, nil
}

// containsNULEscape reports whether a valid JSON document has a \u0000 escape in a
// string. PostgreSQL cannot store NUL in text or jsonb, so such bodies are refused up
// front instead of failing in the database.
func containsNULEscape(body []byte) bool {
	for i := 0; i < len(body)-1; i++ {
		if body[i] != '\\' {
			continue
		}
		if body[i+1] == 'u' && i+6 <= len(body) && string(body[i+2:i+6]) == "0000" {
			return true
		}
		i++ // skip the escaped character, so "\\u0000" (a backslash, then text) is fine
	}
	return false
}

// isJSONMediaType accepts application/json and any application/*+json (such as
// application/merge-patch+json), with no charset or charset utf-8.
func isJSONMediaType(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// readBody returns the request body after checking its media type (415), size (413)
// and encoding (400 for invalid UTF-8 or anything that is not one JSON value).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return s.readJSON(w, r, false)
}

// decodeBody reads the request body as readBody does and decodes it into dst as
// decodeStrict does.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	return decodeStrict(body, dst)
}

// readOptionalBody is readBody for a body that may be left out: an empty body (with
// any Content-Type, or none) returns nil and no error.
func (s *Server) readOptionalBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return s.readJSON(w, r, true)
}

func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, optional bool) ([]byte, error) {
	checkType := func() error {
		if ct := r.Header.Get("Content-Type"); !isJSONMediaType(ct) {
			if ct == "" {
				ct = "none"
			}
			return fmt.Errorf("%w: Content-Type must be application/json, got %s", errUnsupportedMediaType, ct)
		}
		return nil
	}
	if !optional { // a required body's media type is checked before it is read
		if err := checkType(); err != nil {
			return nil, err
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w: the limit is %d bytes", errBodyTooLarge, tooLarge.Limit)
	case err != nil:
		return nil, fmt.Errorf("%w: reading the body: %v", errMalformed, err)
	case len(bytes.TrimSpace(body)) == 0:
		if optional {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: the body is empty; send a JSON object", errMalformed)
	}
	if optional {
		if err := checkType(); err != nil {
			return nil, err
		}
	}
	switch {
	case !utf8.Valid(body):
		return nil, fmt.Errorf("%w: the body is not valid UTF-8", errMalformed)
	case !json.Valid(body):
		return nil, fmt.Errorf("%w: %s", errMalformed, jsonSyntaxError(body))
	case containsNULEscape(body):
		return nil, fmt.Errorf("%w: JSON strings must not contain \\u0000", errInvalidRequest)
	case jsonDepth(body) > maxJSONDepth:
		return nil, fmt.Errorf("%w: JSON nested deeper than %d levels", errMalformed, maxJSONDepth)
	}
	// A duplicate key or a number beyond float64 is refused before anything decodes
	// the body: a decision would see one of the duplicates and the stored event both,
	// and a huge number costs the JSON Schema validator seconds.
	if err := workflow.CheckJSON(body); err != nil {
		var je *workflow.JSONError
		if errors.As(err, &je) {
			return nil, &workflow.ValidationError{Err: errMalformed, Errors: []workflow.FieldError{{Path: je.Path, Message: je.Message}}}
		}
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return body, nil
}

// maxJSONDepth bounds how deeply a request body may nest objects and arrays. Nothing a
// workflow needs comes close, while compiling a JSON Schema nested thousands of levels
// deep costs seconds of CPU.
const maxJSONDepth = 64

// jsonDepth returns the deepest nesting of objects and arrays in a valid JSON document.
func jsonDepth(body []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// jsonSyntaxError describes where body stops being JSON.
func jsonSyntaxError(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("the body is not valid JSON: %v (at byte %d)", se, se.Offset)
	}
	if err != nil {
		return "the body is not valid JSON: " + err.Error()
	}
	return "the body is not valid JSON"
}

// decodeStrict decodes a JSON object into dst, refusing unknown fields and values of
// the wrong type with a message that names the field.
func decodeStrict(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return fmt.Errorf("%w: field %q must be %s, not %s", errMalformed, te.Field, jsonTypeName(te.Type.Kind().String()), te.Value)
		case errors.As(err, &te):
			return fmt.Errorf("%w: the body must be a JSON object, not %s", errMalformed, te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Errorf("%w: unknown field %s", errMalformed, strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	return nil
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return kind
}

// intQuery parses an optional integer query parameter; 0 when absent.
// Errors: engine.ErrInvalidArgument when it is not an integer in [lo, hi].
func intQuery(r *http.Request, name string, lo, hi int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		if hi >= 1<<31-1 {
			return 0, fmt.Errorf("%w: query parameter %s must be an integer of at least %d", engine.ErrInvalidArgument, name, lo)
		}
		return 0, fmt.Errorf("%w: query parameter %s must be an integer from %d to %d", engine.ErrInvalidArgument, name, lo, hi)
	}
	return n, nil
}

// pageQuery reads the cursor and limit every list takes (limit 0 when absent: the
// engine's default). Errors: engine.ErrInvalidArgument.
func pageQuery(r *http.Request) (cursor string, limit int, err error) {
	n, err := intQuery(r, "limit", 1, engine.MaxPageSize)
	if err != nil {
		return "", 0, err
	}
	if cursor, err = textQuery(r, "cursor"); err != nil {
		return "", 0, err
	}
	return cursor, int(n), nil
}

// timeQuery parses an optional RFC 3339 query parameter; the zero time when absent.
func timeQuery(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: query parameter %s must be an RFC 3339 time such as 2030-01-02T15:04:05Z", engine.ErrInvalidArgument, name)
	}
	return t.UTC(), nil
}

// boolQuery parses an optional boolean query parameter; false when absent.
func boolQuery(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%w: query parameter %s must be true or false", engine.ErrInvalidArgument, name)
	}
	return b, nil
}

// ifMatchVersion parses an If-Match header of the form "<version>" (an ETag this API
// sends) into a version; nil when absent. A bare number is accepted too.
func ifMatchVersion(h string) (*int64, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return nil, nil
	}
	v := strings.TrimSuffix(strings.TrimPrefix(h, `"`), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || strings.HasPrefix(h, "W/") {
		return nil, fmt.Errorf(`%w: If-Match must be a workflow version in quotes, like "3" ("0": must not exist yet)`, errMalformed)
	}
	return &n, nil
}

// validHeaderToken checks an Idempotency-Key or X-Request-Id: 1–255 visible ASCII
// characters.
func validHeaderToken(v string) bool {
	if v == "" || len(v) > 255 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// writeJSON answers with v as JSON (without HTML escaping: CEL's ">=" stays readable).
func writeJSON(w http.ResponseWriter, status int, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	writeRaw(w, status, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return nil
}

// writeRaw answers with an already encoded JSON body.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
