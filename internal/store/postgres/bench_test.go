package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
)

// BenchmarkExecute measures accepted inputs, each appending one event and one effect, on
// many instances in parallel (the first input of each instance creates it).
func BenchmarkExecute(b *testing.B) {
	url := pgtest.MigratedDatabaseURL(b, postgres.Migrate)
	ctx := context.Background()
	s, err := postgres.Open(ctx, url)
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })

	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("i-%d", next.Add(1))
		for pb.Next() {
			_, err := s.Execute(ctx, store.ExecuteParams{
				WorkflowType: "bench", WorkflowID: id,
				Decide: func(_ context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
					now := time.Now()
					var v int64
					created := now
					if cur != nil {
						v, created = cur.Version, cur.CreatedAt
					}
					return &store.Write{
						Instance: &store.Instance{DefinitionVersion: 1, StateName: "s",
							StateData: json.RawMessage(`{"n":1}`), Status: store.StatusRunning, Version: v + 1,
							CreatedAt: created, UpdatedAt: now},
						Events: []store.Event{{Seq: v + 1, Type: "E", From: "s", To: "s",
							Data: json.RawMessage(`{"n":1}`), RecordedAt: now}},
						Effects: []store.Effect{{Seq: v + 1, Name: "e", Payload: json.RawMessage(`{}`)}},
						Input: store.InputRecord{Type: "go", Data: json.RawMessage(`{}`),
							Outcome: store.OutcomeAccepted, Response: json.RawMessage(`{}`), CreatedAt: now},
					}, nil
				},
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
