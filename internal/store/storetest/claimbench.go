package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// BenchmarkClaimEffects measures a claim of ten deliverable effects on a store beside
// rows it may not deliver (decision 0032), one sub-benchmark per case:
//
//   - clear: nothing else is pending;
//   - undeliverable=N: N due effects of a type whose endpoint is disabled and N of a
//     type the claim excludes (its share of the slots in use), all due earlier;
//   - endpoints=N: N other active endpoints, with nothing pending;
//   - waiting=N: N other active endpoints, each with one effect pending, due later.
//
// A claim should cost the same in the first two cases; the last two show what an active
// endpoint adds (one index probe), whether its type has effects pending or not. open
// returns a fresh, empty, migrated store.
func BenchmarkClaimEffects(b *testing.B, open func(b *testing.B) store.Store) {
	cases := []struct {
		name                         string
		undeliverable, idle, waiting int
	}{
		{"clear", 0, 0, 0},
		{"undeliverable=50000", 50_000, 0, 0},
		{"endpoints=1000", 0, 1000, 0},
		{"waiting=1000", 0, 0, 1000},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			s := open(b)
			now := time.Now().UTC().Truncate(time.Microsecond)
			for _, typ := range []string{"live", "off", "busy"} {
				PutWebhook(b, s, typ, now)
			}
			require.NoError(b, s.SetWebhookStatus(ctx, "off", store.WebhookDisabled, now))
			for i := range c.idle {
				PutWebhook(b, s, fmt.Sprintf("idle-%d", i), now)
			}
			for i := range c.waiting {
				typ := fmt.Sprintf("waiting-%d", i)
				PutWebhook(b, s, typ, now)
				seedEffects(b, s, typ, typ, 1, now.Add(time.Hour))
			}
			const perInstance = 1000
			for _, typ := range []string{"off", "busy"} {
				for i := 0; i < c.undeliverable; i += perInstance {
					seedEffects(b, s, typ, fmt.Sprintf("%s-%d", typ, i), min(perInstance, c.undeliverable-i), now.Add(-time.Hour))
				}
			}
			seedEffects(b, s, "live", "live-1", 10, now.Add(-time.Second))

			p := store.ClaimParams{Worker: "w", Limit: 10, ExcludeTypes: []string{"busy"}}
			b.ResetTimer()
			for i := range b.N {
				// Each claim comes after the last one's leases ended: the same ten rows.
				p.Now = now.Add(time.Duration(i) * 2 * time.Second)
				p.LeaseExpiry = p.Now.Add(time.Second)
				got, err := s.ClaimEffects(ctx, p)
				require.NoError(b, err)
				require.Len(b, got.Effects, 10)
			}
		})
	}
}

// seedEffects writes a new instance typ/id whose first input emits n effects due at at.
func seedEffects(b *testing.B, s store.Store, typ, id string, n int, at time.Time) {
	_, err := s.Execute(context.Background(), store.ExecuteParams{
		WorkflowType: typ, WorkflowID: id,
		Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
			w := &store.Write{
				Instance: &store.Instance{DefinitionVersion: 1, StateName: "s",
					StateData: json.RawMessage(`{}`), Status: store.StatusRunning, Version: 1, CreatedAt: at, UpdatedAt: at},
				Events: []store.Event{{WorkflowType: typ, WorkflowID: id, Seq: 1, Type: "E", To: "s",
					Data: json.RawMessage(`{}`), RecordedAt: at}},
				Input: store.InputRecord{Type: "go", Data: json.RawMessage(`{}`), Outcome: store.OutcomeAccepted,
					Version: 1, Response: json.RawMessage(`{}`), CreatedAt: at},
			}
			for i := range n {
				w.Effects = append(w.Effects, store.Effect{ID: uuid.NewString(), WorkflowType: typ, WorkflowID: id,
					Seq: 1, Name: fmt.Sprintf("e%d", i), Payload: json.RawMessage(`{}`), Status: store.EffectPending,
					NextAttemptAt: at.Add(time.Duration(i) * time.Microsecond), CreatedAt: at, UpdatedAt: at})
			}
			return w, nil
		},
	})
	require.NoError(b, err)
}
