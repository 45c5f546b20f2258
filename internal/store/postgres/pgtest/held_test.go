package pgtest_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store/postgres"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
)

// TestMigratedDatabasesAreHeldAlone: databases held at once are different pooled ones,
// each migrated and empty. The claim is a session lock, so it excludes another
// connection (any other test process) as it excludes this test's next claim.
func TestMigratedDatabasesAreHeldAlone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := map[string]bool{}
	for range 3 {
		u := pgtest.MigratedDatabaseURL(t, postgres.Migrate)
		p, err := url.Parse(u)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(p.Path, "/ironflow_pool_"), u)
		require.False(t, seen[u], "%s handed out twice", u)
		seen[u] = true

		conn, err := pgx.Connect(ctx, u)
		require.NoError(t, err)
		var dirty bool
		require.NoError(t, conn.QueryRow(ctx, `SELECT dirty FROM schema_migrations`).Scan(&dirty))
		require.False(t, dirty)
		var n int64
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM instances`).Scan(&n))
		require.Zero(t, n)
		require.NoError(t, conn.Close(ctx))
	}
}
