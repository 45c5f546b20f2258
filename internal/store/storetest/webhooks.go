package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

func testWebhooks(t *testing.T, e *env) {
	_, err := e.s.GetWebhook(e.ctx, "order")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, e.s.DeleteWebhook(e.ctx, "order"), store.ErrNotFound)
	require.ErrorIs(t, e.s.SetWebhookStatus(e.ctx, "order", store.WebhookDisabled, e.now), store.ErrNotFound)

	created := e.putWebhook("order")
	require.Equal(t, "order", created.WorkflowType)
	require.Equal(t, "https://example.com/hooks/order", created.URL)
	require.Equal(t, store.WebhookActive, created.Status)
	require.Equal(t, []store.WebhookSecret{{Secret: "whsec_order"}}, created.Secrets)

	got, err := e.s.GetWebhook(e.ctx, "order")
	require.NoError(t, err)
	require.Equal(t, created.URL, got.URL)
	require.Equal(t, created.Secrets, got.Secrets)
	require.Equal(t, store.WebhookActive, got.Status)
	requireTime(t, e.now, got.CreatedAt)

	require.NoError(t, e.s.SetWebhookStatus(e.ctx, "order", store.WebhookDisabled, e.at(time.Minute)))
	got, err = e.s.GetWebhook(e.ctx, "order")
	require.NoError(t, err)
	require.Equal(t, store.WebhookDisabled, got.Status)

	// A PUT replaces URL and secrets and re-activates.
	later := e.at(time.Hour)
	replaced, err := e.s.PutWebhook(e.ctx, store.Webhook{
		WorkflowType: "order", URL: "https://example.org/v2",
		Secrets:   []store.WebhookSecret{{Secret: "whsec_new"}},
		CreatedAt: later, UpdatedAt: later,
	})
	require.NoError(t, err)
	require.Equal(t, "https://example.org/v2", replaced.URL)
	require.Equal(t, []store.WebhookSecret{{Secret: "whsec_new"}}, replaced.Secrets)
	require.Equal(t, store.WebhookActive, replaced.Status)
	got, err = e.s.GetWebhook(e.ctx, "order")
	require.NoError(t, err)
	require.Equal(t, "https://example.org/v2", got.URL)
	require.Equal(t, store.WebhookActive, got.Status)

	e.putWebhook("invoice")
	require.NoError(t, e.s.DeleteWebhook(e.ctx, "order"))
	_, err = e.s.GetWebhook(e.ctx, "order")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.s.GetWebhook(e.ctx, "invoice")
	require.NoError(t, err)
}

func testWebhookRotation(t *testing.T, e *env) {
	_, err := e.s.RotateWebhookSecret(e.ctx, "order", "s2", e.at(24*time.Hour), e.now)
	require.ErrorIs(t, err, store.ErrNotFound)

	e.putWebhook("order") // secret whsec_order
	exp1 := e.at(24 * time.Hour)
	w, err := e.s.RotateWebhookSecret(e.ctx, "order", "s2", exp1, e.now)
	require.NoError(t, err)
	require.Len(t, w.Secrets, 2)
	require.Equal(t, "s2", w.Secrets[0].Secret, "the new secret comes first")
	require.Nil(t, w.Secrets[0].ExpiresAt)
	require.Equal(t, "whsec_order", w.Secrets[1].Secret)
	require.NotNil(t, w.Secrets[1].ExpiresAt)
	requireTime(t, exp1, *w.Secrets[1].ExpiresAt)

	// Rotating again within the grace period keeps the earlier expiry of older secrets.
	exp2 := e.at(25 * time.Hour)
	w, err = e.s.RotateWebhookSecret(e.ctx, "order", "s3", exp2, e.at(time.Hour))
	require.NoError(t, err)
	require.Len(t, w.Secrets, 3)
	require.Equal(t, "s3", w.Secrets[0].Secret)
	require.Equal(t, "s2", w.Secrets[1].Secret)
	requireTime(t, exp2, *w.Secrets[1].ExpiresAt)
	require.Equal(t, "whsec_order", w.Secrets[2].Secret)
	requireTime(t, exp1, *w.Secrets[2].ExpiresAt, "an earlier expiry is kept")

	got, err := e.s.GetWebhook(e.ctx, "order")
	require.NoError(t, err)
	require.Len(t, got.Secrets, 3)
	requireTime(t, exp1, *got.Secrets[2].ExpiresAt)

	// Expired secrets are dropped at the next rotation.
	w, err = e.s.RotateWebhookSecret(e.ctx, "order", "s4", e.at(48*time.Hour), e.at(24*time.Hour+time.Minute))
	require.NoError(t, err)
	var names []string
	for _, s := range w.Secrets {
		names = append(names, s.Secret)
	}
	require.Equal(t, []string{"s4", "s3", "s2"}, names)
}
