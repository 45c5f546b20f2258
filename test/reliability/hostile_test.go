package reliability

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// attack is one hostile request and the status it must get.
type attack struct {
	name string
	req  request
	// want is the exact status; 0 accepts any 4xx.
	want int
}

// nested returns depth levels of {"a": … } around a leaf.
func nested(depth int, open, close string) string {
	return strings.Repeat(open, depth) + "1" + strings.Repeat(close, depth)
}

func hostileAttacks() []attack {
	const in = "/v1/workflows/order/o-1/inputs"
	valid := `{"type":"pay","data":{"amount":1}}`
	huge := strings.Repeat("x", 900<<10)
	post := func(path string, body any) request { return request{Method: http.MethodPost, Path: path, Body: body} }
	get := func(path string) request { return request{Method: http.MethodGet, Path: path} }
	withHeader := func(r request, k, v string) request {
		if r.Header == nil {
			r.Header = map[string]string{}
		}
		r.Header[k] = v
		return r
	}
	noAuth := func(r request) request { r.NoAuth = true; return r }
	rawPath := func(r request) request { r.Raw = true; return r }
	ctype := func(r request, ct string) request { r.ContentType = ct; return r }
	bad := base64.RawURLEncoding.EncodeToString([]byte(`{"rid":-1,"x":"' OR 1=1 --"}`))

	return []attack{
		// Sizes.
		{"oversized body", post(in, `{"type":"pay","data":{"pad":"`+strings.Repeat("a", 2<<20)+`"}}`), 413},
		{"oversized body without length", post(in, io.MultiReader(strings.NewReader(`{"type":"pay","data":{"pad":"`+strings.Repeat("a", 2<<20)+`"}}`))), 413},
		{"oversized definition", request{Method: http.MethodPut, Path: "/v1/workflow-types/big", Body: `{"pad":"` + strings.Repeat("a", 2<<20) + `"}`}, 413},
		{"huge string as input type", post(in, `{"type":"`+huge+`"}`), 422},
		{"huge string in data", post(in, `{"type":"pay","data":{"note":"`+huge+`"}}`), 422},
		{"huge id", post("/v1/workflows/order/"+strings.Repeat("i", 20000)+"/inputs", valid), 400},
		{"huge URL", get("/v1/workflows/order/" + strings.Repeat("u", 70<<10)), 0},
		{"huge idempotency key", withHeader(post(in, valid), "Idempotency-Key", strings.Repeat("k", 4000)), 400},

		// Nesting.
		{"deep nesting (objects)", post(in, `{"type":"pay","data":`+nested(100000, `{"a":`, `}`)+`}`), 400},
		{"deep nesting (arrays)", post(in, `{"type":"pay","data":{"a":`+nested(200000, `[`, `]`)+`}}`), 400},
		{"deep nesting over the depth limit", post(in, `{"type":"nope","data":`+nested(5000, `{"a":`, `}`)+`}`), 400},
		{"deep nesting under the limit, bad input", post(in, `{"type":"nope","data":`+nested(60, `{"a":`, `}`)+`}`), 422},
		{"deep nesting in a definition", request{Method: http.MethodPut, Path: "/v1/workflow-types/deep", Body: `{"initial_state":"a","states":` + nested(100000, `{"a":`, `}`) + `}`}, 400},
		{"deep schema in a definition", request{Method: http.MethodPut, Path: "/v1/workflow-types/deep", Body: `{"initial_state":"a","states":{"a":{"terminal":true}},"inputs":{"x":{"schema":` + nested(3000, `{"not":`, `}`) + `}}}`}, 400},
		{"deep nesting in a definition under the limit", request{Method: http.MethodPut, Path: "/v1/workflow-types/deep", Body: `{"initial_state":"a","states":{"a":{"terminal":true}},"inputs":{"x":{"schema":` + nested(55, `{"not":`, `}`) + `}}}`}, 0},

		// Encoding.
		{"invalid UTF-8 body", post(in, []byte("{\"type\":\"pay\",\"data\":{\"a\":\"\xff\xfe\"}}")), 400},
		{"invalid UTF-8 in id", post("/v1/workflows/order/%FF%FE/inputs", valid), 400},
		{"invalid UTF-8 in cursor", get("/v1/workflows?cursor=%FF"), 400},
		{"invalid UTF-8 in type filter", get("/v1/workflows?type=%C3%28"), 400},
		{"NUL escape in data", post(in, `{"type":"pay","data":{"amount":1,"n":"\u0000"}}`), 422},
		{"not JSON", post(in, `type=pay&amount=1`), 400},
		{"JSON array", post(in, `[{"type":"pay"}]`), 400},
		{"two JSON values", post(in, valid+valid), 400},
		{"empty body", post(in, ``), 400},
		{"unknown field", post(in, `{"type":"pay","data":{"amount":1},"admin":true}`), 400},
		{"wrong field type", post(in, `{"type":["pay"]}`), 400},
		{"unknown field in definition", request{Method: http.MethodPut, Path: "/v1/workflow-types/extra", Body: `{"initial_state":"a","states":{"a":{"terminal":true}},"owner":"root"}`}, 0},

		// Ids.
		{"control character in id", post("/v1/workflows/order/a%00b/inputs", valid), 400},
		{"newline in id", post("/v1/workflows/order/a%0Ab/inputs", valid), 400},
		{"escape sequence in id", post("/v1/workflows/order/%1B%5B2J/inputs", valid), 400},
		{"bad percent-encoding in id", rawPath(post("/v1/workflows/order/%ZZ/inputs", valid)), 400},
		{"SQL in id (read)", get("/v1/workflows/order/" + url.PathEscape("o-1' OR '1'='1")), 404},
		{"SQL in id (events)", get("/v1/workflows/order/" + url.PathEscape("x'); DROP TABLE events;--") + "/events"), 404},
		{"SQL in id, rejected input", post("/v1/workflows/order/"+url.PathEscape("x'; DELETE FROM instances;--")+"/inputs", `{"type":"pay","data":{}}`), 422},
		{"SQL in type", get("/v1/workflow-types/" + url.PathEscape("order' OR 1=1")), 404},
		{"SQL in list filter", get("/v1/workflows?type=" + url.QueryEscape("order' OR '1'='1")), 200},
		{"path traversal in id", get("/v1/workflows/order/..%2F..%2F..%2Fetc%2Fpasswd"), 404},
		{"path traversal in path", get("/v1/workflows/../../etc/passwd"), 404},
		{"path traversal in type", request{Method: http.MethodPut, Path: "/v1/workflow-types/..%2F..%2Ftmp%2Fx", Body: orderDefinitionText}, 422},
		{"upper-case type", request{Method: http.MethodPut, Path: "/v1/workflow-types/Order", Body: orderDefinitionText}, 0},
		{"swagger traversal", get("/docs/..%2F..%2F..%2Fetc%2Fpasswd"), 0},

		// Paging.
		{"garbage cursor", get("/v1/workflows?cursor=not-a-cursor"), 400},
		{"forged cursor", get("/v1/workflows?cursor=" + bad), 400},
		{"long cursor", get("/v1/workflows?cursor=" + strings.Repeat("A", 6000)), 400},
		{"garbage cursor on inputs", get("/v1/workflows/order/o-1/inputs?cursor=%27%3B--"), 400},
		{"huge limit", get("/v1/workflows?limit=1000000"), 400},
		{"negative limit", get("/v1/workflows?limit=-1"), 400},
		{"overflowing limit", get("/v1/workflows?limit=99999999999999999999999"), 400},
		{"non-numeric limit", get("/v1/workflows/order/o-1/events?limit=ten"), 400},
		{"negative after", get("/v1/workflows/order/o-1/events?after=-5"), 400},
		{"huge at_version", get("/v1/workflows/order/o-1?at_version=9223372036854775807"), 400},
		{"bad status filter", get("/v1/workflows?status=%27%20OR%201%3D1"), 400},

		// Content types.
		{"text/plain", ctype(post(in, valid), "text/plain"), 415},
		{"no content type", ctype(post(in, valid), "-"), 415},
		{"form", ctype(post(in, valid), "application/x-www-form-urlencoded"), 415},
		{"xml", ctype(post(in, `<input type="pay"/>`), "application/xml"), 415},
		{"json with latin1 charset", ctype(post(in, valid), "application/json; charset=latin1"), 415},
		{"malformed media type", ctype(post(in, valid), "application/json; ;;=="), 415},
		{"multipart", ctype(post(in, valid), "multipart/form-data; boundary=x"), 415},

		// Headers.
		{"bad If-Match", withHeader(post(in, valid), "If-Match", `W/"1"`), 400},
		{"If-Match overflow", withHeader(post(in, valid), "If-Match", `"99999999999999999999999"`), 400},
		{"non-ASCII idempotency key", withHeader(post(in, valid), "Idempotency-Key", "k\u00e9y"), 400},
		{"bad dry_run", post(in+"?dry_run=maybe", valid), 400},
		{"negative expected_version", post(in, `{"type":"pay","data":{"amount":1},"expected_version":-1}`), 422},
		{"method override ignored", withHeader(post("/v1/workflows/order/o-1", valid), "X-HTTP-Method-Override", "DELETE"), 405},
		{"DELETE is not a route", request{Method: http.MethodDelete, Path: "/v1/workflows/order/o-1"}, 405},

		// Authentication.
		{"no Authorization", noAuth(post(in, valid)), 401},
		{"no Authorization on a read", noAuth(get("/v1/workflows")), 401},
		{"no Authorization on metrics", noAuth(get("/metrics")), 401},
		{"blank bearer", noAuth(withHeader(post(in, valid), "Authorization", "Bearer ")), 401},
		{"bearer without token", noAuth(withHeader(post(in, valid), "Authorization", "Bearer")), 401},
		{"wrong key", noAuth(withHeader(post(in, valid), "Authorization", "Bearer wrong-key")), 401},
		{"key in upper case", noAuth(withHeader(post(in, valid), "Authorization", "Bearer "+strings.ToUpper(apiKey))), 401},
		{"key prefix", noAuth(withHeader(post(in, valid), "Authorization", "Bearer "+apiKey[:len(apiKey)-1])), 401},
		{"key with suffix", noAuth(withHeader(post(in, valid), "Authorization", "Bearer "+apiKey+"x")), 401},
		{"two keys", noAuth(withHeader(post(in, valid), "Authorization", "Bearer "+apiKey+","+apiKey2)), 401},
		{"key without scheme", noAuth(withHeader(post(in, valid), "Authorization", apiKey)), 401},
		{"basic scheme", noAuth(withHeader(post(in, valid), "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(apiKey+":")))), 401},
		{"token scheme", noAuth(withHeader(post(in, valid), "Authorization", "Token "+apiKey)), 401},
		{"key in query", noAuth(post(in+"?api_key="+apiKey, valid)), 401},
		{"key in access_token", noAuth(get("/v1/workflows?access_token=" + apiKey)), 401},
		{"key in X-Api-Key", noAuth(withHeader(get("/v1/workflows"), "X-Api-Key", apiKey)), 401},
		{"key in cookie", noAuth(withHeader(get("/v1/workflows"), "Cookie", "token="+apiKey)), 401},
		{"empty key list trick", noAuth(withHeader(get("/v1/workflows"), "Authorization", "Bearer ,")), 401},
	}
}

// orderDefinitionText is a small valid definition used where the body must not be the
// reason for a refusal.
const orderDefinitionText = `{"initial_state":"new","inputs":{"go":{}},"states":{"new":{"on":{"go":{"to":"done"}}},"done":{"terminal":true}}}`

// TestHostileInput sends every attack in hostileAttacks to a real server on both stores:
// each is answered with its 4xx (never a 5xx) as problem+json, and no table gains a
// row.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dbURL := newDatabaseURL(t, backend)
			srv := startServer(t, dbURL, nil)
			c := newClient(srv.URL, 30*time.Second)
			defer c.Close()

			c.putDefinition(t, "order", orderDefinition(t))
			r := c.Do(t, request{Method: http.MethodPost, Path: "/v1/workflows/order/o-1/inputs",
				Body: `{"type":"place","data":{"total":40,"order_ref":"r-1"}}`})
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

			// An id that looks like SQL is only text: stored and read back verbatim.
			sqlID := `o'; DROP TABLE instances; --`
			r = c.Do(t, request{Method: http.MethodPost, Path: "/v1/workflows/order/" + url.PathEscape(sqlID) + "/inputs",
				Body: `{"type":"place","data":{"total":1,"order_ref":"r'); DELETE FROM inputs;--"}}`})
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			r = c.Get(t, "/v1/workflows/order/"+url.PathEscape(sqlID))
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Equal(t, sqlID, r.JSON(t)["id"])

			before := tableCounts(t, dbURL)
			for _, a := range hostileAttacks() {
				start := time.Now()
				resp, err := c.Send(t.Context(), a.req)
				require.NoError(t, err, a.name)
				if d := time.Since(start); d > time.Second {
					t.Logf("slow: %s took %s", a.name, d)
				}
				require.Lessf(t, resp.Status, 500, "%s: %s %s answered %d: %.300s", a.name, a.req.Method, a.req.Path, resp.Status, resp.Body)
				switch {
				case a.want == http.StatusOK:
					require.Equalf(t, a.want, resp.Status, "%s: %.300s", a.name, resp.Body)
					continue
				case a.want != 0:
					require.Equalf(t, a.want, resp.Status, "%s: %.300s", a.name, resp.Body)
				default:
					require.GreaterOrEqualf(t, resp.Status, 400, "%s: %.300s", a.name, resp.Body)
				}
				// Go's HTTP server itself answers requests it cannot parse (a bad escape in
				// the path, an oversized header) in text/plain before any handler runs.
				if !a.req.Raw && resp.Status != http.StatusRequestHeaderFieldsTooLarge && !strings.HasPrefix(a.req.Path, "/docs") {
					require.Equalf(t, "application/problem+json", resp.Header.Get("Content-Type"), "%s: %.300s", a.name, resp.Body)
				}
			}
			after := tableCounts(t, dbURL)
			require.Equal(t, before, after, "a hostile request wrote something")

			// The instance the attacks aimed at is untouched.
			r = c.Get(t, "/v1/workflows/order/o-1")
			require.Equal(t, http.StatusOK, r.Status)
			require.EqualValues(t, 1, r.JSON(t)["version"])
			errs, panics := srv.logCounts()
			require.Zero(t, panics, "the server logged a panic")
			require.Zero(t, errs, "the server logged an error")
			t.Logf("%s: %d attacks, all 4xx, tables unchanged: %v", backend, len(hostileAttacks()), fmt.Sprint(after))
		})
	}
}
