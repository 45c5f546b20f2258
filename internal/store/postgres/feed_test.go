package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
)

// feedReader reads the feed after a position: the keys of the events read, the next
// position, and whether committed events are held back.
type feedReader func(ctx context.Context, after string) (keys []string, next string, heldBack bool, err error)

// horizonReader is the store's feed: ordered by (txid, gid) below the visibility horizon.
func horizonReader(s *postgres.Store) feedReader {
	return func(ctx context.Context, after string) ([]string, string, bool, error) {
		page, err := s.ReadFeed(ctx, store.FeedParams{After: after, Limit: 100})
		if err != nil {
			return nil, "", false, err
		}
		keys := make([]string, len(page.Items))
		for i, it := range page.Items {
			keys[i] = fmt.Sprintf("%s/%d", it.WorkflowID, it.Seq)
		}
		return keys, page.Next, page.HeldBack, nil
	}
}

// sequenceReader is the naive feed this store does not use: events ordered by their
// identity column alone.
func sequenceReader(pool *pgxpool.Pool) feedReader {
	return func(ctx context.Context, after string) ([]string, string, bool, error) {
		gid := int64(0)
		if after != "" {
			gid, _ = strconv.ParseInt(after, 10, 64)
		}
		rows, err := pool.Query(ctx, `SELECT gid, workflow_id, seq FROM events WHERE gid > $1 ORDER BY gid LIMIT 100`, gid)
		if err != nil {
			return nil, "", false, err
		}
		defer rows.Close()
		var keys []string
		for rows.Next() {
			var id string
			var seq int64
			if err := rows.Scan(&gid, &id, &seq); err != nil {
				return nil, "", false, err
			}
			keys = append(keys, fmt.Sprintf("%s/%d", id, seq))
		}
		return keys, strconv.FormatInt(gid, 10), false, rows.Err()
	}
}

// appendOne decides one accepted input on (typ, id): one event, the snapshot updated.
func appendOne(typ, id string) store.DecideFunc {
	return func(_ context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
		now := time.Now().UTC().Truncate(time.Microsecond)
		inst := &store.Instance{Type: typ, ID: id, DefinitionVersion: 1, StateName: "s", StateData: json.RawMessage(`{}`),
			Status: store.StatusRunning, Version: 1, CreatedAt: now, UpdatedAt: now}
		if cur != nil {
			inst.CreatedAt, inst.Version = cur.CreatedAt, cur.Version+1
		}
		in := store.InputRecord{ID: uuid.NewString(), WorkflowType: typ, WorkflowID: id, Type: "go",
			Data: json.RawMessage(`{}`), Source: store.SourceAPI, Outcome: store.OutcomeAccepted,
			Version: inst.Version, Response: json.RawMessage(`{}`), CreatedAt: now}
		return &store.Write{Instance: inst, Input: in, Events: []store.Event{{WorkflowType: typ, WorkflowID: id,
			Seq: inst.Version, Type: "Went", From: "s", To: "s", Data: json.RawMessage(`{}`), InputType: "go",
			InputID: in.ID, RecordedAt: now}}}, nil
	}
}

// followWhileWriting has 16 writers send inputs to many instances, a fifth of their
// transactions held open after their event is inserted (a trigger sleeps in them),
// while read follows the feed. It returns how many times each event was read and the
// number of events written.
func followWhileWriting(t *testing.T, s *postgres.Store, read feedReader) (map[string]int, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const writers, perWriter, instances = 16, 40, 64
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for range writers {
		wg.Go(func() {
			for range perWriter {
				n := rand.IntN(instances)
				id := fmt.Sprint("i-", n)
				if n%5 == 0 {
					id = fmt.Sprint("slow-", n) // the trigger holds this transaction open
				}
				if _, err := s.Execute(ctx, store.ExecuteParams{WorkflowType: "t", WorkflowID: id, Decide: appendOne("t", id)}); err != nil {
					errs <- err
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[string]int{}
	after, finished := "", false
	for {
		keys, next, heldBack, err := read(ctx, after)
		require.NoError(t, err)
		for _, k := range keys {
			seen[k]++
		}
		after = next
		if finished && len(keys) == 0 && !heldBack {
			break
		}
		select {
		case <-done:
			finished = true
		case <-time.After(2 * time.Millisecond):
		}
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return seen, writers * perWriter
}

// newFeedStore opens a store whose database holds some transactions open: an event of
// an instance named slow-… makes its transaction sleep after the insert, so that it
// commits after transactions that inserted later.
func newFeedStore(t *testing.T) (*postgres.Store, *pgxpool.Pool) {
	url := pgtest.NewDatabaseURL(t)
	s, err := postgres.Open(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(context.Background(), `
CREATE FUNCTION hold_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.workflow_id LIKE 'slow-%' THEN PERFORM pg_sleep(0.02 + random() * 0.08); END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER hold_open AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION hold_open();`)
	require.NoError(t, err)
	return s, pool
}

func TestFeedGapFreeUnderConcurrentWriters(t *testing.T) {
	t.Parallel()
	s, _ := newFeedStore(t)
	seen, written := followWhileWriting(t, s, horizonReader(s))
	require.Len(t, seen, written, "every event read")
	for k, n := range seen {
		require.Equal(t, 1, n, "event %s read %d times", k, n)
	}
}

// TestFeedSequenceCursorSkips is the same run with a plain sequence cursor: it misses
// events, which is why the feed does not use one.
func TestFeedSequenceCursorSkips(t *testing.T) {
	t.Parallel()
	s, pool := newFeedStore(t)
	seen, written := followWhileWriting(t, s, sequenceReader(pool))
	t.Logf("the sequence cursor read %d of %d events", len(seen), written)
	require.Less(t, len(seen), written, "a gid cursor skips events whose transaction committed late")
}
