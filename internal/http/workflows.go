package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// InputRequest is the body of an input.
type InputRequest struct {
	// Type is the input type, declared in the definition's inputs.
	Type string `json:"type" example:"pay"`
	// Data is validated against the input's JSON Schema; {} when absent.
	Data json.RawMessage `json:"data,omitempty" swaggertype:"object"`
	// ExpectedVersion: 412 unless the instance is at exactly this version (0: it must
	// not exist yet). The same as If-Match; when both are sent they must agree.
	ExpectedVersion *int64 `json:"expected_version,omitempty" example:"1"`
	// DeliverAfter stores the input as a durable timer executed after this Go duration
	// instead of deciding it now; the answer is 202 with the timer.
	DeliverAfter string `json:"deliver_after,omitempty" example:"90s"`
	// DeliverAt is DeliverAfter with an RFC 3339 time.
	DeliverAt string `json:"deliver_at,omitempty" example:"2030-01-02T15:04:05Z"`
}

// idempotentIDNamespace scopes the ids derived from idempotency keys by
// POST /v1/workflows/{type}/inputs.
const idempotentIDNamespace = "6f1d9a52-3c84-4e0b-9a57-2d2b8f4c7e10"

// handleInput decides one input for an instance.
//
//	@ID			sendInput
//	@Summary		Send an input to a workflow
//	@Description	Decides the input against the instance's state and its pinned definition. accepted (200) commits events, effects, timers and the instance in one transaction; rejected (409, with rejection) and already_completed (409) change nothing but are recorded. The first accepted input creates the instance. An Idempotency-Key makes retries return the first answer (same status and body, Idempotent-Replayed: true); If-Match or expected_version make it conditional (412); dry_run=true decides without committing.
//	@Tags			workflows
//	@Accept			json
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type			path		string			true	"workflow type"
//	@Param			id				path		string			true	"instance id: 1-200 printable characters, percent-encoded in the path"
//	@Param			input			body		InputRequest	true	"the input"
//	@Param			Idempotency-Key	header		string			false	"retries with the same key on the same instance return the first answer"
//	@Param			If-Match		header		string			false	"an ETag of this API, the workflow version in double quotes: 412 unless the instance is at exactly that version (version 0: it must not exist yet)"
//	@Param			dry_run			query		bool			false	"decide and answer without committing anything"
//	@Success		200				{object}	engine.Result	"accepted"
//	@Header			200				{string}	ETag			"the workflow version after the input, in double quotes"
//	@Header			200				{string}	Idempotent-Replayed	"true when an earlier request with the same Idempotency-Key answered"
//	@Success		202				{object}	ScheduledInput	"deliver_after or deliver_at: stored as a timer, decided when it fires"
//	@Header			202				{string}	Idempotent-Replayed	"true when an earlier request with the same Idempotency-Key scheduled this timer (nothing new is scheduled)"
//	@Failure		400				{object}	Problem			"malformed JSON, invalid UTF-8, unknown field, bad id, bad If-Match"
//	@Failure		401				{object}	Problem			"missing or wrong API key"
//	@Failure		429				{object}	Problem			"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404				{object}	Problem			"no such workflow type"
//	@Failure		409				{object}	engine.Result	"rejected or already_completed (a decision, not a problem); a unique key clash is a problem of type unique_key_conflict"
//	@Header			409				{string}	ETag			"the workflow version in double quotes, when the instance exists"
//	@Header			409				{string}	Idempotent-Replayed	"true when an earlier request with the same Idempotency-Key answered"
//	@Failure		412				{object}	Problem			"the instance is not at the expected version"
//	@Failure		413				{object}	Problem			"body over the limit"
//	@Failure		415				{object}	Problem			"Content-Type is not application/json"
//	@Failure		422				{object}	Problem			"undeclared input type, data fails its schema, an expression failed, or the Idempotency-Key was used with a different body"
//	@Failure		503				{object}	Problem			"database unavailable"
//	@Router			/v1/workflows/{type}/{id}/inputs [post]
func (s *Server) handleInput(w http.ResponseWriter, r *http.Request) error {
	typ, err := typeParam(r)
	if err != nil {
		return err
	}
	id, err := pathParam(r, "id")
	if err != nil {
		return err
	}
	return s.execute(w, r, typ, id)
}

// handleInputNewWorkflow decides an input for a new instance whose id the server makes.
//
//	@ID			startWorkflow
//	@Summary		Start a workflow with a server-made id
//	@Description	Like POST /v1/workflows/{type}/{id}/inputs for a new instance whose id the server makes: a UUIDv7, or, with an Idempotency-Key, a UUID derived from the type and the key, so that a retry reaches the same instance and replays the first answer. The id is in the Location header (and in workflow.id when accepted).
//	@Tags			workflows
//	@Accept			json
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type			path		string			true	"workflow type"
//	@Param			input			body		InputRequest	true	"the input"
//	@Param			Idempotency-Key	header		string			false	"retries with the same key return the first answer"
//	@Param			If-Match		header		string			false	"version 0 in double quotes (the instance must not exist yet) is the only useful value here"
//	@Param			dry_run			query		bool			false	"decide and answer without committing anything"
//	@Success		200				{object}	engine.Result	"accepted"
//	@Header			200				{string}	Location		"/v1/workflows/{type}/{id} of the new instance"
//	@Header			200				{string}	ETag			"the workflow version after the input, in double quotes"
//	@Header			200				{string}	Idempotent-Replayed	"true when an earlier request with the same Idempotency-Key answered"
//	@Success		202				{object}	ScheduledInput	"deliver_after or deliver_at: stored as a timer, decided when it fires"
//	@Header			202				{string}	Idempotent-Replayed	"true when an earlier request with the same Idempotency-Key scheduled this timer (nothing new is scheduled)"
//	@Header			202				{string}	Location		"/v1/workflows/{type}/{id} of the instance the input will be for"
//	@Failure		400				{object}	Problem			"malformed JSON, invalid UTF-8, unknown field, bad If-Match"
//	@Failure		401				{object}	Problem			"missing or wrong API key"
//	@Failure		429				{object}	Problem			"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404				{object}	Problem			"no such workflow type"
//	@Failure		409				{object}	engine.Result	"rejected (a decision, not a problem); a unique key clash is a problem of type unique_key_conflict"
//	@Header			409				{string}	Location		"/v1/workflows/{type}/{id} of the instance the input was for"
//	@Header			409				{string}	ETag			"the workflow version in double quotes, when the instance exists"
//	@Header			409				{string}	Idempotent-Replayed	"true when an earlier request with the same Idempotency-Key answered"
//	@Failure		412				{object}	Problem			"the instance is not at the expected version"
//	@Failure		413				{object}	Problem			"body over the limit"
//	@Failure		415				{object}	Problem			"Content-Type is not application/json"
//	@Failure		422				{object}	Problem			"undeclared input type, data fails its schema, an expression failed, or the Idempotency-Key was used with a different body"
//	@Failure		503				{object}	Problem			"database unavailable"
//	@Router			/v1/workflows/{type}/inputs [post]
func (s *Server) handleInputNewWorkflow(w http.ResponseWriter, r *http.Request) error {
	typ, err := typeParam(r)
	if err != nil {
		return err
	}
	id := s.engine.NewID()
	if key := r.Header.Get("Idempotency-Key"); validHeaderToken(key) {
		ns := uuid.MustParse(idempotentIDNamespace)
		id = uuid.NewSHA1(ns, []byte(typ+"\x00"+key)).String()
	}
	return s.execute(locationWriter{w, workflowPath(typ, id)}, r, typ, id)
}

// locationWriter sets Location on the answers that name the new instance: a decision
// (200, 409) or a scheduled input (202). A problem is written to the writer underneath
// and names nothing.
type locationWriter struct {
	http.ResponseWriter
	location string
}

func (lw locationWriter) WriteHeader(status int) {
	lw.Header().Set("Location", lw.location)
	lw.ResponseWriter.WriteHeader(status)
}

func workflowPath(typ, id string) string {
	return "/v1/workflows/" + url.PathEscape(typ) + "/" + url.PathEscape(id)
}

// writePreconditions reads the headers every write to an instance honours: the
// Idempotency-Key (400 when sent but not 1 to 255 visible ASCII characters) and the
// version If-Match expects (nil when absent).
func writePreconditions(r *http.Request) (key string, expected *int64, err error) {
	key = r.Header.Get("Idempotency-Key")
	if _, sent := r.Header["Idempotency-Key"]; sent && !validHeaderToken(key) {
		return "", nil, fmt.Errorf("%w: Idempotency-Key must be 1 to 255 visible ASCII characters", errMalformed)
	}
	expected, err = ifMatchVersion(r.Header.Get("If-Match"))
	if err != nil {
		return "", nil, err
	}
	return key, expected, nil
}

// execute reads an input request and answers with the engine's decision.
func (s *Server) execute(w http.ResponseWriter, r *http.Request, typ, id string) error {
	if err := engine.ValidateID(id); err != nil {
		return err
	}
	key, expected, err := writePreconditions(r)
	if err != nil {
		return err
	}
	dryRun, err := boolQuery(r, "dry_run")
	if err != nil {
		return err
	}
	var req InputRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Type == "" {
		return &workflow.ValidationError{Err: errInvalidRequest, Errors: []workflow.FieldError{{Path: "/type", Message: "is required: the input type, e.g. \"pay\""}}}
	}
	if req.DeliverAfter != "" || req.DeliverAt != "" {
		return s.scheduleInput(w, r, typ, id, key, req, expected != nil || req.ExpectedVersion != nil, dryRun)
	}
	switch {
	case req.ExpectedVersion != nil && *req.ExpectedVersion < 0:
		return &workflow.ValidationError{Err: errInvalidRequest, Errors: []workflow.FieldError{{Path: "/expected_version", Message: "must not be negative"}}}
	case req.ExpectedVersion != nil && expected != nil && *req.ExpectedVersion != *expected:
		return fmt.Errorf("%w: If-Match %d and expected_version %d disagree", errMalformed, *expected, *req.ExpectedVersion)
	case req.ExpectedVersion != nil:
		expected = req.ExpectedVersion
	}

	out, err := s.engine.Execute(r.Context(), typ, id, workflow.Input{Type: req.Type, Data: req.Data}, engine.ExecuteOptions{
		IdempotencyKey:  key,
		ExpectedVersion: expected,
		DryRun:          dryRun,
		Source:          store.SourceAPI,
	})
	if err != nil {
		return err
	}
	h := w.Header()
	if out.Replayed {
		h.Set("Idempotent-Replayed", "true")
	}
	if out.Version > 0 {
		h.Set("ETag", etag(out.Version))
	}
	writeRaw(w, outcomeStatus(out.Outcome), out.Body)
	return nil
}

// outcomeStatus is the status of each decision outcome (DESIGN §2).
func outcomeStatus(outcome string) int {
	if outcome == store.OutcomeAccepted {
		return http.StatusOK
	}
	return http.StatusConflict // rejected, already_completed
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// handleGetWorkflow returns one instance, optionally as it was at an earlier version.
//
//	@ID			getWorkflow
//	@Summary		Get a workflow
//	@Description	The instance with its current state; with at_version=N its state replayed from the history up to version N. With If-None-Match: "<version>" the answer is 304 while the instance is at that version; adding wait=30s holds the request until the version changes or the wait is over (then 304), without holding a database connection. If-None-Match: "0" with wait also waits for the instance to be created.
//	@Tags			workflows
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type		path		string	true	"workflow type"
//	@Param			id			path		string	true	"instance id, percent-encoded"
//	@Param			at_version	query		int		false	"replay the state up to this version"	minimum(1)
//	@Param			If-None-Match	header	string	false	"the ETag you have (the version in double quotes): 304 while unchanged"
//	@Param			wait		query		string	false	"with If-None-Match: wait up to this long for a change (Go duration or seconds; capped by IRONFLOW_MAX_WAIT)"
//	@Success		200			{object}	engine.WorkflowView
//	@Header			200			{string}	ETag	"the workflow version in double quotes, usable as If-Match"
//	@Success		304			"not modified: still at the If-None-Match version"
//	@Header			304			{string}	ETag	"the workflow version in double quotes (absent while the instance does not exist)"
//	@Failure		400			{object}	Problem	"bad id, at_version, If-None-Match or wait"
//	@Failure		401			{object}	Problem	"missing or wrong API key"
//	@Failure		429			{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404			{object}	Problem	"no such workflow"
//	@Failure		503			{object}	Problem	"database unavailable"
//	@Router			/v1/workflows/{type}/{id} [get]
func (s *Server) handleGetWorkflow(w http.ResponseWriter, r *http.Request) error {
	typ, id, err := workflowParams(r)
	if err != nil {
		return err
	}
	at, err := intQuery(r, "at_version", 1, 1<<62)
	if err != nil {
		return err
	}
	known, err := ifNoneMatch(r.Header.Values("If-None-Match"))
	if err != nil {
		return err
	}
	wait, err := s.waitQuery(r)
	if err != nil {
		return err
	}
	var wt *waiter
	for {
		changed, release := (<-chan struct{})(nil), func() {}
		if known != nil && wait > 0 && at == 0 && s.canWait() {
			// Registered before the read: a change committed after it wakes us.
			changed, release = s.feed.WatchInstance(typ, id)
		}
		v, err := s.engine.GetWorkflow(r.Context(), typ, id, at)
		version := v.Version
		if errors.Is(err, engine.ErrInstanceNotFound) && changed != nil && known.matches(0) {
			err = nil // waiting for the instance to be created
		}
		if err != nil {
			release()
			return err
		}
		if known == nil || !known.matches(version) {
			release()
			w.Header().Set("ETag", etag(v.Version))
			return writeJSON(w, http.StatusOK, v)
		}
		if changed == nil {
			return notModified(w, version)
		}
		if wt == nil {
			wt = s.newWaiter(w, r, wait)
			defer wt.stop()
		}
		woken := wt.wait(changed, false)
		release()
		if !woken {
			return notModified(w, version)
		}
	}
}

// notModified answers 304 for an instance still at version (0: it does not exist).
func notModified(w http.ResponseWriter, version int64) error {
	if version > 0 {
		w.Header().Set("ETag", etag(version))
	}
	w.WriteHeader(http.StatusNotModified)
	return nil
}

// eventsCursor reads where a page of an instance's events starts: cursor (the
// next_cursor of the previous page, as every list takes it) or its older spelling
// after=<seq>. Both name a seq; sending both is a 400 unless they agree.
func eventsCursor(r *http.Request) (int64, error) {
	after, err := intQuery(r, "after", 0, 1<<62)
	if err != nil {
		return 0, err
	}
	if r.URL.Query().Get("cursor") == "" {
		return after, nil
	}
	cursor, err := intQuery(r, "cursor", 0, 1<<62)
	if err != nil {
		return 0, fmt.Errorf("%w: not a cursor of this list", store.ErrInvalidCursor)
	}
	if r.URL.Query().Has("after") && after != cursor {
		return 0, fmt.Errorf("%w: after %d and cursor %d disagree; send one of them", engine.ErrInvalidArgument, after, cursor)
	}
	return cursor, nil
}

func workflowParams(r *http.Request) (typ, id string, err error) {
	if typ, err = typeParam(r); err != nil {
		return "", "", err
	}
	if id, err = pathParam(r, "id"); err != nil {
		return "", "", err
	}
	return typ, id, nil
}

// handleListEvents pages an instance's history.
//
//	@ID			listEvents
//	@Summary		List a workflow's events
//	@Description	The history in order, paged with cursor and limit like every list (after=<seq> is the older spelling of cursor). With wait=30s, when no event follows the cursor, the request is held until one is appended or the wait is over (then an empty page), without holding a database connection.
//	@Tags			workflows
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type	path		string	true	"workflow type"
//	@Param			id		path		string	true	"instance id, percent-encoded"
//	@Param			cursor	query		string	false	"next_cursor of the previous page"
//	@Param			after	query		int		false	"only events with a greater seq (the same as cursor)"	minimum(0)
//	@Param			limit	query		int		false	"page size (default 50)"								minimum(1)	maximum(500)
//	@Param			wait	query		string	false	"when no event follows the cursor, wait up to this long for one (Go duration or seconds; capped by IRONFLOW_MAX_WAIT)"
//	@Success		200		{object}	engine.Page[engine.EventView]
//	@Failure		400		{object}	Problem	"bad id, cursor, after, limit or wait"
//	@Failure		401		{object}	Problem	"missing or wrong API key"
//	@Failure		429		{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404		{object}	Problem	"no such workflow"
//	@Failure		503		{object}	Problem	"database unavailable"
//	@Router			/v1/workflows/{type}/{id}/events [get]
func (s *Server) handleListEvents(w http.ResponseWriter, r *http.Request) error {
	typ, id, err := workflowParams(r)
	if err != nil {
		return err
	}
	after, err := eventsCursor(r)
	if err != nil {
		return err
	}
	limit, err := intQuery(r, "limit", 1, engine.MaxPageSize)
	if err != nil {
		return err
	}
	wait, err := s.waitQuery(r)
	if err != nil {
		return err
	}
	var wt *waiter
	for {
		changed, release := (<-chan struct{})(nil), func() {}
		if wait > 0 && s.canWait() {
			changed, release = s.feed.WatchInstance(typ, id)
		}
		page, err := s.engine.ListEvents(r.Context(), typ, id, after, int(limit))
		if err != nil || len(page.Items) > 0 || changed == nil {
			release()
			if err != nil {
				return err
			}
			return writeJSON(w, http.StatusOK, page)
		}
		if wt == nil {
			wt = s.newWaiter(w, r, wait)
			defer wt.stop()
		}
		woken := wt.wait(changed, false)
		release()
		if !woken {
			return writeJSON(w, http.StatusOK, page)
		}
	}
}

// handleListInputs pages every input an instance received and its outcome.
//
//	@ID			listInputs
//	@Summary		List a workflow's inputs
//	@Description	Every input the instance received, from the API, effects or timers, with its outcome, oldest first. Rejected inputs that never created the instance are listed too.
//	@Tags			workflows
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type	path		string	true	"workflow type"
//	@Param			id		path		string	true	"instance id, percent-encoded"
//	@Param			cursor	query		string	false	"next_cursor of the previous page"
//	@Param			limit	query		int		false	"page size (default 50)"	minimum(1)	maximum(500)
//	@Success		200		{object}	engine.Page[engine.InputView]
//	@Failure		400		{object}	Problem	"bad id, cursor or limit"
//	@Failure		401		{object}	Problem	"missing or wrong API key"
//	@Failure		429		{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404		{object}	Problem	"no such workflow, and no input recorded for it"
//	@Failure		503		{object}	Problem	"database unavailable"
//	@Router			/v1/workflows/{type}/{id}/inputs [get]
func (s *Server) handleListInputs(w http.ResponseWriter, r *http.Request) error {
	typ, id, err := workflowParams(r)
	if err != nil {
		return err
	}
	cursor, limit, err := pageQuery(r)
	if err != nil {
		return err
	}
	page, err := s.engine.ListInputs(r.Context(), typ, id, cursor, limit)
	if err != nil {
		return err
	}
	if err := s.requireWorkflow(r, typ, id, cursor, len(page.Items) == 0); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// handleListChildren pages the children of an instance.
//
//	@ID			listChildren
//	@Summary		List a workflow's children
//	@Description	The instances this one created with a send that has a child link, oldest first, optionally of one status. Each carries parent.
//	@Tags			workflows
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type	path		string	true	"workflow type"
//	@Param			id		path		string	true	"instance id, percent-encoded"
//	@Param			status	query		string	false	"child status"	Enums(running, completed, failed, terminated)
//	@Param			cursor	query		string	false	"next_cursor of the previous page"
//	@Param			limit	query		int		false	"page size (default 50)"	minimum(1)	maximum(500)
//	@Success		200		{object}	engine.Page[engine.WorkflowView]
//	@Failure		400		{object}	Problem	"bad id, status, cursor or limit"
//	@Failure		401		{object}	Problem	"missing or wrong API key"
//	@Failure		404		{object}	Problem	"no such workflow"
//	@Failure		429		{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		503		{object}	Problem	"database unavailable"
//	@Router			/v1/workflows/{type}/{id}/children [get]
func (s *Server) handleListChildren(w http.ResponseWriter, r *http.Request) error {
	typ, id, err := workflowParams(r)
	if err != nil {
		return err
	}
	cursor, limit, err := pageQuery(r)
	if err != nil {
		return err
	}
	status, err := textQuery(r, "status")
	if err != nil {
		return err
	}
	page, err := s.engine.ListChildren(r.Context(), typ, id, status, cursor, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// handleListWorkflows pages instances.
//
//	@ID			listWorkflows
//	@Summary		List workflows
//	@Description	Instances, oldest first, filtered by type, current state, status, id prefix and creation time; the filters combine.
//	@Tags			workflows
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type			query		string	false	"workflow type"
//	@Param			state			query		string	false	"current state name"
//	@Param			status			query		string	false	"instance status"	Enums(running, completed, failed, terminated)
//	@Param			id_prefix		query		string	false	"instances whose id starts with this text, character for character (% and _ are not wildcards)"
//	@Param			created_after	query		string	false	"RFC 3339 time: instances created at or after it"	format(date-time)
//	@Param			created_before	query		string	false	"RFC 3339 time: instances created before it"		format(date-time)
//	@Param			cursor			query		string	false	"next_cursor of the previous page"
//	@Param			limit			query		int		false	"page size (default 50)"	minimum(1)	maximum(500)
//	@Success		200				{object}	engine.Page[engine.WorkflowView]
//	@Failure		400				{object}	Problem	"bad status, id_prefix, created_after, created_before, cursor or limit"
//	@Failure		401				{object}	Problem	"missing or wrong API key"
//	@Failure		429				{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		503				{object}	Problem	"database unavailable"
//	@Router			/v1/workflows [get]
func (s *Server) handleListWorkflows(w http.ResponseWriter, r *http.Request) error {
	limit, err := intQuery(r, "limit", 1, engine.MaxPageSize)
	if err != nil {
		return err
	}
	p := store.ListInstancesParams{Limit: int(limit)}
	for name, dst := range map[string]*string{"type": &p.Type, "state": &p.State, "status": &p.Status,
		"id_prefix": &p.IDPrefix, "cursor": &p.Cursor} {
		if *dst, err = textQuery(r, name); err != nil {
			return err
		}
	}
	if p.CreatedAfter, p.CreatedBefore, err = createdQuery(r); err != nil {
		return err
	}
	page, err := s.engine.ListWorkflows(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// createdQuery reads created_after and created_before.
func createdQuery(r *http.Request) (after, before time.Time, err error) {
	if after, err = timeQuery(r, "created_after"); err != nil {
		return after, before, err
	}
	before, err = timeQuery(r, "created_before")
	return after, before, err
}

// handleCountWorkflows counts instances by status.
//
//	@ID			countWorkflows
//	@Summary		Count workflows by status
//	@Description	The number of instances in each status, of one type or all, created in a time range. Each count stops at cap (it reads at most cap+1 instances, so a large table costs a bounded amount): a count over it is reported as cap, with capped true.
//	@Tags			workflows
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type			query		string	false	"workflow type"
//	@Param			created_after	query		string	false	"RFC 3339 time: instances created at or after it"	format(date-time)
//	@Param			created_before	query		string	false	"RFC 3339 time: instances created before it"		format(date-time)
//	@Success		200				{object}	engine.WorkflowCountsView
//	@Failure		400				{object}	Problem	"bad type, created_after or created_before"
//	@Failure		401				{object}	Problem	"missing or wrong API key"
//	@Failure		429				{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		503				{object}	Problem	"database unavailable"
//	@Router			/v1/workflow-counts [get]
func (s *Server) handleCountWorkflows(w http.ResponseWriter, r *http.Request) error {
	typ, err := textQuery(r, "type")
	if err != nil {
		return err
	}
	after, before, err := createdQuery(r)
	if err != nil {
		return err
	}
	v, err := s.engine.CountWorkflows(r.Context(), typ, after, before)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// TerminateRequest is the body of a termination.
type TerminateRequest struct {
	// Reason says why, for the operators who read the input log (up to 1 KiB).
	Reason string `json:"reason" example:"customer cancelled by phone"`
}

// handleTerminate ends a running instance from outside.
//
//	@ID			terminateWorkflow
//	@Summary		Terminate a workflow
//	@Description	Ends a running instance with status terminated, in one transaction: one event (Terminated, staying in the current state; the reason is in the input log as input type $terminate), every pending timer and effect cancelled (an answer still in flight is recorded, never routed), the unique key freed. An instance that has ended already (completed, failed or terminated) answers 409 already_completed and changes nothing. An Idempotency-Key makes retries return the first answer.
//	@Tags			workflows
//	@Accept			json
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type			path		string				true	"workflow type"
//	@Param			id				path		string				true	"instance id, percent-encoded"
//	@Param			body			body		TerminateRequest	true	"why"
//	@Param			Idempotency-Key	header		string				false	"retries with the same key on the same instance return the first answer"
//	@Param			If-Match		header		string				false	"\"<version>\": 412 unless the instance is at exactly that version"
//	@Success		200				{object}	engine.Result		"terminated"
//	@Header			200				{string}	ETag				"the workflow version after the termination, in double quotes"
//	@Header			200				{string}	Idempotent-Replayed	"true when an earlier request with the same Idempotency-Key answered"
//	@Failure		400				{object}	Problem				"malformed JSON, unknown field, bad id, reason too long"
//	@Failure		401				{object}	Problem				"missing or wrong API key"
//	@Failure		404				{object}	Problem				"no such workflow"
//	@Failure		409				{object}	engine.Result		"already_completed: the instance has ended"
//	@Header			409				{string}	ETag				"the workflow version in double quotes"
//	@Header			409				{string}	Idempotent-Replayed	"true when an earlier request with the same Idempotency-Key answered"
//	@Failure		412				{object}	Problem				"the instance is not at the expected version"
//	@Failure		413				{object}	Problem				"body over the limit"
//	@Failure		415				{object}	Problem				"Content-Type is not application/json"
//	@Failure		422				{object}	Problem				"the Idempotency-Key was used with a different body"
//	@Failure		429				{object}	Problem				"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		503				{object}	Problem				"database unavailable"
//	@Router			/v1/workflows/{type}/{id}/terminate [post]
func (s *Server) handleTerminate(w http.ResponseWriter, r *http.Request) error {
	typ, id, err := workflowParams(r)
	if err != nil {
		return err
	}
	key, expected, err := writePreconditions(r)
	if err != nil {
		return err
	}
	var req TerminateRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return err
	}
	out, err := s.engine.Terminate(r.Context(), typ, id, req.Reason, engine.ExecuteOptions{
		IdempotencyKey:  key,
		ExpectedVersion: expected,
		Source:          store.SourceAPI,
	})
	if err != nil {
		return err
	}
	if out.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if out.Version > 0 {
		w.Header().Set("ETag", etag(out.Version))
	}
	writeRaw(w, outcomeStatus(out.Outcome), out.Body)
	return nil
}
