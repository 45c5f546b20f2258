// Package client is the Go client of the ironflow HTTP API: define workflow types,
// send inputs and read their decisions, follow a workflow's history, terminate a
// workflow, and retry dead effects and timers. The ironflow CLI (cmd/ironflow) is
// built on it.
//
// Every method returns a *Problem as its error when the server answers with a problem
// (check its Type), and another error when the request could not be made. A rejected
// or already-completed input is not an error: it is a Result with that Outcome.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one ironflow server. It is safe for concurrent use.
type Client struct {
	baseURL string
	key     string
	http    *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithAPIKey sends key as the bearer token (one of the server's IRONFLOW_API_KEYS).
func WithAPIKey(key string) Option { return func(c *Client) { c.key = key } }

// WithHTTPClient sends requests with hc instead of a client with a 60 s timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// New returns a Client for the server at baseURL ("http://127.0.0.1:8080"). Errors:
// baseURL is not an http or https URL.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: %q is not an http(s) URL of an ironflow server", baseURL)
	}
	c := &Client{baseURL: strings.TrimSuffix(baseURL, "/"), http: &http.Client{Timeout: time.Minute}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// PathEscape escapes a type or id for a path, as the server expects ("a/b" is "a%2Fb").
func pathEscape(s string) string { return url.PathEscape(s) }

// PutDefinition stores def as the next version of the workflow type typ, unless it
// equals the latest version (created is then false). An invalid definition is a
// *Problem of type "invalid_definition" listing every error with its JSON path.
func (c *Client) PutDefinition(ctx context.Context, typ string, def []byte) (d Definition, created bool, err error) {
	resp, err := c.do(ctx, http.MethodPut, "/v1/workflow-types/"+pathEscape(typ), nil, json.RawMessage(def), nil, &d)
	if err != nil {
		return Definition{}, false, err
	}
	return d, resp.StatusCode == http.StatusCreated, nil
}

// GetDefinition returns a type's definition: the latest when version is 0.
func (c *Client) GetDefinition(ctx context.Context, typ string, version int) (Definition, error) {
	path := "/v1/workflow-types/" + pathEscape(typ)
	if version > 0 {
		path += "/versions/" + strconv.Itoa(version)
	}
	var d Definition
	_, err := c.do(ctx, http.MethodGet, path, nil, nil, nil, &d)
	return d, err
}

// ListDefinitions returns a page of the latest definition of every type, by name.
func (c *Client) ListDefinitions(ctx context.Context, cursor string, limit int) (Page[Definition], error) {
	var p Page[Definition]
	_, err := c.do(ctx, http.MethodGet, "/v1/workflow-types", pageQuery(nil, cursor, limit), nil, nil, &p)
	return p, err
}

// Diagram returns a type's state diagram: Mermaid, or Graphviz DOT when format is
// "dot"; version 0 is the latest.
func (c *Client) Diagram(ctx context.Context, typ, format string, version int) (string, error) {
	q := url.Values{}
	if format != "" {
		q.Set("format", format)
	}
	if version > 0 {
		q.Set("version", strconv.Itoa(version))
	}
	var text bytes.Buffer
	_, err := c.do(ctx, http.MethodGet, "/v1/workflow-types/"+pathEscape(typ)+"/diagram", q, nil, nil, &text)
	return text.String(), err
}

// Input is an input to send.
type Input struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
	// DeliverAfter ("90s") or DeliverAt (RFC 3339) store the input as a timer that
	// sends it later; the Result's Outcome is then OutcomeScheduled.
	DeliverAfter string `json:"deliver_after,omitempty"`
	DeliverAt    string `json:"deliver_at,omitempty"`
}

// SendOptions are the optional parts of Send.
type SendOptions struct {
	// IdempotencyKey makes a retry return the first answer instead of deciding again.
	IdempotencyKey string
	// IfVersion, when not nil, makes the input conditional: a *Problem of type
	// "version_mismatch" unless the instance is at exactly this version (0: it must
	// not exist yet).
	IfVersion *int64
	// DryRun decides and answers without committing anything.
	DryRun bool
}

// Send sends an input to the workflow typ/id and returns the decision. With id ""
// the server makes the id (Result.Workflow.ID when accepted).
func (c *Client) Send(ctx context.Context, typ, id string, in Input, o SendOptions) (*Result, error) {
	path := "/v1/workflows/" + pathEscape(typ) + "/inputs"
	if id != "" {
		path = "/v1/workflows/" + pathEscape(typ) + "/" + pathEscape(id) + "/inputs"
	}
	q := url.Values{}
	if o.DryRun {
		q.Set("dry_run", "true")
	}
	var res Result
	resp, err := c.do(ctx, http.MethodPost, path, q, in, writeHeaders(o.IdempotencyKey, o.IfVersion), &res)
	if err != nil {
		return nil, err
	}
	res.Replayed = resp.Header.Get("Idempotent-Replayed") == "true"
	return &res, nil
}

// TerminateOptions are the optional parts of Terminate.
type TerminateOptions struct {
	// IdempotencyKey makes a retry return the first answer.
	IdempotencyKey string
	// IfVersion, when not nil, terminates only an instance at exactly this version
	// (else a *Problem of type "version_mismatch").
	IfVersion *int64
}

// Terminate ends the running workflow typ/id from outside, with status "terminated",
// and says why (reason, up to 1 KiB, is kept in the input log): its pending timers and
// effects are cancelled. The Result is accepted with the terminated workflow; an
// instance that has ended already gives a Result with OutcomeAlreadyCompleted and is
// left as it was. A missing instance is a *Problem of type "workflow_not_found".
func (c *Client) Terminate(ctx context.Context, typ, id, reason string, o TerminateOptions) (*Result, error) {
	var res Result
	resp, err := c.do(ctx, http.MethodPost, "/v1/workflows/"+pathEscape(typ)+"/"+pathEscape(id)+"/terminate", nil,
		struct {
			Reason string `json:"reason"`
		}{reason}, writeHeaders(o.IdempotencyKey, o.IfVersion), &res)
	if err != nil {
		return nil, err
	}
	res.Replayed = resp.Header.Get("Idempotent-Replayed") == "true"
	return &res, nil
}

// writeHeaders are the preconditions of a write: an idempotency key and an expected
// version, each when given.
func writeHeaders(idempotencyKey string, ifVersion *int64) http.Header {
	h := http.Header{}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	if ifVersion != nil {
		h.Set("If-Match", `"`+strconv.FormatInt(*ifVersion, 10)+`"`)
	}
	return h
}

// GetWorkflow returns an instance; with atVersion > 0, its state at that version.
func (c *Client) GetWorkflow(ctx context.Context, typ, id string, atVersion int64) (Workflow, error) {
	q := url.Values{}
	if atVersion > 0 {
		q.Set("at_version", strconv.FormatInt(atVersion, 10))
	}
	var w Workflow
	_, err := c.do(ctx, http.MethodGet, "/v1/workflows/"+pathEscape(typ)+"/"+pathEscape(id), q, nil, nil, &w)
	return w, err
}

// ListEvents returns a page of a workflow's history, from the start when cursor is "".
func (c *Client) ListEvents(ctx context.Context, typ, id, cursor string, limit int) (Page[Event], error) {
	var p Page[Event]
	_, err := c.do(ctx, http.MethodGet, "/v1/workflows/"+pathEscape(typ)+"/"+pathEscape(id)+"/events", pageQuery(nil, cursor, limit), nil, nil, &p)
	return p, err
}

// FollowEvents calls f with every event of a workflow in order, from the one after
// cursor ("" for the first), then waits for new ones, asking again every interval,
// until ctx ends or f returns an error. It returns f's error, or ctx's.
func (c *Client) FollowEvents(ctx context.Context, typ, id, cursor string, interval time.Duration, f func(Event) error) error {
	for {
		p, err := c.ListEvents(ctx, typ, id, cursor, 500)
		if err != nil {
			return err
		}
		for _, e := range p.Items {
			if err := f(e); err != nil {
				return err
			}
			cursor = strconv.FormatInt(e.Seq, 10)
		}
		if p.NextCursor != "" {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// ListInputs returns a page of the inputs a workflow received and their outcomes.
func (c *Client) ListInputs(ctx context.Context, typ, id, cursor string, limit int) (Page[InputRecord], error) {
	var p Page[InputRecord]
	_, err := c.do(ctx, http.MethodGet, "/v1/workflows/"+pathEscape(typ)+"/"+pathEscape(id)+"/inputs", pageQuery(nil, cursor, limit), nil, nil, &p)
	return p, err
}

// ListChildren returns a page of the children of an instance (the instances its sends
// with child created), oldest first, of one status when status is not "".
func (c *Client) ListChildren(ctx context.Context, typ, id, status, cursor string, limit int) (Page[Workflow], error) {
	var p Page[Workflow]
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/workflows/"+pathEscape(typ)+"/"+pathEscape(id)+"/children", pageQuery(q, cursor, limit), nil, nil, &p)
	return p, err
}

// ListFilter selects effects or timers; every field is optional.
type ListFilter struct {
	Status       string // pending, delivered, dead (effects); pending, fired, cancelled, dead (timers)
	WorkflowType string
	WorkflowID   string
	Cursor       string
	Limit        int
}

func (f ListFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "workflow_type": f.WorkflowType, "workflow_id": f.WorkflowID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return pageQuery(q, f.Cursor, f.Limit)
}

// ListEffects returns a page of effects, oldest first.
func (c *Client) ListEffects(ctx context.Context, f ListFilter) (Page[Effect], error) {
	var p Page[Effect]
	_, err := c.do(ctx, http.MethodGet, "/v1/effects", f.query(), nil, nil, &p)
	return p, err
}

// GetEffect returns an effect with its delivery attempts.
func (c *Client) GetEffect(ctx context.Context, id string) (Effect, error) {
	var e Effect
	_, err := c.do(ctx, http.MethodGet, "/v1/effects/"+pathEscape(id), nil, nil, nil, &e)
	return e, err
}

// RetryEffect puts a dead effect back to pending with a fresh attempt budget. A
// *Problem of type "wrong_status" when it is not dead.
func (c *Client) RetryEffect(ctx context.Context, id string) (Effect, error) {
	var e Effect
	_, err := c.do(ctx, http.MethodPost, "/v1/effects/"+pathEscape(id)+"/retry", nil, nil, nil, &e)
	return e, err
}

// ListTimers returns a page of timers, oldest first.
func (c *Client) ListTimers(ctx context.Context, f ListFilter) (Page[Timer], error) {
	var p Page[Timer]
	_, err := c.do(ctx, http.MethodGet, "/v1/timers", f.query(), nil, nil, &p)
	return p, err
}

// RetryTimer puts a dead timer back to pending with a fresh attempt budget.
func (c *Client) RetryTimer(ctx context.Context, id string) (Timer, error) {
	var t Timer
	_, err := c.do(ctx, http.MethodPost, "/v1/timers/"+pathEscape(id)+"/retry", nil, nil, nil, &t)
	return t, err
}

func pageQuery(q url.Values, cursor string, limit int) url.Values {
	if q == nil {
		q = url.Values{}
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

// do sends one request and decodes a JSON answer into out (a *bytes.Buffer takes a
// text answer as is). A problem+json answer is returned as a *Problem; a 409 JSON
// answer is a decision and is decoded like a 200.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, h http.Header, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("client: encode body: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	u := c.baseURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: read answer: %w", method, path, err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" {
		p := &Problem{}
		if err := json.Unmarshal(raw, p); err != nil {
			return nil, fmt.Errorf("client: %s %s: %d with an unreadable problem: %w", method, path, resp.StatusCode, err)
		}
		return resp, p
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusConflict {
		return nil, fmt.Errorf("client: %s %s: unexpected %s: %.200s", method, path, resp.Status, raw)
	}
	if buf, ok := out.(*bytes.Buffer); ok {
		buf.Write(raw)
		return resp, nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("client: %s %s: decode answer: %w", method, path, err)
	}
	return resp, nil
}

// IsProblem reports whether err is a *Problem of type typ.
func IsProblem(err error, typ string) bool {
	var p *Problem
	return errors.As(err, &p) && p.Type == typ
}
