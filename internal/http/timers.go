package http

import (
	"net/http"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/store"
)

// handleListTimers pages timers for operators.
//
//	@ID			listTimers
//	@Summary		List timers
//	@Description	Timers, oldest first, filtered by status, workflow type and id: state timeouts, transition timers and delayed inputs. A dead timer exhausted its attempts and waits for POST /v1/timers/{id}/retry.
//	@Tags			timers
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			status			query		string	false	"timer status"	Enums(pending, fired, cancelled, dead)
//	@Param			workflow_type	query		string	false	"workflow type"
//	@Param			workflow_id		query		string	false	"workflow id"
//	@Param			cursor			query		string	false	"next_cursor of the previous page"
//	@Param			limit			query		int		false	"page size (default 50)"	minimum(1)	maximum(500)
//	@Success		200				{object}	engine.Page[engine.TimerView]
//	@Failure		400				{object}	Problem	"bad status, cursor or limit"
//	@Failure		401				{object}	Problem	"missing or wrong API key"
//	@Failure		429				{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		503				{object}	Problem	"database unavailable"
//	@Router			/v1/timers [get]
func (s *Server) handleListTimers(w http.ResponseWriter, r *http.Request) error {
	p, err := listFilters(r, false)
	if err != nil {
		return err
	}
	page, err := s.engine.ListTimers(r.Context(), store.ListTimersParams(p))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// handleListWorkflowTimers pages the timers of one instance.
//
//	@ID			listWorkflowTimers
//	@Summary		List a workflow's timers
//	@Description	The instance's timers, oldest first, whatever their status; delayed inputs for an instance that does not exist yet are listed too.
//	@Tags			timers
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type	path		string	true	"workflow type"
//	@Param			id		path		string	true	"instance id, percent-encoded"
//	@Param			status	query		string	false	"timer status"	Enums(pending, fired, cancelled, dead)
//	@Param			cursor	query		string	false	"next_cursor of the previous page"
//	@Param			limit	query		int		false	"page size (default 50)"	minimum(1)	maximum(500)
//	@Success		200		{object}	engine.Page[engine.TimerView]
//	@Failure		400		{object}	Problem	"bad id, status, cursor or limit"
//	@Failure		401		{object}	Problem	"missing or wrong API key"
//	@Failure		429		{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404		{object}	Problem	"no such workflow, and no delayed input waiting for it"
//	@Failure		503		{object}	Problem	"database unavailable"
//	@Router			/v1/workflows/{type}/{id}/timers [get]
func (s *Server) handleListWorkflowTimers(w http.ResponseWriter, r *http.Request) error {
	p, err := listFilters(r, true)
	if err != nil {
		return err
	}
	page, err := s.engine.ListTimers(r.Context(), store.ListTimersParams(p))
	if err != nil {
		return err
	}
	if err := s.requireWorkflow(r, p.WorkflowType, p.WorkflowID, p.Cursor, len(page.Items) == 0); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// handleGetTimer shows one timer.
//
//	@ID			getTimer
//	@Summary		Get a timer
//	@Description	The timer, its input, its status and attempts, and the outcome of the input it fired.
//	@Tags			timers
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"timer id"
//	@Success		200	{object}	engine.TimerView
//	@Failure		401	{object}	Problem	"missing or wrong API key"
//	@Failure		429	{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404	{object}	Problem	"no such timer"
//	@Failure		503	{object}	Problem	"database unavailable"
//	@Router			/v1/timers/{id} [get]
func (s *Server) handleGetTimer(w http.ResponseWriter, r *http.Request) error {
	id, err := opaqueID(r, engine.ErrTimerNotFound)
	if err != nil {
		return err
	}
	v, err := s.engine.GetTimer(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// handleRetryTimer gives a dead timer a fresh attempt budget.
//
//	@ID			retryTimer
//	@Summary		Retry a dead timer
//	@Description	Puts a dead timer back to pending, due now, with a fresh attempt budget. 409 unless the timer is dead (or a newer timer with its key is pending).
//	@Tags			timers
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"timer id"
//	@Success		200	{object}	engine.TimerView
//	@Failure		401	{object}	Problem	"missing or wrong API key"
//	@Failure		429	{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404	{object}	Problem	"no such timer"
//	@Failure		409	{object}	Problem	"the timer is not dead"
//	@Failure		503	{object}	Problem	"database unavailable"
//	@Router			/v1/timers/{id}/retry [post]
func (s *Server) handleRetryTimer(w http.ResponseWriter, r *http.Request) error {
	id, err := opaqueID(r, engine.ErrTimerNotFound)
	if err != nil {
		return err
	}
	v, err := s.engine.RetryTimer(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// handleCancelTimer cancels a pending timer or discards a dead one.
//
//	@ID			cancelTimer
//	@Summary		Cancel (discard) a timer
//	@Description	Cancels a pending timer or discards a dead one: it never fires, stays listed with status cancelled, and the cancellation is logged. 409 when the timer has fired or is cancelled already.
//	@Tags			timers
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"timer id"
//	@Success		200	{object}	engine.TimerView	"the cancelled timer"
//	@Failure		401	{object}	Problem				"missing or wrong API key"
//	@Failure		429	{object}	Problem				"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404	{object}	Problem				"no such timer"
//	@Failure		409	{object}	Problem				"the timer has fired or is cancelled already"
//	@Failure		503	{object}	Problem				"database unavailable"
//	@Router			/v1/timers/{id} [delete]
func (s *Server) handleCancelTimer(w http.ResponseWriter, r *http.Request) error {
	id, err := opaqueID(r, engine.ErrTimerNotFound)
	if err != nil {
		return err
	}
	v, err := s.engine.CancelTimer(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}
