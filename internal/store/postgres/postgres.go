// Package postgres is the PostgreSQL store.Store (pgx/v5): the backend for production
// and for running many server processes on one database.
//
// Every method owns its transaction. Inputs lock their instance with a transaction-scoped
// advisory lock on its key (whether or not it exists yet), so different instances never
// wait on each other.
// Workers claim effects and timers with FOR UPDATE SKIP LOCKED and are woken at commit by
// LISTEN/NOTIFY on the channels ironflow_effects and ironflow_timers.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/migrations"
)

// defaultLimit is the page size of lists and claims when the caller passes none.
const defaultLimit = 50

// rollbackTimeout bounds a rollback that runs after the caller's context ended.
const rollbackTimeout = 5 * time.Second

// Store is the PostgreSQL implementation of store.Store. Create it with Open.
type Store struct {
	pool     *pgxpool.Pool
	connCfg  *pgx.ConnConfig // for the dedicated LISTEN connection
	listener *listener
	notifier *notifier

	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or keyword/value string),
// applies the embedded migrations and returns the store. Concurrent Opens by several
// processes are safe: migrations run under a Postgres advisory lock.
//
// The pool holds max(4, 4×GOMAXPROCS) connections unless the URL sets pool_max_conns;
// the other pgxpool parameters (pool_min_conns, pool_max_conn_lifetime, …) are honoured
// too. Errors wrap store.ErrUnavailable when the database cannot be reached.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: parse url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = int32(max(4, 4*runtime.GOMAXPROCS(0)))
	}
	if err := migrateUp(ctx, cfg.ConnConfig); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, mapErr("open", err)
	}
	s := &Store{pool: pool, connCfg: cfg.ConnConfig.Copy(), notifier: &notifier{pool: pool}}
	s.listener = newListener(s.connCfg)
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Migrate applies the embedded PostgreSQL migrations to the database at url. It is what
// `server migrate` runs; Open runs it too. A database left dirty by a failed migration is
// reported, not repaired. Errors wrap store.ErrUnavailable when the database cannot be
// reached.
func Migrate(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("postgres: migrate: parse url: %w", err)
	}
	return migrateUp(ctx, cfg)
}

func migrateUp(ctx context.Context, cfg *pgx.ConnConfig) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	db := stdlib.OpenDB(*cfg.Copy())
	defer db.Close()
	db.SetMaxOpenConns(2)
	if err := db.PingContext(ctx); err != nil {
		return mapErr("migrate", err)
	}
	// The driver holds one connection for the advisory lock that serialises concurrent
	// migrations of the same database by several processes.
	drv, err := migratepgx.WithInstance(db, &migratepgx.Config{})
	if err != nil {
		return mapErr("migrate", err)
	}
	src, err := iofs.New(migrations.Postgres, "postgres")
	if err != nil {
		_ = drv.Close()
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		_ = drv.Close()
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer m.Close()
	// migrate has no context; a graceful stop ends it between migrations.
	stop := context.AfterFunc(ctx, func() {
		select {
		case m.GracefulStop <- true:
		default:
		}
	})
	defer stop()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return mapErr("migrate", err)
	}
	return nil
}

// latestMigration returns the highest version among the embedded migrations.
func latestMigration() (int64, error) {
	entries, err := fs.ReadDir(migrations.Postgres, "postgres")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, e := range entries {
		head, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(head, 10, 64)
		if err != nil {
			continue
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// Ping reports whether the database answers and every embedded migration is applied
// and not dirty. It returns an error wrapping store.ErrUnavailable otherwise.
func (s *Store) Ping(ctx context.Context) error {
	want, err := latestMigration()
	if err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	var version int64
	var dirty bool
	err = s.pool.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&version, &dirty)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: ping: %w: no migrations applied", store.ErrUnavailable)
	}
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
			return fmt.Errorf("postgres: ping: %w: no migrations applied", store.ErrUnavailable)
		}
		return mapErr("ping", err)
	}
	if dirty || version != want {
		return fmt.Errorf("postgres: ping: %w: schema at version %d (dirty %t), want %d",
			store.ErrUnavailable, version, dirty, want)
	}
	return nil
}

// Close stops the LISTEN connection, closes every Listen channel and closes the pool.
// It waits for connections in use to be released.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.listener.close()
		s.notifier.close()
		s.pool.Close()
	})
	return nil
}

// Stats returns backlog figures for metrics: pending and dead effects and timers (due
// or not) and the creation time of the oldest pending effect.
func (s *Store) Stats(ctx context.Context, _ time.Time) (store.Stats, error) {
	var st store.Stats
	var oldest *time.Time
	err := s.pool.QueryRow(ctx, `
SELECT
    (SELECT count(*) FROM effects WHERE status = 'pending'),
    (SELECT min(created_at) FROM effects WHERE status = 'pending'),
    (SELECT count(*) FROM effects WHERE status = 'dead'),
    (SELECT count(*) FROM timers WHERE status = 'pending'),
    (SELECT count(*) FROM timers WHERE status = 'dead')`).
		Scan(&st.PendingEffects, &oldest, &st.DeadEffects, &st.PendingTimers, &st.DeadTimers)
	if err != nil {
		return store.Stats{}, mapErr("stats", err)
	}
	st.OldestPendingEffect = utcPtr(oldest)
	return st, nil
}

// withTx runs fn in one transaction (batchTx: BEGIN and COMMIT share round trips with
// fn's statements) and commits when it returns nil. On any error the transaction is
// rolled back, even when ctx has ended, so the connection goes back clean.
//
// What fn's writes would notify is sent after the commit (notify.go).
func (s *Store) withTx(ctx context.Context, fn func(tx *batchTx) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	tx := &batchTx{conn: conn}
	defer tx.end(ctx)
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.commit(ctx); err != nil {
		return err
	}
	s.notifier.poke(tx.n)
	return nil
}

// rollbackOnly runs fn in a transaction that is always rolled back (dry runs).
func (s *Store) rollbackOnly(ctx context.Context, fn func(tx *batchTx) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	tx := &batchTx{conn: conn}
	defer tx.end(ctx)
	return fn(tx)
}

// decideError carries an error returned by a DecideFunc through the transaction so the
// store can hand it back unchanged.
type decideError struct{ err error }

func (e decideError) Error() string { return e.err.Error() }
func (e decideError) Unwrap() error { return e.err }

// mapErr turns an error at the edge of a method into what callers branch on: a
// DecideFunc's error unchanged, pgx.ErrNoRows as store.ErrNotFound, a violation of the
// unique-key index as store.ErrUniqueKeyConflict, and failures that mean the database
// cannot be used as store.ErrUnavailable. Store sentinels pass through wrapped with op.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var de decideError
	if errors.As(err, &de) {
		return de.err
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: %s: %w", op, store.ErrNotFound)
	case isUniqueViolation(err, "instances_running_unique_key"):
		return fmt.Errorf("postgres: %s: %w", op, store.ErrUniqueKeyConflict)
	case isUnavailable(err):
		return fmt.Errorf("postgres: %s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// isUnavailable reports whether err means the database could not be reached or the
// connection broke, as opposed to a problem with the statement.
func isUnavailable(err error) bool {
	if errors.Is(err, store.ErrUnavailable) {
		return false // already wrapped
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false // the caller gave up; the database is fine
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now
			pgErr.Code == "53300", // too_many_connections
			pgErr.Code == "3D000": // invalid_catalog_name: the database does not exist
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case pgconn.SafeToRetry(err),
		errors.As(err, &connectErr),
		errors.As(err, &netErr),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, sql.ErrConnDone),
		// pgxpool does not export the error it returns once closed.
		strings.Contains(err.Error(), "closed pool"),
		strings.Contains(err.Error(), "conn closed"):
		return true
	}
	return false
}

// isUniqueViolation reports whether err is a unique violation, of constraint when it is
// not "".
func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		return false
	}
	return constraint == "" || pgErr.ConstraintName == constraint
}
