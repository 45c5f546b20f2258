package postgres

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
	"github.com/ironflow/ironflow/internal/store/storetest"
)

// TestIDPrefixWithoutByteOrder runs the id prefix case through the LIKE a database whose
// collation is linguistic gets, whatever the collation of the test server.
func TestIDPrefixWithoutByteOrder(t *testing.T) {
	t.Parallel()
	storetest.RunListInstancesByPrefix(t, func(t *testing.T) store.Store {
		s, d, err := open(context.Background(), pgtest.MigratedDatabaseURL(t, Migrate))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		d.byteOrder = false
		return s
	})
}

// TestIDPrefixBeyondTheWindow runs the id prefix cases with a window of 3 rows, so that
// most pages are completed from the (type, id) key (prefixPage), some within the window
// alone.
func TestIDPrefixBeyondTheWindow(t *testing.T) {
	t.Parallel()
	storetest.RunListInstancesByPrefix(t, func(t *testing.T) store.Store {
		s, d, err := open(context.Background(), pgtest.MigratedDatabaseURL(t, Migrate))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		d.prefixWindow = 3
		return s
	})
}
