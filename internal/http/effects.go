package http

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/store"
)

// opaqueID returns the path parameter id of an effect or timer. An id no row can have
// (not 1–200 printable characters) is notFound without asking the store.
func opaqueID(r *http.Request, notFound error) (string, error) {
	id, err := pathParam(r, "id")
	if err != nil {
		return "", err
	}
	if id == "" || utf8.RuneCountInString(id) > 200 || !utf8.ValidString(id) ||
		strings.ContainsFunc(id, func(c rune) bool { return !unicode.IsPrint(c) }) {
		return "", fmt.Errorf("%w: %q", notFound, id)
	}
	return id, nil
}

// listFilters reads the filters and paging of an effect or timer list: status, cursor
// and limit from the query, and the workflow type and id from the path when scoped (a
// workflow's list), else from the query.
func listFilters(r *http.Request, scoped bool) (store.ListEffectsParams, error) {
	var p store.ListEffectsParams
	n, err := intQuery(r, "limit", 1, engine.MaxPageSize)
	if err != nil {
		return p, err
	}
	p.Limit = int(n)
	if scoped {
		if p.WorkflowType, p.WorkflowID, err = workflowParams(r); err != nil {
			return p, err
		}
		if err := engine.ValidateID(p.WorkflowID); err != nil {
			return p, err
		}
	}
	type query struct {
		name string
		dst  *string
	}
	queries := []query{{"status", &p.Status}, {"cursor", &p.Cursor}}
	if !scoped {
		queries = append(queries, query{"workflow_type", &p.WorkflowType}, query{"workflow_id", &p.WorkflowID})
	}
	for _, q := range queries {
		if *q.dst, err = textQuery(r, q.name); err != nil {
			return p, err
		}
	}
	return p, nil
}

// handleListEffects pages effects for operators.
//
//	@ID			listEffects
//	@Summary		List effects
//	@Description	Effects (outbox rows), oldest first, filtered by status, workflow type and id. A dead effect exhausted its attempts and waits for POST /v1/effects/{id}/retry.
//	@Tags			effects
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			status			query		string	false	"effect status"	Enums(pending, delivered, dead, cancelled)
//	@Param			workflow_type	query		string	false	"workflow type"
//	@Param			workflow_id		query		string	false	"workflow id"
//	@Param			cursor			query		string	false	"next_cursor of the previous page"
//	@Param			limit			query		int		false	"page size (default 50)"	minimum(1)	maximum(500)
//	@Success		200				{object}	engine.Page[engine.EffectView]
//	@Failure		400				{object}	Problem	"bad status, cursor or limit"
//	@Failure		401				{object}	Problem	"missing or wrong API key"
//	@Failure		429				{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		503				{object}	Problem	"database unavailable"
//	@Router			/v1/effects [get]
func (s *Server) handleListEffects(w http.ResponseWriter, r *http.Request) error {
	p, err := listFilters(r, false)
	if err != nil {
		return err
	}
	page, err := s.engine.ListEffects(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// handleListWorkflowEffects pages the effects of one instance.
//
//	@ID			listWorkflowEffects
//	@Summary		List a workflow's effects
//	@Description	The effects the instance emitted, oldest first, with their delivery status.
//	@Tags			effects
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type	path		string	true	"workflow type"
//	@Param			id		path		string	true	"instance id, percent-encoded"
//	@Param			status	query		string	false	"effect status"	Enums(pending, delivered, dead, cancelled)
//	@Param			cursor	query		string	false	"next_cursor of the previous page"
//	@Param			limit	query		int		false	"page size (default 50)"	minimum(1)	maximum(500)
//	@Success		200		{object}	engine.Page[engine.EffectView]
//	@Failure		400		{object}	Problem	"bad id, status, cursor or limit"
//	@Failure		401		{object}	Problem	"missing or wrong API key"
//	@Failure		429		{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404		{object}	Problem	"no such workflow"
//	@Failure		503		{object}	Problem	"database unavailable"
//	@Router			/v1/workflows/{type}/{id}/effects [get]
func (s *Server) handleListWorkflowEffects(w http.ResponseWriter, r *http.Request) error {
	p, err := listFilters(r, true)
	if err != nil {
		return err
	}
	page, err := s.engine.ListEffects(r.Context(), p)
	if err != nil {
		return err
	}
	if err := s.requireWorkflow(r, p.WorkflowType, p.WorkflowID, p.Cursor, len(page.Items) == 0); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// requireWorkflow turns the empty first page of a workflow's sub-collection into the
// 404 of a workflow that does not exist, so a typo in an id is not an empty list. A
// page with items is answered even without the instance: delayed inputs and rejected
// first inputs belong to an id that has no instance (yet). Only an empty first page
// costs the extra read.
func (s *Server) requireWorkflow(r *http.Request, typ, id, cursor string, empty bool) error {
	if !empty || cursor != "" {
		return nil
	}
	_, err := s.engine.GetWorkflow(r.Context(), typ, id, 0)
	return err
}

// handleGetEffect shows one effect with its attempt log.
//
//	@ID			getEffect
//	@Summary		Get an effect
//	@Description	The effect with every delivery attempt: number, start, duration, status code, error, the first 4 KiB of the response and what the input routed from it decided.
//	@Tags			effects
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"effect id (the webhook-id of its deliveries)"
//	@Success		200	{object}	engine.EffectView
//	@Failure		401	{object}	Problem	"missing or wrong API key"
//	@Failure		429	{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404	{object}	Problem	"no such effect"
//	@Failure		503	{object}	Problem	"database unavailable"
//	@Router			/v1/effects/{id} [get]
func (s *Server) handleGetEffect(w http.ResponseWriter, r *http.Request) error {
	id, err := opaqueID(r, engine.ErrEffectNotFound)
	if err != nil {
		return err
	}
	v, err := s.engine.GetEffect(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// handleRetryEffect gives a dead effect a fresh attempt budget.
//
//	@ID			retryEffect
//	@Summary		Retry a dead effect
//	@Description	Puts a dead effect back to pending, due now, with a fresh attempt budget; its attempt log continues. 409 unless the effect is dead. An effect's on_dead input runs once: when it already ran, the answer says so in on_dead_outcome, and a second death does not run it again (its attempt log shows the first outcome).
//	@Tags			effects
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"effect id"
//	@Success		200	{object}	engine.EffectView
//	@Failure		401	{object}	Problem	"missing or wrong API key"
//	@Failure		429	{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404	{object}	Problem	"no such effect"
//	@Failure		409	{object}	Problem	"the effect is not dead"
//	@Failure		503	{object}	Problem	"database unavailable"
//	@Router			/v1/effects/{id}/retry [post]
func (s *Server) handleRetryEffect(w http.ResponseWriter, r *http.Request) error {
	id, err := opaqueID(r, engine.ErrEffectNotFound)
	if err != nil {
		return err
	}
	v, err := s.engine.RetryEffect(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// handleCancelEffect discards a pending or dead effect.
//
//	@ID			cancelEffect
//	@Summary		Cancel (discard) an effect
//	@Description	Discards a pending or dead effect: it is never delivered (an answer already in flight is recorded in its attempt log, never routed), stays listed with status cancelled, and the cancellation is logged. 409 when the effect is delivered or cancelled already.
//	@Tags			effects
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"effect id"
//	@Success		200	{object}	engine.EffectView	"the cancelled effect"
//	@Failure		401	{object}	Problem				"missing or wrong API key"
//	@Failure		429	{object}	Problem				"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404	{object}	Problem				"no such effect"
//	@Failure		409	{object}	Problem				"the effect is delivered or cancelled already"
//	@Failure		503	{object}	Problem				"database unavailable"
//	@Router			/v1/effects/{id} [delete]
func (s *Server) handleCancelEffect(w http.ResponseWriter, r *http.Request) error {
	id, err := opaqueID(r, engine.ErrEffectNotFound)
	if err != nil {
		return err
	}
	v, err := s.engine.CancelEffect(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}
