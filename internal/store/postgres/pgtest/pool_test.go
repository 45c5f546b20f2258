package pgtest

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// fakeMigrate stands for a store's migrations: a table with a sequence, and the
// bookkeeping golang-migrate keeps, refusing a dirty database as it does.
func fakeMigrate(ctx context.Context, u string) error {
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var dirty bool
	err = conn.QueryRow(ctx, `SELECT dirty FROM schema_migrations`).Scan(&dirty)
	switch {
	case err == nil && dirty:
		return errors.New("dirty database")
	case err == nil:
		return nil
	}
	latest, err := latestMigration()
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `
CREATE TABLE schema_migrations (version bigint NOT NULL, dirty boolean NOT NULL);
INSERT INTO schema_migrations VALUES (`+strconv.FormatInt(latest, 10)+`, false);
CREATE TABLE items (id bigserial PRIMARY KEY, v text NOT NULL);
CREATE SEQUENCE standalone;`)
	return err
}

func query[T any](t *testing.T, u, sql string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	var v T
	require.NoError(t, conn.QueryRow(ctx, sql).Scan(&v))
	return v
}

func exec(t *testing.T, u, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(ctx, sql)
	require.NoError(t, err)
}

// TestPrepareClearsAReusedDatabase: a claimed database that a previous holder filled,
// advanced the sequences of and left connections open to comes back empty, with its
// migrations kept and its sequences restarted, and the old connections closed.
func TestPrepareClearsAReusedDatabase(t *testing.T) {
	t.Parallel()
	u := NewDatabaseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, fakeMigrate(ctx, u))
	exec(t, u, `INSERT INTO items (v) VALUES ('a'), ('b'), ('c')`)
	exec(t, u, `SELECT nextval('standalone'), nextval('standalone')`)
	leftover, err := pgx.Connect(ctx, u)
	require.NoError(t, err)
	defer func() { _ = leftover.Close(context.Background()) }()

	oid := query[uint32](t, u, `SELECT oid FROM pg_database WHERE datname = current_database()`)

	admin := connectAdmin(ctx, t, AdminURL())
	defer func() { _ = admin.Close(context.Background()) }()
	require.NoError(t, prepare(ctx, admin, databaseName(t, u), u, fakeMigrate))

	require.Equal(t, oid, query[uint32](t, u, `SELECT oid FROM pg_database WHERE datname = current_database()`),
		"cleared, not created again")
	require.Zero(t, query[int64](t, u, `SELECT count(*) FROM items`))
	require.EqualValues(t, 1, query[int64](t, u, `SELECT count(*) FROM schema_migrations`), "the migrations stay applied")
	require.EqualValues(t, 1, query[int64](t, u, `INSERT INTO items (v) VALUES ('d') RETURNING id`), "identities restart")
	require.EqualValues(t, 1, query[int64](t, u, `SELECT nextval('standalone')`), "sequences restart")
	require.Error(t, leftover.Ping(ctx), "a previous holder's connection is closed")
}

// TestPrepareRebuildsABrokenDatabase: a database its last holder left dirty is dropped
// and created again.
func TestPrepareRebuildsABrokenDatabase(t *testing.T) {
	t.Parallel()
	u := NewDatabaseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, fakeMigrate(ctx, u))
	exec(t, u, `INSERT INTO items (v) VALUES ('a')`)
	exec(t, u, `UPDATE schema_migrations SET dirty = true`)

	admin := connectAdmin(ctx, t, AdminURL())
	defer func() { _ = admin.Close(context.Background()) }()
	oid := query[uint32](t, u, `SELECT oid FROM pg_database WHERE datname = current_database()`)
	require.NoError(t, prepare(ctx, admin, databaseName(t, u), u, fakeMigrate))
	require.NotEqual(t, oid, query[uint32](t, u, `SELECT oid FROM pg_database WHERE datname = current_database()`),
		"created again")
	require.False(t, query[bool](t, u, `SELECT dirty FROM schema_migrations`))
	require.Zero(t, query[int64](t, u, `SELECT count(*) FROM items`))
}

func databaseName(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	require.NoError(t, err)
	return strings.TrimPrefix(p.Path, "/")
}
