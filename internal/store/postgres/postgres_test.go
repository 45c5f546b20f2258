package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newStore opens a store on an empty database of its own.
func newStore(t *testing.T) *postgres.Store {
	t.Helper()
	url := pgtest.MigratedDatabaseURL(t, postgres.Migrate)
	s, err := postgres.Open(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabaseURL(t)
	ctx := context.Background()
	const n = 6
	errs := make(chan error, n)
	stores := make(chan *postgres.Store, n)
	for range n {
		go func() {
			s, err := postgres.Open(ctx, url)
			errs <- err
			stores <- s
		}()
	}
	for range n {
		require.NoError(t, <-errs)
		s := <-stores
		require.NoError(t, s.Ping(ctx))
		require.NoError(t, s.Close())
	}
	require.NoError(t, postgres.Migrate(ctx, url))
}

func TestPingDetectsDirtySchema(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabaseURL(t)
	ctx := context.Background()
	s, err := postgres.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `UPDATE schema_migrations SET dirty = true`)
	require.NoError(t, err)
	require.ErrorIs(t, s.Ping(ctx), store.ErrUnavailable)
	_, err = postgres.Open(ctx, url)
	require.Error(t, err)
}

func TestUnreachableIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback refuses connections.
	_, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	require.ErrorIs(t, err, store.ErrUnavailable)
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	require.NoError(t, s.Close())
	_, err := s.GetInstance(context.Background(), "t", "i")
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.NoError(t, s.Close(), "Close is idempotent")
}

// TestListenReconnects kills the LISTEN connection's backend and expects a wake after
// the store reconnected, then another store's notifications as before.
func TestListenReconnects(t *testing.T) {
	t.Parallel()
	url := pgtest.MigratedDatabaseURL(t, postgres.Migrate)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	ch, err := s.Listen(ctx, store.TopicTimers)
	require.NoError(t, err)

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`)
	require.NoError(t, err)
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatal("no wake after the LISTEN connection was re-established")
	}
	// Wait until the new connection listens, then a NOTIFY must arrive.
	require.Eventually(t, func() bool {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&n)
		return err == nil && n == 1
	}, 10*time.Second, 20*time.Millisecond)
	// From another store, as another process: its wake can only come through LISTEN.
	other, err := postgres.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	_, err = other.ScheduleTimer(ctx, store.Timer{WorkflowType: "t", WorkflowID: "i", Key: "k",
		FireAt: time.Now(), InputType: "tick"})
	require.NoError(t, err)
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatal("no wake after another store's ScheduleTimer")
	}
}

// TestJSONKeptAsWritten checks that JSON documents keep their key order and that the
// escape \u0000 (which jsonb would refuse) is stored like any other input.
func TestJSONKeptAsWritten(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	data := json.RawMessage(`{"z":"\u0000","a":{"y":1,"b":[2,1]}}`)
	now := time.Now().UTC()
	res, err := s.Execute(ctx, store.ExecuteParams{WorkflowType: "t", WorkflowID: "i",
		Decide: func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
			return &store.Write{
				Instance: &store.Instance{DefinitionVersion: 1, StateName: "s", StateData: data,
					Status: store.StatusRunning, Version: 1, CreatedAt: now, UpdatedAt: now},
				Events: []store.Event{{Seq: 1, Type: "E", From: "new", To: "s", Data: data, RecordedAt: now}},
				Input: store.InputRecord{Type: "go", Data: json.RawMessage(`{ "z" : 1, "a" : 2 }`),
					Outcome: store.OutcomeAccepted, CreatedAt: now},
			}, nil
		}})
	require.NoError(t, err)
	inst, err := s.GetInstance(ctx, "t", "i")
	require.NoError(t, err)
	require.Equal(t, string(data), string(inst.StateData))
	evs, err := s.ListEvents(ctx, "t", "i", 0, 0)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, string(data), string(evs[0].Data))
	require.Equal(t, res.Input.ID, evs[0].InputID)
	inputs, err := s.ListInputs(ctx, "t", "i", "", 0)
	require.NoError(t, err)
	require.Len(t, inputs.Items, 1)
	require.Equal(t, `{"z":1,"a":2}`, string(inputs.Items[0].Data), "compacted, key order kept")
}
