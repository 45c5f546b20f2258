package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ironflow/ironflow/migrations"
)

// MigrateFunc applies the store's migrations to the database at url (postgres.Migrate).
type MigrateFunc func(ctx context.Context, url string) error

// maxPooled bounds the pool: that many tests holding a database at once, across every
// test process on the server, is far beyond what a run starts.
const maxPooled = 256

// MigratedDatabaseURL returns the URL of a database with every migration applied and
// every table empty, which the test holds alone until it and its subtests have
// finished. Register what connects to it after calling MigratedDatabaseURL, so it is
// closed before the database goes back to the pool.
//
// The databases, ironflow_pool_<migrations>_<n>, are shared by every test process on
// the server and kept between runs: creating, migrating and dropping a database per
// test cost more than most tests. A test claims the first one no one holds with a
// session advisory lock on the admin database, which PostgreSQL releases when the
// holder's connection ends, however its process ended. A claimed database is cleared
// on reuse: connections a previous holder left are terminated, and every table but
// schema_migrations is truncated with its sequences restarted. A database not at the
// latest migration, or left dirty, is dropped, created and migrated again. <migrations> is a hash of the embedded PostgreSQL migrations, so working
// copies with different migrations never share a database; old pools are left for an
// operator to drop.
//
// A test that needs a database no migration has touched takes NewDatabaseURL instead.
// When the server cannot be reached the test is skipped, or fails when the environment
// variable CI is set.
func MigratedDatabaseURL(t testing.TB, migrate MigrateFunc) string {
	t.Helper()
	admin := AdminURL()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// This connection holds the claim until the test's cleanup closes it.
	conn := connectAdmin(ctx, t, admin)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })

	prefix := "ironflow_pool_" + migrationsHash(t) + "_"
	for n := range maxPooled {
		name := prefix + strconv.Itoa(n)
		var claimed bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, name).Scan(&claimed); err != nil {
			t.Fatalf("pgtest: claim %s: %v", name, err)
		}
		if !claimed {
			continue
		}
		u, err := withDatabase(admin, name)
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		if err := prepare(ctx, conn, name, u, migrate); err != nil {
			t.Fatalf("pgtest: prepare %s: %v", name, err)
		}
		return u
	}
	t.Fatalf("pgtest: all %d pooled databases are held", maxPooled)
	return ""
}

// prepare makes the claimed database name (at u) migrated and empty: cleared when it
// exists and is sound, created otherwise.
func prepare(ctx context.Context, admin *pgx.Conn, name, u string, migrate MigrateFunc) error {
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		// A previous holder's leftovers (a killed server's connections) must not write
		// into the next test.
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
			return fmt.Errorf("terminate leftover connections: %w", err)
		}
		sound, err := clear(ctx, u)
		if err != nil {
			return err
		}
		if sound {
			return nil
		}
		// Left dirty or half migrated: start over.
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop: %w", err)
		}
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if err := migrate(ctx, u); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// clearSQL empties every table of the public schema but the migrations' own and
// restarts every sequence, in one statement, when the database is at migration $1 and
// clean; it answers whether it was.
const clearSQL = `DO $$
DECLARE
	tables text;
	seq record;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = 'schema_migrations') OR
		NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = %d AND NOT dirty) THEN
		RAISE EXCEPTION USING ERRCODE = 'IFPT1', MESSAGE = 'not at the latest migration';
	END IF;
	SELECT string_agg(format('%%I.%%I', schemaname, tablename), ', ') INTO tables
	FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations';
	IF tables IS NOT NULL THEN
		EXECUTE 'TRUNCATE ' || tables || ' RESTART IDENTITY CASCADE';
	END IF;
	FOR seq IN SELECT schemaname, sequencename FROM pg_sequences WHERE schemaname = 'public' LOOP
		EXECUTE format('ALTER SEQUENCE %%I.%%I RESTART', seq.schemaname, seq.sequencename);
	END LOOP;
END $$`

// clear empties the database at u when it is sound: at the latest embedded migration
// and not dirty. Migrating it again is not needed: its name holds a hash of the
// migrations it was built with. sound is false when it is not.
func clear(ctx context.Context, u string) (sound bool, err error) {
	latest, err := latestMigration()
	if err != nil {
		return false, err
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return false, fmt.Errorf("clear: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(ctx, fmt.Sprintf(clearSQL, latest))
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "IFPT1":
		return false, nil
	case err != nil:
		return false, fmt.Errorf("clear: %w", err)
	}
	return true, nil
}

// latestMigration returns the highest version among the embedded PostgreSQL migrations.
func latestMigration() (int64, error) {
	entries, err := fs.ReadDir(migrations.Postgres, "postgres")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, e := range entries {
		head, _, _ := strings.Cut(e.Name(), "_")
		if v, err := strconv.ParseInt(head, 10, 64); err == nil {
			latest = max(latest, v)
		}
	}
	return latest, nil
}

// migrationsHash names the embedded PostgreSQL migrations: the first 8 bytes of a
// SHA-256 over their names and contents, in hex.
func migrationsHash(t testing.TB) string {
	t.Helper()
	h := sha256.New()
	err := fs.WalkDir(migrations.Postgres, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.Postgres, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatalf("pgtest: hash migrations: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
