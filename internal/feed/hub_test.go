package feed_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ironflow/ironflow/internal/feed"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
	"github.com/ironflow/ironflow/internal/store/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// appendEvent commits one event on (typ, id).
func appendEvent(t *testing.T, s store.Store, typ, id string) {
	t.Helper()
	_, err := s.Execute(context.Background(), store.ExecuteParams{WorkflowType: typ, WorkflowID: id,
		Decide: func(_ context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
			now := time.Now().UTC().Truncate(time.Microsecond)
			inst := &store.Instance{Type: typ, ID: id, DefinitionVersion: 1, StateName: "s", StateData: json.RawMessage(`{}`),
				Status: store.StatusRunning, Version: 1, CreatedAt: now, UpdatedAt: now}
			if cur != nil {
				inst.Version = cur.Version + 1
			}
			in := store.InputRecord{ID: uuid.NewString(), WorkflowType: typ, WorkflowID: id, Type: "go", Source: store.SourceAPI,
				Outcome: store.OutcomeAccepted, Version: inst.Version, CreatedAt: now}
			return &store.Write{Instance: inst, Input: in, Events: []store.Event{{WorkflowType: typ, WorkflowID: id,
				Seq: inst.Version, Type: "E", From: "s", To: "s", InputType: "go", InputID: in.ID, RecordedAt: now}}}, nil
		}})
	require.NoError(t, err)
}

func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func TestHub(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "hub.db"))
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	appendEvent(t, s, "t", "before") // history before the start wakes nobody

	h := feed.NewHub(s, nil)
	require.NoError(t, h.Start(ctx))
	changed := h.Changed()
	a, releaseA := h.WatchInstance("t", "a")
	b, releaseB := h.WatchInstance("t", "b")
	require.Equal(t, 2, h.Waiting())
	require.False(t, closedWithin(changed, 100*time.Millisecond))

	appendEvent(t, s, "t", "a")
	require.True(t, closedWithin(a, 5*time.Second), "a's waiter woken")
	require.True(t, closedWithin(changed, time.Second), "feed waiters woken")
	require.False(t, closedWithin(b, 100*time.Millisecond), "b's waiter not woken by a's event")
	releaseA()
	releaseB()
	require.Equal(t, 0, h.Waiting(), "released waiters leave nothing behind")

	// Stop wakes every waiter, and later ones return at once.
	c, releaseC := h.WatchInstance("t", "c")
	defer releaseC()
	require.NoError(t, h.Stop(ctx))
	require.True(t, closedWithin(c, time.Second))
	require.True(t, closedWithin(h.Changed(), time.Second))
	require.True(t, h.Stopped())
	d, releaseD := h.WatchInstance("t", "d")
	defer releaseD()
	require.True(t, closedWithin(d, time.Second))
}

// TestHubHeldBack: on PostgreSQL an event behind an older open transaction wakes its
// instance's waiters at once, and the feed's waiters once the transaction ends.
func TestHubHeldBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabaseURL(t)
	s, err := postgres.Open(ctx, url)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	h := feed.NewHub(s, nil)
	require.NoError(t, h.Start(ctx))
	defer func() { require.NoError(t, h.Stop(ctx)) }()

	// An open transaction with an id holds the horizon.
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)

	changed := h.Changed()
	a, release := h.WatchInstance("t", "a")
	defer release()
	appendEvent(t, s, "t", "a")
	// The transaction stays open until the rollback below, so however long this
	// waits, a waiter that waits for it is not woken.
	require.True(t, closedWithin(a, 30*time.Second), "the instance's waiter does not wait for the open transaction")
	require.False(t, closedWithin(changed, 300*time.Millisecond), "the feed does not pass the open transaction")
	require.NoError(t, tx.Rollback(ctx))
	requireFeedMovesOn(t, url, changed)
}

// requireFeedMovesOn requires changed to close within 5 s of the event of ("t", "a")
// falling below the visibility horizon. The horizon is the whole server's: on a server
// that other test processes share, any transaction of theirs that was open when the
// event committed holds it back too, for as long as it runs. So the 5 s count from the
// moment the event is readable, not from the rollback.
func requireFeedMovesOn(t *testing.T, url string, changed <-chan struct{}) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var txid uint64
	require.NoError(t, conn.QueryRow(ctx, `SELECT txid::text::bigint FROM events WHERE workflow_id = 'a'`).Scan(&txid))
	const settle, held = 5 * time.Second, 2 * time.Minute
	deadline := time.Now().Add(held)
	var readable time.Time
	for !closedWithin(changed, 20*time.Millisecond) {
		if readable.IsZero() {
			var horizon uint64
			require.NoError(t, conn.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&horizon))
			if horizon > txid {
				readable = time.Now()
			}
			require.True(t, time.Now().Before(deadline), "another transaction held the horizon for %s", held)
			continue
		}
		require.Less(t, time.Since(readable), settle, "the feed moves on once the transaction ended")
	}
}
