package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// The cases below pin behaviours the two stores once answered differently
// (docs/decisions/0011-one-write-protocol.md).

// testClaimAtLeaseEnd: a lease "until T" has ended at T, so a claim at exactly T takes
// the row over — which is also when NextTimerAt says the row can be claimed.
func testClaimAtLeaseEnd(t *testing.T, e *env) {
	e.putWebhook("order")
	e.mustExec("order", "a", step{Effects: []string{"reserve"}})
	tm := e.schedule("order", "b", "k", e.now)
	lease := store.ClaimParams{Worker: "w1", Limit: 10, Now: e.now, LeaseExpiry: e.at(time.Minute)}
	c, err := e.s.ClaimEffects(e.ctx, lease)
	require.NoError(t, err)
	require.Len(t, c.Effects, 1)
	timers, err := e.s.ClaimTimers(e.ctx, lease)
	require.NoError(t, err)
	require.Len(t, timers, 1)
	next, ok, err := e.s.NextTimerAt(e.ctx)
	require.NoError(t, err)
	require.True(t, ok)
	requireTime(t, e.at(time.Minute), next, "claimable when the lease ends")

	takeover := store.ClaimParams{Worker: "w2", Limit: 10, Now: e.at(time.Minute), LeaseExpiry: e.at(2 * time.Minute)}
	c, err = e.s.ClaimEffects(e.ctx, takeover)
	require.NoError(t, err)
	require.Len(t, c.Effects, 1, "an effect whose lease ends now is claimed again")
	require.Equal(t, "w2", c.Effects[0].LockedBy)
	timers, err = e.s.ClaimTimers(e.ctx, takeover)
	require.NoError(t, err)
	require.Len(t, timers, 1, "a timer whose lease ends now is claimed again")
	require.Equal(t, tm.ID, timers[0].ID)
	require.Equal(t, "w2", timers[0].LockedBy)
}

// testRetryWithoutNextAttempt: a completion back to pending that names no next attempt
// is due at its own time (Now), behind what fell due while it was in flight, not at the
// row's old due time.
func testRetryWithoutNextAttempt(t *testing.T, e *env) {
	e.putWebhook("order")
	eff := emitClaimed(e, "a")
	done := e.at(2 * time.Minute)
	require.NoError(t, e.s.CompleteEffect(e.ctx, store.CompleteEffectParams{EffectID: eff, Worker: "w1",
		Status: store.EffectPending, Now: done, Attempt: store.Attempt{StartedAt: done, Error: "boom"}}))
	got, _, err := e.s.GetEffect(e.ctx, eff)
	require.NoError(t, err)
	require.Equal(t, store.EffectPending, got.Status)
	requireTime(t, done, got.NextAttemptAt)

	tm := e.schedule("order", "b", "k", e.now)
	require.Len(t, e.claimTimers("w1", e.now, 10), 1)
	require.NoError(t, e.s.CompleteTimer(e.ctx, store.CompleteTimerParams{TimerID: tm.ID, Worker: "w1",
		Status: store.TimerPending, Error: "boom", Now: done}))
	requireTime(t, done, e.timer(tm.ID).NextAttemptAt)
}

// testRotateToCurrentSecret: rotating to the secret that signs already keeps one copy
// of it, without an expiry, rather than a second one that expires.
func testRotateToCurrentSecret(t *testing.T, e *env) {
	e.putWebhook("order") // secret whsec_order
	w, err := e.s.RotateWebhookSecret(e.ctx, "order", "whsec_order", e.at(24*time.Hour), e.now)
	require.NoError(t, err)
	require.Equal(t, []store.WebhookSecret{{Secret: "whsec_order"}}, w.Secrets)
	got, err := e.s.GetWebhook(e.ctx, "order")
	require.NoError(t, err)
	require.Equal(t, w.Secrets, got.Secrets)
}

// testInstanceVersionMustBeLastSeq: a Write whose instance Version is not the seq of its
// last event is refused, never silently corrected, and writes nothing.
func testInstanceVersionMustBeLastSeq(t *testing.T, e *env) {
	_, err := e.s.Execute(e.ctx, store.ExecuteParams{WorkflowType: "order", WorkflowID: "a",
		Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
			return &store.Write{
				Instance: &store.Instance{DefinitionVersion: 1, StateName: "s", Version: 5, StateData: json.RawMessage(`{}`)},
				Events:   []store.Event{{Type: "E", To: "s"}},
				Input:    store.InputRecord{Type: "go", Outcome: store.OutcomeAccepted, CreatedAt: e.now},
			}, nil
		}})
	require.Error(t, err)
	_, err = e.s.GetInstance(e.ctx, "order", "a")
	require.ErrorIs(t, err, store.ErrNotFound, "nothing written")
	require.Empty(t, e.inputs("order", "a"))
}

// testCompletedAtFilledIn: an instance written completed without CompletedAt completes
// at its UpdatedAt (retention prunes by completed_at, so it must never stay empty).
func testCompletedAtFilledIn(t *testing.T, e *env) {
	res, err := e.s.Execute(e.ctx, store.ExecuteParams{WorkflowType: "order", WorkflowID: "a",
		Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
			return &store.Write{
				Instance: &store.Instance{DefinitionVersion: 1, StateName: "done", Status: store.StatusCompleted,
					StateData: json.RawMessage(`{}`), UpdatedAt: e.at(time.Second)},
				Events: []store.Event{{Type: "E", To: "done"}},
				Input:  store.InputRecord{Type: "go", Outcome: store.OutcomeAccepted, CreatedAt: e.now},
			}, nil
		}})
	require.NoError(t, err)
	require.NotNil(t, res.Write.Instance.CompletedAt)
	inst := e.instance("order", "a")
	require.Equal(t, store.StatusCompleted, inst.Status)
	require.NotNil(t, inst.CompletedAt, "completed_at is filled in")
	requireTime(t, e.at(time.Second), *inst.CompletedAt)
}

// testResponseByteForByte: an input's response survives storage unchanged (key order
// and white space included), since an idempotent replay returns it verbatim.
func testResponseByteForByte(t *testing.T, e *env) {
	response := json.RawMessage(`{"z": 1,  "a":[2, 1]}`)
	p := store.ExecuteParams{WorkflowType: "order", WorkflowID: "a", IdempotencyKey: "k", RequestHash: "h",
		Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
			return &store.Write{Input: store.InputRecord{Type: "go", Outcome: store.OutcomeRejected, Reason: "no",
				Response: response, CreatedAt: e.now}}, nil
		}}
	_, err := e.s.Execute(e.ctx, p)
	require.NoError(t, err)
	res, err := e.s.Execute(e.ctx, p)
	require.NoError(t, err)
	require.True(t, res.Replayed)
	require.Equal(t, string(response), string(res.Input.Response))
}
