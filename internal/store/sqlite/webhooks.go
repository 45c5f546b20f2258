package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

const webhookCols = `workflow_type, url, secrets, status, created_at, updated_at`

func scanWebhook(sc scanner) (store.Webhook, error) {
	var w store.Webhook
	var secrets string
	var created, updated int64
	if err := sc.Scan(&w.WorkflowType, &w.URL, &secrets, &w.Status, &created, &updated); err != nil {
		return store.Webhook{}, err
	}
	if err := json.Unmarshal([]byte(secrets), &w.Secrets); err != nil {
		return store.Webhook{}, fmt.Errorf("webhook %s secrets: %w", w.WorkflowType, err)
	}
	for i := range w.Secrets {
		if exp := w.Secrets[i].ExpiresAt; exp != nil {
			t := exp.UTC()
			w.Secrets[i].ExpiresAt = &t
		}
	}
	w.CreatedAt, w.UpdatedAt = fromMicros(created), fromMicros(updated)
	return w, nil
}

func secretsJSON(secrets []store.WebhookSecret) (string, error) {
	if secrets == nil {
		secrets = []store.WebhookSecret{}
	}
	out := make([]store.WebhookSecret, len(secrets))
	for i, s := range secrets {
		out[i] = store.WebhookSecret{Secret: s.Secret}
		if s.ExpiresAt != nil {
			// Microseconds, like every other time this store keeps.
			t := s.ExpiresAt.UTC().Truncate(time.Microsecond)
			out[i].ExpiresAt = &t
		}
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// PutWebhook creates or replaces the endpoint of w.WorkflowType (URL and secrets) and
// makes it active. CreatedAt is kept on a replace; UpdatedAt (or CreatedAt, or now)
// stamps the change.
func (s *Store) PutWebhook(ctx context.Context, w store.Webhook) (store.Webhook, error) {
	secrets, err := secretsJSON(w.Secrets)
	if err != nil {
		return store.Webhook{}, fmt.Errorf("sqlite: put webhook: %w", err)
	}
	now := nowOr(orTime(w.UpdatedAt, w.CreatedAt))
	var out store.Webhook
	err = s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		out, err = scanWebhook(tx.QueryRowContext(ctx,
			`INSERT INTO webhooks (`+webhookCols+`) VALUES (?, ?, ?, 'active', ?, ?)
			 ON CONFLICT (workflow_type) DO UPDATE SET
			   url = excluded.url, secrets = excluded.secrets, status = 'active', updated_at = excluded.updated_at
			 RETURNING `+webhookCols,
			w.WorkflowType, w.URL, secrets, toMicros(nowOr(orTime(w.CreatedAt, now))), toMicros(now)))
		return err
	})
	if err != nil {
		return store.Webhook{}, mapErr("put webhook", err)
	}
	s.notify.send(signals{effects: true})
	return out, nil
}

// GetWebhook returns the endpoint of typ; store.ErrNotFound when absent.
func (s *Store) GetWebhook(ctx context.Context, typ string) (store.Webhook, error) {
	w, err := scanWebhook(s.r.QueryRowContext(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE workflow_type = ?`, typ))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Webhook{}, fmt.Errorf("sqlite: get webhook %s: %w", typ, store.ErrNotFound)
	}
	if err != nil {
		return store.Webhook{}, mapErr("get webhook", err)
	}
	return w, nil
}

// DeleteWebhook removes the endpoint of typ; its effects wait for a new one.
// store.ErrNotFound when absent.
func (s *Store) DeleteWebhook(ctx context.Context, typ string) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE workflow_type = ?`, typ)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, fmt.Errorf("webhook %s: %w", typ, store.ErrNotFound))
		}
		return nil
	})
	return mapErr("delete webhook", err)
}

// SetWebhookStatus sets the endpoint of typ to store.WebhookActive or
// store.WebhookDisabled. store.ErrNotFound when absent.
func (s *Store) SetWebhookStatus(ctx context.Context, typ, status string, now time.Time) error {
	if status != store.WebhookActive && status != store.WebhookDisabled {
		return fmt.Errorf("sqlite: set webhook status: invalid status %q", status)
	}
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhooks SET status = ?, updated_at = ? WHERE workflow_type = ?`,
			status, toMicros(nowOr(now)), typ)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, fmt.Errorf("webhook %s: %w", typ, store.ErrNotFound))
		}
		return nil
	})
	if err != nil {
		return mapErr("set webhook status", err)
	}
	if status == store.WebhookActive {
		s.notify.send(signals{effects: true})
	}
	return nil
}

// RotateWebhookSecret makes secret the endpoint's first (signing) secret. The previous
// secrets keep signing until oldExpiresAt, or their own earlier expiry; secrets expired
// at now are dropped. store.ErrNotFound when absent.
func (s *Store) RotateWebhookSecret(ctx context.Context, typ, secret string, oldExpiresAt, now time.Time) (store.Webhook, error) {
	now = nowOr(now)
	var out store.Webhook
	err := s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		w, err := scanWebhook(tx.QueryRowContext(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE workflow_type = ?`, typ))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("webhook %s: %w", typ, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		secrets := []store.WebhookSecret{{Secret: secret}}
		for _, old := range w.Secrets {
			exp := oldExpiresAt
			if old.ExpiresAt != nil && old.ExpiresAt.Before(exp) {
				exp = *old.ExpiresAt
			}
			if !exp.After(now) || old.Secret == secret {
				continue
			}
			secrets = append(secrets, store.WebhookSecret{Secret: old.Secret, ExpiresAt: &exp})
		}
		text, err := secretsJSON(secrets)
		if err != nil {
			return err
		}
		out, err = scanWebhook(tx.QueryRowContext(ctx,
			`UPDATE webhooks SET secrets = ?, updated_at = ? WHERE workflow_type = ? RETURNING `+webhookCols,
			text, toMicros(now), typ))
		return err
	})
	if err != nil {
		return store.Webhook{}, mapErr("rotate webhook secret", err)
	}
	return out, nil
}
