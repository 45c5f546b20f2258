package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/store"
)

const webhookColumns = `workflow_type, url, secrets, status, created_at, updated_at`

func scanWebhook(row pgx.Row) (store.Webhook, error) {
	var w store.Webhook
	var secrets []byte
	if err := row.Scan(&w.WorkflowType, &w.URL, &secrets, &w.Status, &w.CreatedAt, &w.UpdatedAt); err != nil {
		return store.Webhook{}, err
	}
	if err := json.Unmarshal(secrets, &w.Secrets); err != nil {
		return store.Webhook{}, fmt.Errorf("webhook secrets: %w", err)
	}
	for i := range w.Secrets {
		w.Secrets[i].ExpiresAt = utcPtr(w.Secrets[i].ExpiresAt)
	}
	if w.Secrets == nil {
		w.Secrets = []store.WebhookSecret{}
	}
	w.CreatedAt = w.CreatedAt.UTC()
	w.UpdatedAt = w.UpdatedAt.UTC()
	return w, nil
}

func secretsParam(secrets []store.WebhookSecret) (string, error) {
	if secrets == nil {
		secrets = []store.WebhookSecret{}
	}
	b, err := json.Marshal(secrets)
	if err != nil {
		return "", fmt.Errorf("webhook secrets: %w", err)
	}
	return string(b), nil
}

// PutWebhook creates or replaces the endpoint of a type (URL and secrets), makes it
// active and wakes the effect workers, since effects waiting for an endpoint become
// deliverable. A replaced endpoint keeps its CreatedAt.
func (s *Store) PutWebhook(ctx context.Context, w store.Webhook) (store.Webhook, error) {
	secrets, err := secretsParam(w.Secrets)
	if err != nil {
		return store.Webhook{}, fmt.Errorf("postgres: put webhook: %w", err)
	}
	created := nowOr(w.CreatedAt)
	updated := nowOr(nowOrZero(w.UpdatedAt, created))
	var out store.Webhook
	err = s.withTx(ctx, func(tx *batchTx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO webhooks (workflow_type, url, secrets, status, created_at, updated_at)
VALUES ($1, $2, $3, 'active', $4, $5)
ON CONFLICT (workflow_type) DO UPDATE
SET url = excluded.url, secrets = excluded.secrets, status = 'active', updated_at = excluded.updated_at
RETURNING `+webhookColumns, w.WorkflowType, w.URL, secrets, created, updated).
			QueryRow(func(row pgx.Row) error {
				var err error
				out, err = scanWebhook(row)
				return err
			})
		tx.n.effects = true
		return tx.Send(ctx, b)
	})
	if err != nil {
		return store.Webhook{}, mapErr("put webhook", err)
	}
	return out, nil
}

// GetWebhook returns the endpoint of a type; store.ErrNotFound when absent.
func (s *Store) GetWebhook(ctx context.Context, typ string) (store.Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE workflow_type = $1`, typ))
	if err != nil {
		return store.Webhook{}, mapErr("get webhook", err)
	}
	return w, nil
}

// DeleteWebhook removes the endpoint of a type; its effects wait for a new one.
// store.ErrNotFound when absent.
func (s *Store) DeleteWebhook(ctx context.Context, typ string) error {
	ct, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE workflow_type = $1`, typ)
	if err != nil {
		return mapErr("delete webhook", err)
	}
	if ct.RowsAffected() == 0 {
		return mapErr("delete webhook", store.ErrNotFound)
	}
	return nil
}

// SetWebhookStatus disables (store.WebhookDisabled) or re-enables (store.WebhookActive)
// an endpoint; re-enabling wakes the effect workers. store.ErrNotFound when absent.
func (s *Store) SetWebhookStatus(ctx context.Context, typ, status string, now time.Time) error {
	if status != store.WebhookActive && status != store.WebhookDisabled {
		return fmt.Errorf("postgres: set webhook status: invalid status %q", status)
	}
	err := s.withTx(ctx, func(tx *batchTx) error {
		ct, err := tx.Exec(ctx, `UPDATE webhooks SET status = $2, updated_at = $3 WHERE workflow_type = $1`,
			typ, status, nowOr(now))
		if err != nil {
			return err
		}
		if ct.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		tx.n.effects = status == store.WebhookActive
		return nil
	})
	return mapErr("set webhook status", err)
}

// RotateWebhookSecret makes secret the signing secret of the endpoint. The previous
// secrets keep signing until oldExpiresAt (or their own earlier expiry); secrets expired
// at now are dropped. store.ErrNotFound when absent.
func (s *Store) RotateWebhookSecret(ctx context.Context, typ, secret string, oldExpiresAt, now time.Time) (store.Webhook, error) {
	now = nowOr(now)
	oldExpiresAt = oldExpiresAt.UTC()
	var out store.Webhook
	err := s.withTx(ctx, func(tx *batchTx) error {
		w, err := scanWebhook(tx.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks
WHERE workflow_type = $1 FOR UPDATE`, typ))
		if err != nil {
			return err
		}
		secrets := []store.WebhookSecret{{Secret: secret}}
		for _, old := range w.Secrets {
			exp := oldExpiresAt
			if old.ExpiresAt != nil && old.ExpiresAt.Before(exp) {
				exp = *old.ExpiresAt
			}
			if !exp.After(now) {
				continue
			}
			secrets = append(secrets, store.WebhookSecret{Secret: old.Secret, ExpiresAt: &exp})
		}
		param, err := secretsParam(secrets)
		if err != nil {
			return err
		}
		out, err = scanWebhook(tx.QueryRow(ctx, `UPDATE webhooks SET secrets = $2, updated_at = $3
WHERE workflow_type = $1 RETURNING `+webhookColumns, typ, param, now))
		return err
	})
	if err != nil {
		return store.Webhook{}, mapErr("rotate webhook secret", err)
	}
	return out, nil
}
