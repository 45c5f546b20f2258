package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlite"
	"github.com/ironflow/ironflow/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// open opens a store on a fresh file in a temporary directory, closed at cleanup.
func open(t *testing.T) *sqlite.Store {
	t.Helper()
	s := openUnclosed(t)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// openUnclosed opens a store on a fresh file; the test closes it.
func openUnclosed(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "data", "ironflow.db"))
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	// SQLite has one writer per file, so inputs to different instances wait for each
	// other (briefly): the suite checks for no deadlock instead of no waiting.
	storetest.RunWith(t, func(t *testing.T) store.Store { return open(t) },
		storetest.RunOptions{SingleWriter: true})
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nested", "dir", "ironflow.db")
	require.NoError(t, sqlite.Migrate(context.Background(), path))
	require.NoError(t, sqlite.Migrate(context.Background(), path))
	_, err := os.Stat(path)
	require.NoError(t, err)
	s, err := sqlite.Open(context.Background(), path)
	require.NoError(t, err)
	require.NoError(t, s.Ping(context.Background()))
	require.NoError(t, s.Close())
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	t.Parallel()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ironflow.db"))
	require.NoError(t, err)
	ch, err := s.Listen(context.Background(), store.TopicEffects)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, ok := <-ch
	require.False(t, ok, "Close closes Listen channels")
	require.ErrorIs(t, s.Ping(context.Background()), store.ErrUnavailable)
	_, err = s.GetInstance(context.Background(), "order", "o-1")
	require.ErrorIs(t, err, store.ErrUnavailable)
}
