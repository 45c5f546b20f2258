package sqlite

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// TestPruneTakesAttemptsWithTheirEffect: Prune deletes only effects and relies on the
// foreign key's ON DELETE CASCADE for their attempts, which the conformance suite
// cannot see (a pruned effect's attempts are unreachable through the Store).
func TestPruneTakesAttemptsWithTheirEffect(t *testing.T) {
	t.Parallel()
	s, d := openDriver(t)
	ctx := context.Background()
	old := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Microsecond)
	res, err := s.Execute(ctx, store.ExecuteParams{WorkflowType: "t", WorkflowID: "i",
		Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
			return &store.Write{
				Instance: &store.Instance{DefinitionVersion: 1, StateName: "s", StateData: json.RawMessage(`{}`)},
				Events:   []store.Event{{Type: "E", To: "s"}},
				Effects:  []store.Effect{{Name: "e", CreatedAt: old}},
				Input:    store.InputRecord{Type: "go", Outcome: store.OutcomeAccepted, CreatedAt: old},
			}, nil
		}})
	require.NoError(t, err)
	_, err = s.PutWebhook(ctx, store.Webhook{WorkflowType: "t", URL: "https://example.com/hooks/t",
		Secrets: []store.WebhookSecret{{Secret: "whsec_t"}}, CreatedAt: old, UpdatedAt: old})
	require.NoError(t, err)
	claimed, err := s.ClaimEffects(ctx, store.ClaimParams{Worker: "w", Limit: 1, Now: old, LeaseExpiry: old.Add(time.Minute)})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.NoError(t, s.CompleteEffect(ctx, store.CompleteEffectParams{EffectID: res.Write.Effects[0].ID, Worker: "w",
		Status: store.EffectDelivered, Now: old, Attempt: store.Attempt{StartedAt: old, StatusCode: 200}}))
	attempts := func() (n int) {
		require.NoError(t, d.r.QueryRowContext(ctx, `SELECT count(*) FROM effect_attempts`).Scan(&n))
		return n
	}
	require.Equal(t, 1, attempts())

	n, err := s.Prune(ctx, time.Now(), 100)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the delivered effect")
	require.Zero(t, attempts(), "its attempt went with it")
}
