package http

import (
	"net/http"
	"time"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/workflow"
)

// WebhookRequest is the body of PUT /v1/workflow-types/{type}/webhook.
type WebhookRequest struct {
	// URL receives every effect of the type as a signed POST: http or https with a host.
	URL string `json:"url" example:"https://example.com/hooks/ironflow"`
	// Secret ("whsec_" + base64 of 24–64 bytes) is optional: a new endpoint gets a
	// generated one, an existing endpoint keeps its secrets.
	Secret string `json:"secret,omitempty" example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
}

// RotateSecretRequest is the (optional) body of POST …/webhook/rotate-secret.
type RotateSecretRequest struct {
	// GracePeriod is how long the previous secrets keep signing too (Go duration,
	// default 24h, "0s" stops them at once, at most 720h).
	GracePeriod string `json:"grace_period,omitempty" example:"24h"`
	// Secret is the new secret; generated when absent.
	Secret string `json:"secret,omitempty" example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
}

// handlePutWebhook registers the endpoint of a workflow type.
//
//	@ID			putWebhook
//	@Summary		Register a workflow type's webhook
//	@Description	Every effect of the type is POSTed to url as a Standard Webhooks message (headers webhook-id, webhook-timestamp, webhook-signature). Without a secret a new endpoint gets a generated whsec_ secret, shown in full in this answer only (every later read masks it) and an existing one keeps its secrets; a given secret replaces them all at once (use rotate-secret for a graceful change). A PUT also re-enables an endpoint that a 410 answer disabled; effects that waited are then delivered. 201 when the endpoint is new.
//	@Tags			webhooks
//	@Accept			json
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type	path		string				true	"workflow type"
//	@Param			webhook	body		WebhookRequest		true	"the endpoint"
//	@Success		200		{object}	engine.WebhookView	"replaced (and enabled)"
//	@Success		201		{object}	engine.WebhookView	"registered"
//	@Failure		400		{object}	Problem				"malformed JSON"
//	@Failure		401		{object}	Problem				"missing or wrong API key"
//	@Failure		429		{object}	Problem				"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404		{object}	Problem				"no such workflow type"
//	@Failure		413		{object}	Problem				"body over the limit"
//	@Failure		415		{object}	Problem				"Content-Type is not application/json"
//	@Failure		422		{object}	Problem				"invalid url or secret, with errors[{path, message}]"
//	@Failure		503		{object}	Problem				"database unavailable"
//	@Router			/v1/workflow-types/{type}/webhook [put]
func (s *Server) handlePutWebhook(w http.ResponseWriter, r *http.Request) error {
	typ, err := typeParam(r)
	if err != nil {
		return err
	}
	var req WebhookRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return err
	}
	v, created, err := s.engine.PutWebhook(r.Context(), typ, engine.WebhookInput{URL: req.URL, Secret: req.Secret})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, v)
}

// handleGetWebhook shows the endpoint of a workflow type.
//
//	@ID			getWebhook
//	@Summary		Get a workflow type's webhook
//	@Description	The URL, whether it is active or disabled (after a 410 answer), and the secrets that sign deliveries now (the newest first; a rotated-out secret shows when it stops), masked as whsec_… and their last four characters: a secret is shown in full only in the answer that made it. A password in the URL shows as xxxxx.
//	@Tags			webhooks
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type	path		string	true	"workflow type"
//	@Success		200		{object}	engine.WebhookView
//	@Failure		401		{object}	Problem	"missing or wrong API key"
//	@Failure		429		{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404		{object}	Problem	"no webhook registered for the type"
//	@Failure		503		{object}	Problem	"database unavailable"
//	@Router			/v1/workflow-types/{type}/webhook [get]
func (s *Server) handleGetWebhook(w http.ResponseWriter, r *http.Request) error {
	typ, err := typeParam(r)
	if err != nil {
		return err
	}
	v, err := s.engine.GetWebhook(r.Context(), typ)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// handleDeleteWebhook removes the endpoint of a workflow type.
//
//	@ID			deleteWebhook
//	@Summary		Remove a workflow type's webhook
//	@Description	Effects of the type stay pending, none are lost, and are delivered once an endpoint is registered again.
//	@Tags			webhooks
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type	path	string	true	"workflow type"
//	@Success		204		"removed"
//	@Failure		401		{object}	Problem	"missing or wrong API key"
//	@Failure		429		{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404		{object}	Problem	"no webhook registered for the type"
//	@Failure		503		{object}	Problem	"database unavailable"
//	@Router			/v1/workflow-types/{type}/webhook [delete]
func (s *Server) handleDeleteWebhook(w http.ResponseWriter, r *http.Request) error {
	typ, err := typeParam(r)
	if err != nil {
		return err
	}
	if err := s.engine.DeleteWebhook(r.Context(), typ); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleRotateWebhookSecret makes a new signing secret.
//
//	@ID			rotateWebhookSecret
//	@Summary		Rotate a webhook's signing secret
//	@Description	The new secret (generated unless given) signs every delivery from now on; the previous secrets keep signing too until grace_period (default 24h) has passed, so webhook-signature carries one v1 entry per secret and receivers can switch without missing a message. The answer shows the new secret in full, the only time it is shown; the older ones are masked. The body is optional.
//	@Tags			webhooks
//	@Accept			json
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type	path		string				true	"workflow type"
//	@Param			options	body		RotateSecretRequest	false	"grace period and new secret"
//	@Success		200		{object}	engine.WebhookView
//	@Failure		400		{object}	Problem	"malformed JSON, or grace_period out of range"
//	@Failure		401		{object}	Problem	"missing or wrong API key"
//	@Failure		429		{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404		{object}	Problem	"no webhook registered for the type"
//	@Failure		413		{object}	Problem	"body over the limit"
//	@Failure		415		{object}	Problem	"Content-Type is not application/json"
//	@Failure		422		{object}	Problem	"invalid secret"
//	@Failure		503		{object}	Problem	"database unavailable"
//	@Router			/v1/workflow-types/{type}/webhook/rotate-secret [post]
func (s *Server) handleRotateWebhookSecret(w http.ResponseWriter, r *http.Request) error {
	typ, err := typeParam(r)
	if err != nil {
		return err
	}
	var req RotateSecretRequest
	body, err := s.readOptionalBody(w, r)
	if err != nil {
		return err
	}
	if body != nil {
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
	}
	grace := engine.DefaultGracePeriod
	if req.GracePeriod != "" {
		if grace, err = time.ParseDuration(req.GracePeriod); err != nil {
			return &workflow.ValidationError{Err: engine.ErrInvalidArgument, Errors: []workflow.FieldError{
				{Path: "/grace_period", Message: "must be a Go duration such as 24h or 90m"}}}
		}
	}
	v, err := s.engine.RotateWebhookSecret(r.Context(), typ, req.Secret, grace)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}
