// Package postgres is the PostgreSQL driver of the SQL store (store/sqlstore, pgx/v5):
// the backend for production and for running many server processes on one database.
//
// It supplies SQL and transaction shape only. Inputs lock their instance with a
// transaction-scoped advisory lock on its key (whether or not it exists yet), so
// different instances never wait on each other, and a decision costs two round trips
// (batchtx.go). Workers claim effects and timers with FOR UPDATE SKIP LOCKED and are
// woken by LISTEN/NOTIFY on the channels ironflow_effects and ironflow_timers.
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
	"strings"
	"sync"
	"time"

	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
	"github.com/ironflow/ironflow/migrations"
)

// rollbackTimeout bounds a rollback that runs after the caller's context ended.
const rollbackTimeout = 5 * time.Second

// Store is the PostgreSQL store: the SQL store over this package's driver.
type Store = sqlstore.Store

// driver is the sqlstore.Driver of PostgreSQL.
type driver struct {
	pool     *pgxpool.Pool
	listener *listener
	notifier *notifier
	defs     definitionCache // the definitions read (Load)
	// byteOrder: the database compares text byte by byte (byteOrderQuery), so a prefix
	// of instance ids is a range of the primary key.
	byteOrder bool
	// prefixWindow: the rows after a cursor a list with an id prefix checks first
	// (prefixPage).
	prefixWindow int

	closeOnce sync.Once
}

// byteOrderQuery tells whether the database's collation, the one instances.id has,
// orders text by bytes, as C, POSIX and C.UTF-8 do: a linguistic collation sorts
// letters before case ('a' < 'B') and weighs punctuation last ('a.' < 'a-z').
const byteOrderQuery = `SELECT 'B' < 'a' AND 'a-z' < 'a.' AND 'a b' < 'a-' AND 'Z~' < 'a'`

// Open connects to the database at url (a postgres:// URL or keyword/value string),
// applies the embedded migrations and returns the store. Concurrent Opens by several
// processes are safe: migrations run under a Postgres advisory lock.
//
// The pool holds max(4, 4×GOMAXPROCS) connections unless the URL sets pool_max_conns;
// the other pgxpool parameters (pool_min_conns, pool_max_conn_lifetime, …) are honoured
// too. Errors wrap store.ErrUnavailable when the database cannot be reached.
func Open(ctx context.Context, url string) (*Store, error) {
	s, _, err := open(ctx, url)
	return s, err
}

func open(ctx context.Context, url string) (*Store, *driver, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: open: parse url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = int32(max(4, 4*runtime.GOMAXPROCS(0)))
	}
	if err := migrateUp(ctx, cfg.ConnConfig); err != nil {
		return nil, nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, mapErr("open", err)
	}
	d := &driver{pool: pool, notifier: newNotifier(pool), listener: newListener(cfg.ConnConfig.Copy()),
		prefixWindow: prefixWindow}
	if err := pool.QueryRow(ctx, byteOrderQuery).Scan(&d.byteOrder); err != nil {
		pool.Close()
		return nil, nil, mapErr("open", err)
	}
	s, err := sqlstore.Open(ctx, d)
	return s, d, err
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
	return mapErr("migrate", sqlstore.Migrate(ctx, (&driver{}).Migrations(), "pgx5", drv))
}

func (d *driver) Name() string { return "postgres" }

func (d *driver) Migrations() fs.FS {
	sub, _ := fs.Sub(migrations.Postgres, "postgres")
	return sub
}

func (d *driver) SchemaVersion(ctx context.Context) (version int64, dirty bool, err error) {
	err = d.pool.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&version, &dirty)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		err = pgx.ErrNoRows
	}
	return version, dirty, err
}

// Close stops the LISTEN connection and the notifier and closes the pool. It waits for
// connections in use to be released.
func (d *driver) Close() error {
	d.closeOnce.Do(func() {
		d.listener.close()
		d.notifier.close()
		d.pool.Close()
	})
	return nil
}

func (d *driver) Stats(ctx context.Context) (store.Stats, error) {
	return scanner.Stats(d.pool.QueryRow(ctx, sqlstore.StatsQuery))
}

// pruneEffects and pruneTimers delete one batch each ($1 before, $2 batch). Rows are
// picked oldest first through an index on the time they are pruned by (migration
// 000008_data_growth), and with SKIP LOCKED, so pruning never waits on a worker or a
// decision and a batch reads about as many rows as it deletes
// (docs/decisions/0024-data-growth.md).
const (
	// Delivered effects, with their attempts (which have no foreign key: migration
	// 000013); it returns how many effects it deleted.
	pruneEffects = `WITH gone AS (
    DELETE FROM effects WHERE id IN (
        SELECT id FROM effects WHERE status = 'delivered' AND delivered_at < $1
        ORDER BY delivered_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING id
), attempts AS (
    DELETE FROM effect_attempts a USING gone WHERE a.effect_id = gone.id
)
SELECT count(*) FROM gone`
	// Fired and cancelled timers.
	pruneTimers = `DELETE FROM timers WHERE id IN (
    SELECT id FROM timers WHERE status IN ('fired', 'cancelled') AND updated_at < $1
    ORDER BY updated_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)`
)

// pruneInputs deletes a batch of the inputs older than $1 whose instance completed
// before $1 or never came to exist (a rejected first input), after the position ($3
// created_at, $4 id) where the pass's previous batch stopped, and returns the position
// of each row it deleted.
const pruneInputs = `DELETE FROM inputs WHERE id IN (
    SELECT i.id FROM inputs i
    WHERE i.created_at < $1 AND i.created_at >= $3 AND (i.created_at, i.id) > ($3, $4)
      AND NOT EXISTS (SELECT 1 FROM instances w WHERE w.type = i.workflow_type AND w.id = i.workflow_id
          AND NOT (w.status = 'completed' AND w.completed_at < $1))
    ORDER BY i.created_at, i.id LIMIT $2 FOR UPDATE OF i SKIP LOCKED)
RETURNING created_at, id`

// Prune runs the three statements in one round trip; the inputs' position is the
// (created_at, id) of the last input deleted.
func (d *driver) Prune(ctx context.Context, p sqlstore.PruneParams) (int64, sqlstore.PrunePosition, error) {
	var n int64
	to := p.From
	err := d.withTx(ctx, func(tx *batchTx) error {
		b := &pgx.Batch{}
		b.Queue(pruneEffects, p.Before, p.Batch).QueryRow(func(row pgx.Row) error {
			var effects int64
			err := row.Scan(&effects)
			n += effects
			return err
		})
		b.Queue(pruneTimers, p.Before, p.Batch).Exec(func(tag pgconn.CommandTag) error {
			n += tag.RowsAffected()
			return nil
		})
		b.Queue(pruneInputs, p.Before, p.Batch, p.From.Created, p.From.ID).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var at sqlstore.PrunePosition
				if err := rows.Scan(&at.Created, &at.ID); err != nil {
					return err
				}
				to = to.Later(at)
				n++
			}
			return rows.Err()
		})
		return tx.Send(ctx, b)
	})
	return n, to, err
}

// mapErr is the store's error mapping for Open and Migrate, which have no store yet.
func mapErr(op string, err error) error { return sqlstore.OpError(&driver{}, op, err) }

// Sentinel maps pgx.ErrNoRows to store.ErrNotFound, a violation of the unique-key
// index to store.ErrUniqueKeyConflict, and failures that mean the database cannot be
// used to store.ErrUnavailable.
func (d *driver) Sentinel(err error) error {
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.ErrNotFound
	case isUniqueViolation(err, "instances_running_unique_key"):
		return store.ErrUniqueKeyConflict
	case isUnavailable(err):
		return store.ErrUnavailable
	}
	return nil
}

// isUnavailable reports whether err means the database could not be reached or the
// connection broke, as opposed to a problem with the statement.
func isUnavailable(err error) bool {
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
