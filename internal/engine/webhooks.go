package engine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// Webhook secrets are "whsec_" followed by the standard base64 of the key bytes, as the
// Standard Webhooks specification has them; keys are 24 to 64 bytes.
const (
	secretPrefix   = "whsec_"
	minSecretBytes = 24
	maxSecretBytes = 64
	newSecretBytes = 32
	maxURLLength   = 2048
	maxGracePeriod = 30 * 24 * time.Hour
)

// DefaultGracePeriod is how long a rotated-out secret keeps signing.
const DefaultGracePeriod = 24 * time.Hour

var (
	// ErrWebhookNotFound: the workflow type has no webhook endpoint.
	ErrWebhookNotFound = errors.New("webhook not found")
	// ErrInvalidWebhook: a webhook URL or secret is malformed. It comes inside a
	// *workflow.ValidationError whose paths point into the request ("/url").
	ErrInvalidWebhook = errors.New("invalid webhook")
)

// WebhookSecretView is one signing secret; ExpiresAt is set on a rotated-out secret.
// Secret is shown in full only in the answer that made it (a registration that
// generated it, a rotation); every other answer masks it ("whsec_…" and its last four
// characters).
type WebhookSecretView struct {
	Secret    string     `json:"secret" example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
	ExpiresAt *time.Time `json:"expires_at,omitempty" format:"date-time"`
}

// WebhookView is a workflow type's webhook endpoint as the API shows it.
type WebhookView struct {
	WorkflowType string `json:"workflow_type" example:"order"`
	// URL is the endpoint with any password in it replaced by "xxxxx".
	URL    string `json:"url" example:"https://example.com/hooks/ironflow"`
	Status string `json:"status" example:"active" enums:"active,disabled"`
	// Secret is the newest secret, the one a receiver should be given: in full in the
	// answer that made it, masked in every other.
	Secret string `json:"secret" example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
	// Secrets are every secret that signs deliveries now, newest first.
	Secrets   []WebhookSecretView `json:"secrets"`
	CreatedAt time.Time           `json:"created_at" format:"date-time"`
	UpdatedAt time.Time           `json:"updated_at" format:"date-time"`
}

// webhookView shows w as of now with every secret masked but made, the one secret
// this request created ("" for none).
func webhookView(w store.Webhook, now time.Time, made string) WebhookView {
	show := func(s string) string {
		if s == made {
			return s
		}
		return MaskSecret(s)
	}
	v := WebhookView{
		WorkflowType: w.WorkflowType,
		URL:          RedactURL(w.URL),
		Status:       w.Status,
		Secrets:      []WebhookSecretView{},
		CreatedAt:    w.CreatedAt,
		UpdatedAt:    w.UpdatedAt,
	}
	for _, s := range w.Secrets {
		if s.ActiveAt(now) {
			v.Secrets = append(v.Secrets, WebhookSecretView{Secret: show(s.Secret), ExpiresAt: s.ExpiresAt})
		}
	}
	if len(w.Secrets) > 0 {
		v.Secret = show(w.Secrets[0].Secret)
	}
	return v
}

// MaskSecret returns a webhook secret as reads show it: its prefix and last four
// characters, enough to tell secrets apart and nothing to sign with.
func MaskSecret(s string) string {
	if len(s) <= len(secretPrefix)+8 {
		return secretPrefix + "…"
	}
	return secretPrefix + "…" + s[len(s)-4:]
}

// RedactURL returns raw with the password of its user info, if any, replaced by
// "xxxxx"; a URL that does not parse is returned as its scheme and host only, or
// nothing.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Redacted()
}

// NewWebhookSecret returns a fresh "whsec_" secret of 32 random bytes.
func NewWebhookSecret() string {
	b := make([]byte, newSecretBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// ValidateWebhookURL checks that raw is an absolute http(s) URL with a host. Where it
// may connect is checked at delivery time, after DNS.
func ValidateWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("is required")
	case len(raw) > maxURLLength:
		return fmt.Errorf("must be at most %d characters", maxURLLength)
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an http or https URL")
	case u.Hostname() == "":
		return errors.New("must name a host")
	case u.Fragment != "":
		return errors.New("must not have a fragment")
	}
	return nil
}

// DecodeWebhookSecret returns the key bytes of a Standard Webhooks secret, "whsec_"
// followed by standard base64.
func DecodeWebhookSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return nil, fmt.Errorf("must start with %q", secretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("must be %q followed by standard base64", secretPrefix)
	}
	return key, nil
}

// ValidateWebhookSecret checks that s is "whsec_" followed by the standard base64 of
// 24 to 64 bytes.
func ValidateWebhookSecret(s string) error {
	key, err := DecodeWebhookSecret(s)
	if err != nil {
		return err
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return fmt.Errorf("must encode %d to %d bytes, not %d", minSecretBytes, maxSecretBytes, len(key))
	}
	return nil
}

// WebhookInput is the body of a webhook registration.
type WebhookInput struct {
	URL string `json:"url" example:"https://example.com/hooks/ironflow"`
	// Secret is optional: when absent a new endpoint gets a generated one and an
	// existing endpoint keeps its secrets.
	Secret string `json:"secret,omitempty" example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
}

// PutWebhook registers (or replaces) the endpoint every effect of typ is delivered to
// and makes it active, which re-enables an endpoint a 410 disabled. A given secret
// replaces every previous one at once (rotate for a graceful change); without one a new
// endpoint gets a generated secret and an existing one keeps its secrets. created
// reports a new endpoint. Errors: ErrTypeNotFound, ErrInvalidWebhook (in a
// *workflow.ValidationError).
func (e *Engine) PutWebhook(ctx context.Context, typ string, in WebhookInput) (WebhookView, bool, error) {
	var fe []workflow.FieldError
	if err := ValidateWebhookURL(in.URL); err != nil {
		fe = append(fe, workflow.FieldError{Path: "/url", Message: "url " + err.Error()})
	}
	if in.Secret != "" {
		if err := ValidateWebhookSecret(in.Secret); err != nil {
			fe = append(fe, workflow.FieldError{Path: "/secret", Message: "secret " + err.Error()})
		}
	}
	if len(fe) > 0 {
		return WebhookView{}, false, &workflow.ValidationError{Err: ErrInvalidWebhook, Errors: fe}
	}
	if _, err := e.definition(ctx, typ, 0); err != nil {
		return WebhookView{}, false, err
	}
	now := e.Now()
	old, err := e.store.GetWebhook(ctx, typ)
	created := errors.Is(err, store.ErrNotFound)
	if err != nil && !created {
		return WebhookView{}, false, fmt.Errorf("get webhook: %w", err)
	}
	w := store.Webhook{WorkflowType: typ, URL: in.URL, CreatedAt: now, UpdatedAt: now}
	made := "" // a secret generated here is shown once, in this answer
	switch {
	case in.Secret != "":
		w.Secrets = []store.WebhookSecret{{Secret: in.Secret}}
	case created || len(old.Secrets) == 0:
		made = NewWebhookSecret()
		w.Secrets = []store.WebhookSecret{{Secret: made}}
	default:
		for _, s := range old.Secrets {
			if s.ActiveAt(now) {
				w.Secrets = append(w.Secrets, s)
			}
		}
	}
	if !created {
		w.CreatedAt = old.CreatedAt
	}
	saved, err := e.store.PutWebhook(ctx, w)
	if err != nil {
		return WebhookView{}, false, fmt.Errorf("put webhook: %w", err)
	}
	if !created && old.Status == store.WebhookDisabled {
		e.log.Info("webhook re-enabled", "workflow_type", typ)
	}
	return webhookView(saved, now, made), created, nil
}

// GetWebhook returns the endpoint of typ. Errors: ErrWebhookNotFound.
func (e *Engine) GetWebhook(ctx context.Context, typ string) (WebhookView, error) {
	w, err := e.store.GetWebhook(ctx, typ)
	if errors.Is(err, store.ErrNotFound) {
		return WebhookView{}, fmt.Errorf("%w: %q", ErrWebhookNotFound, typ)
	}
	if err != nil {
		return WebhookView{}, fmt.Errorf("get webhook: %w", err)
	}
	return webhookView(w, e.Now(), ""), nil
}

// DeleteWebhook removes the endpoint of typ; its effects stay pending until an endpoint
// is registered again. Errors: ErrWebhookNotFound.
func (e *Engine) DeleteWebhook(ctx context.Context, typ string) error {
	err := e.store.DeleteWebhook(ctx, typ)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %q", ErrWebhookNotFound, typ)
	}
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	return nil
}

// RotateWebhookSecret makes secret (generated when empty) the endpoint's signing
// secret; the secrets it had keep signing too until grace has passed (0: they stop
// now). Errors: ErrWebhookNotFound, ErrInvalidWebhook (a malformed secret),
// ErrInvalidArgument (a negative or over-30-day grace period).
func (e *Engine) RotateWebhookSecret(ctx context.Context, typ, secret string, grace time.Duration) (WebhookView, error) {
	if grace < 0 || grace > maxGracePeriod {
		return WebhookView{}, fmt.Errorf("%w: grace_period must be between 0s and %s", ErrInvalidArgument, maxGracePeriod)
	}
	if secret == "" {
		secret = NewWebhookSecret()
	} else if err := ValidateWebhookSecret(secret); err != nil {
		return WebhookView{}, &workflow.ValidationError{Err: ErrInvalidWebhook,
			Errors: []workflow.FieldError{{Path: "/secret", Message: "secret " + err.Error()}}}
	}
	now := e.Now()
	w, err := e.store.RotateWebhookSecret(ctx, typ, secret, now.Add(grace), now)
	if errors.Is(err, store.ErrNotFound) {
		return WebhookView{}, fmt.Errorf("%w: %q", ErrWebhookNotFound, typ)
	}
	if err != nil {
		return WebhookView{}, fmt.Errorf("rotate webhook secret: %w", err)
	}
	e.log.Info("webhook secret rotated", "workflow_type", typ, "grace_period", grace.String())
	return webhookView(w, now, secret), nil
}
