package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
)

// TestRoutedBatchesCommitAsBatches records deliveries and firings through deliverBatch
// and fireBatch directly. CompleteEffects and CompleteTimers fall back to one
// transaction per completion when a batch fails, so their conformance cases pass even
// with a broken batch; here a batch that does not commit as one fails the test.
func TestRoutedBatchesCommitAsBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, pgtest.NewDatabaseURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	now := time.Now().UTC().Truncate(time.Microsecond)

	step := func(id, key string) store.ExecuteParams {
		return store.ExecuteParams{
			WorkflowType: "t", WorkflowID: id, IdempotencyKey: key,
			Decide: func(_ context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
				var v int64
				if cur != nil {
					v = cur.Version
				}
				return &store.Write{
					Instance: &store.Instance{DefinitionVersion: 1, StateName: "s", Version: v + 1, StateData: json.RawMessage(`{}`)},
					Events:   []store.Event{{Type: "E", To: "s"}},
					Effects:  []store.Effect{{Name: "e", Payload: json.RawMessage(`{"n":1}`)}},
					Input:    store.InputRecord{Type: "go", Outcome: store.OutcomeAccepted, CreatedAt: now},
				}, nil
			},
		}
	}
	const n = 5
	var effects []string
	for i := range n {
		res, err := s.Execute(ctx, step(fmt.Sprintf("e-%d", i), ""))
		require.NoError(t, err)
		effects = append(effects, res.Write.Effects[0].ID)
		_, err = s.ScheduleTimer(ctx, store.Timer{WorkflowType: "t", WorkflowID: fmt.Sprintf("t-%d", i), Key: "k",
			FireAt: now, InputType: "go"})
		require.NoError(t, err)
	}
	_, err = s.PutWebhook(ctx, store.Webhook{WorkflowType: "t", URL: "https://example.com/hooks/t",
		Secrets: []store.WebhookSecret{{Secret: "whsec_t"}}, CreatedAt: now, UpdatedAt: now})
	require.NoError(t, err)
	claim := store.ClaimParams{Worker: "w", Limit: 100, Now: now, LeaseExpiry: now.Add(time.Minute)}
	claimedEffects, err := s.ClaimEffects(ctx, claim)
	require.NoError(t, err)
	require.Len(t, claimedEffects, n)
	timers, err := s.ClaimTimers(ctx, claim)
	require.NoError(t, err)
	require.Len(t, timers, n)

	var eps []store.CompleteEffectParams
	var tps []store.CompleteTimerParams
	for i := range n {
		r := step(fmt.Sprintf("e-%d", i), effects[i])
		eps = append(eps, store.CompleteEffectParams{EffectID: effects[i], Worker: "w", Status: store.EffectDelivered,
			Now: now, Route: &r, Attempt: store.Attempt{StartedAt: now, StatusCode: 200, Response: "{}"}})
		tr := step(timers[i].WorkflowID, timers[i].ID)
		tps = append(tps, store.CompleteTimerParams{TimerID: timers[i].ID, Worker: "w", Status: store.TimerFired, Now: now, Route: &tr})
	}
	errs, err := s.deliverBatch(ctx, eps)
	require.NoError(t, err)
	require.Equal(t, make([]error, n), errs)
	errs, err = s.fireBatch(ctx, tps)
	require.NoError(t, err)
	require.Equal(t, make([]error, n), errs)
	for i := range n {
		e, attempts, err := s.GetEffect(ctx, effects[i])
		require.NoError(t, err)
		require.Equal(t, store.EffectDelivered, e.Status)
		require.Len(t, attempts, 1)
		require.Equal(t, store.OutcomeAccepted, attempts[0].RoutedOutcome)
		inst, err := s.GetInstance(ctx, "t", fmt.Sprintf("e-%d", i))
		require.NoError(t, err)
		require.EqualValues(t, 2, inst.Version)
		tm, err := s.GetTimer(ctx, timers[i].ID)
		require.NoError(t, err)
		require.Equal(t, store.TimerFired, tm.Status)
		require.Equal(t, store.OutcomeAccepted, tm.Outcome)
	}
}
