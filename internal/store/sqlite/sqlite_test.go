package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openDriver opens a store on a fresh file in a temporary directory, closed at cleanup.
func openDriver(t testing.TB) (*Store, *driver) {
	t.Helper()
	s, d, err := open(context.Background(), filepath.Join(t.TempDir(), "data", "ironflow.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, d
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openDriver(t)
		return s
	})
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nested", "dir", "ironflow.db")
	require.NoError(t, Migrate(context.Background(), path))
	require.NoError(t, Migrate(context.Background(), path))
	_, err := os.Stat(path)
	require.NoError(t, err)
	s, err := Open(context.Background(), path)
	require.NoError(t, err)
	require.NoError(t, s.Ping(context.Background()))
	require.NoError(t, s.Close())
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	t.Parallel()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "ironflow.db"))
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
