// Package apitest is the HTTP client of ironflow's own end-to-end tests, reliability
// tests and benchmarks: it talks to a running server as a user's HTTP client does,
// sends a request byte for byte when asked (odd paths, header names as given, no
// Content-Type), reads whole responses and never follows redirects.
//
// It imports nothing of ours and no testing package: the helpers that fail a test take
// the T interface, which *testing.T satisfies.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of Options.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultIdleConnsPerHost = 64
)

// T is the part of testing.TB the failing helpers use.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Options configures a Client.
type Options struct {
	// Key is the bearer key sent with every request that does not ask for none.
	Key string
	// Timeout bounds one request, its body read included (DefaultTimeout when zero).
	Timeout time.Duration
	// IdleConnsPerHost bounds the kept-alive connections to the server
	// (DefaultIdleConnsPerHost when zero); load generators raise it.
	IdleConnsPerHost int
}

// Client sends requests to one server.
type Client struct {
	// BaseURL is the server's address, "http://127.0.0.1:8080"; a request's Path is
	// appended to it.
	BaseURL string
	// Key is the bearer key sent with every request that does not ask for none.
	Key  string
	http *http.Client
}

// New returns a Client for the server at baseURL.
func New(baseURL string, o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.IdleConnsPerHost <= 0 {
		o.IdleConnsPerHost = DefaultIdleConnsPerHost
	}
	return &Client{
		BaseURL: baseURL,
		Key:     o.Key,
		http: &http.Client{
			Timeout: o.Timeout,
			Transport: &http.Transport{
				MaxIdleConns:        o.IdleConnsPerHost,
				MaxIdleConnsPerHost: o.IdleConnsPerHost,
				IdleConnTimeout:     time.Minute,
				DisableCompression:  true,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Close closes the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Request is one request to send.
type Request struct {
	Method string
	// Path is appended to the base URL; already escaped, it may hold a query.
	Path string
	// Body is sent as is when a string, []byte or io.Reader, as JSON otherwise; nil
	// sends none.
	Body any
	// Header is sent as given: names are not canonicalised.
	Header map[string]string
	// NoAuth sends no Authorization header.
	NoAuth bool
	// ContentType replaces application/json for a request with a body; "-" sends none.
	ContentType string
	// Raw sends Path byte for byte as the request target, even when it is not a valid
	// URL path.
	Raw bool
}

// Response is a response read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object, failing the test when it is not one.
func (r Response) JSON(t T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("apitest: body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// Send sends r and reads the whole response. Errors: r's body cannot be encoded, or the
// request fails in transport (the server's answer, whatever its status, is no error).
func (c *Client) Send(ctx context.Context, r Request) (Response, error) {
	var body io.Reader
	switch b := r.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	case io.Reader:
		body = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return Response{}, fmt.Errorf("apitest: encode body: %w", err)
		}
		body = bytes.NewReader(raw)
	}
	target := c.BaseURL + r.Path
	if r.Raw {
		target = c.BaseURL + "/"
	}
	hr, err := http.NewRequestWithContext(ctx, r.Method, target, body)
	if err != nil {
		return Response{}, fmt.Errorf("apitest: %w", err)
	}
	if r.Raw {
		hr.URL.Opaque = "//" + hr.URL.Host + r.Path
	}
	if body != nil {
		switch r.ContentType {
		case "":
			hr.Header.Set("Content-Type", "application/json")
		case "-":
		default:
			hr.Header.Set("Content-Type", r.ContentType)
		}
	}
	if !r.NoAuth && c.Key != "" {
		hr.Header.Set("Authorization", "Bearer "+c.Key)
	}
	for k, v := range r.Header {
		hr.Header[k] = []string{v}
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("apitest: read response: %w", err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Expect sends r and returns the response when its status is one of want. Errors:
// Send's, or the status (with the start of the body) when it is another.
func (c *Client) Expect(ctx context.Context, r Request, want ...int) (Response, error) {
	resp, err := c.Send(ctx, r)
	if err != nil {
		return resp, err
	}
	for _, w := range want {
		if resp.Status == w {
			return resp, nil
		}
	}
	return resp, fmt.Errorf("%s %s: status %d: %.300s", r.Method, r.Path, resp.Status, resp.Body)
}

// Do sends r and fails the test on a transport error.
func (c *Client) Do(t T, r Request) Response {
	t.Helper()
	resp, err := c.Send(context.Background(), r)
	if err != nil {
		t.Fatalf("apitest: %s %s: %v", r.Method, r.Path, err)
	}
	return resp
}

// Get is Do for a GET of path.
func (c *Client) Get(t T, path string) Response {
	t.Helper()
	return c.Do(t, Request{Method: http.MethodGet, Path: path})
}

// ListAll pages through a list route (path may hold a query) with limit=500, following
// next_cursor, and returns every item. It fails the test on an answer other than 200
// or a body that is not a page, and after 10,000 pages.
func (c *Client) ListAll(t T, path string) []map[string]any {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var items []map[string]any
	cursor := ""
	for range 10000 {
		p := path + sep + "limit=500"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		r := c.Get(t, p)
		if r.Status != http.StatusOK {
			t.Fatalf("apitest: GET %s: status %d: %.300s", p, r.Status, r.Body)
		}
		var page struct {
			Items []map[string]any `json:"items"`
			Next  string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.Body, &page); err != nil {
			t.Fatalf("apitest: GET %s: not a page: %v", p, err)
		}
		items = append(items, page.Items...)
		if page.Next == "" {
			return items
		}
		cursor = page.Next
	}
	t.Fatalf("apitest: listing %s did not end", path)
	return nil
}
