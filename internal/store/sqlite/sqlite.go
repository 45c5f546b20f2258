// Package sqlite is the driver of the embedded default SQL store (store/sqlstore): one
// SQLite file (modernc.org/sqlite, pure Go) in WAL mode, written through a single
// connection and read through a pool. It supplies SQL and transaction shape only.
//
// SQLite allows one writer at a time per database file. Rather than letting many
// connections race for the write lock and back off on SQLITE_BUSY, every write goes
// through one connection whose transactions begin with BEGIN IMMEDIATE, and one writer
// goroutine runs every write waiting for it in one transaction, a savepoint each, and
// commits once (group commit, writer.go), with the hot statements prepared once
// (statements.go). Readers use a separate pool and, thanks to WAL, never wait for the
// writer. A decision is made outside the writer (protocol.go): its instance is locked
// in process, read on the reader pool and decided, and only its rows go to the writer,
// which checks that what was read is unchanged; so a slow decision holds up no other
// write, and inputs to different instances wait for each other only while their rows
// are written.
package sqlite

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/sqlstore"
	"github.com/ironflow/ironflow/migrations"
)

// busyTimeoutMillis is how long a connection waits for a lock held by another process
// sharing the file before SQLite reports SQLITE_BUSY (mapped to store.ErrUnavailable).
const busyTimeoutMillis = 5000

// Store is the SQLite store: the SQL store over this package's driver.
type Store = sqlstore.Store

// driver is the sqlstore.Driver of SQLite.
type driver struct {
	w     *sql.DB // the single writer connection (BEGIN IMMEDIATE)
	r     *sql.DB // the reader pool
	read  reader  // r with the decision path's reads prepared
	locks sqlstore.KeyLocks
	defs  sync.Map // store.Definition by type and version (sqlstore.Key{type, version}): immutable rows

	stmts     map[string]*sql.Stmt // hotStatements prepared on w
	writes    chan *writeReq       // to the writer goroutine; unbuffered
	quit      chan struct{}        // closed by Close: the writer goroutine stops
	quitOnce  sync.Once
	loopDone  chan struct{} // closed when the writer goroutine has stopped
	closeOnce sync.Once
}

// Open opens (creating it and its parent directory when missing) the database file at
// path, applies the embedded migrations and returns the store. Errors wrap
// store.ErrUnavailable when the file cannot be opened or is locked by another process.
func Open(ctx context.Context, path string) (*Store, error) {
	s, _, err := open(ctx, path)
	return s, err
}

func open(ctx context.Context, path string) (*Store, *driver, error) {
	if err := Migrate(ctx, path); err != nil {
		return nil, nil, err
	}
	w, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		_ = w.Close()
		return nil, nil, fmt.Errorf("sqlite: open: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	stmts, err := prepareStatements(ctx, w, hotStatements)
	if err != nil {
		return nil, nil, errors.Join(err, w.Close(), r.Close())
	}
	rstmts, err := prepareStatements(ctx, r, readStatements)
	if err != nil {
		return nil, nil, errors.Join(err, closeStatements(stmts), w.Close(), r.Close())
	}
	d := &driver{
		w: w, r: r, read: reader{db: r, stmts: rstmts}, stmts: stmts,
		writes: make(chan *writeReq), quit: make(chan struct{}), loopDone: make(chan struct{}),
	}
	go d.writeLoop()
	s, err := sqlstore.Open(ctx, d)
	return s, d, err
}

// Migrate applies the embedded SQLite migrations to the database file at path, creating
// the file and its parent directory when missing. It is what `server migrate` runs.
// A database left dirty by a failed migration is reported, not repaired.
func Migrate(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("sqlite: migrate: create directory: %w", err)
		}
	}
	db, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	db.SetMaxOpenConns(1)
	// The migrate driver owns db from here: closing it closes db.
	drv, err := migratesqlite.WithInstance(db, &migratesqlite.Config{})
	if err != nil {
		_ = db.Close()
		return mapErr("migrate", err)
	}
	return mapErr("migrate", sqlstore.Migrate(ctx, (&driver{}).Migrations(), "sqlite", drv))
}

// dsn builds the driver name of one pool. Both pools wait busyTimeoutMillis for locks
// and enforce foreign keys. The writer also switches the file to WAL (persistent, so
// readers inherit it), begins every transaction IMMEDIATE, and uses synchronous=NORMAL:
// in WAL mode that syncs at checkpoints rather than at every commit, so a power loss may
// drop the last few commits but never corrupts the database, and commits stay cheap
// enough for one writer to carry the whole engine. The writer keeps temporary storage in
// memory: each request of a write group runs in a savepoint, and SQLite copies every
// page a savepoint first touches into a statement journal, which otherwise spills to a
// temporary file (a write system call per page) past 64 KiB.
func dsn(path string, writer bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.Itoa(busyTimeoutMillis))
	q.Set("_foreign_keys", "1")
	if writer {
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "NORMAL")
		q.Set("_txlock", "immediate")
		q.Add("_pragma", "temp_store(memory)")
	} else {
		q.Set("_query_only", "1")
	}
	return path + "?" + q.Encode()
}

// SchemaVersion reads golang-migrate's bookkeeping table.
func (d *driver) SchemaVersion(ctx context.Context) (version int64, dirty bool, err error) {
	err = d.r.QueryRowContext(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&version, &dirty)
	return version, dirty, err
}

// Migrations are the "sqlite" directory of the embedded migrations.
func (d *driver) Migrations() fs.FS {
	sub, _ := fs.Sub(migrations.SQLite, "sqlite")
	return sub
}

// Notify does nothing: another process sharing the file is not signalled (its workers
// poll), and this process's listeners are woken by the store.
func (d *driver) Notify(sqlstore.Topics) {}

// Listen has nothing to start: only commits of this process wake its listeners.
func (d *driver) Listen(context.Context, func(...store.Topic)) error { return nil }

// Close waits for the write group in progress (if any) to finish, stops the writer
// goroutine and closes both connection pools. Writes that had not reached the writer
// fail with store.ErrUnavailable.
func (d *driver) Close() error {
	var err error
	d.closeOnce.Do(func() {
		d.stopWriter()
		err = errors.Join(closeStatements(d.stmts), closeStatements(d.read.stmts), d.w.Close(), d.r.Close())
	})
	return err
}

func (d *driver) Name() string { return "sqlite" }

// mapErr is the store's error mapping for Open and Migrate, which have no store yet.
func mapErr(op string, err error) error { return sqlstore.OpError(&driver{}, op, err) }

// Sentinel maps sql.ErrNoRows to store.ErrNotFound, driver failures that mean the
// database cannot be used to store.ErrUnavailable, and a violation of the unique-key or
// idempotency index to store.ErrUniqueKeyConflict or store.ErrIdempotencyMismatch.
func (d *driver) Sentinel(err error) error {
	var se *msqlite.Error
	msg := err.Error()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case errors.Is(err, sql.ErrConnDone), errors.Is(err, sqldriver.ErrBadConn),
		strings.Contains(msg, "sql: database is closed"), strings.Contains(msg, "sql: statement is closed"):
		return store.ErrUnavailable
	case !errors.As(err, &se):
		return nil
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_NOTADB,
		sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL:
		return store.ErrUnavailable
	}
	if isUniqueViolation(err) && strings.Contains(msg, "idempotency_key") {
		return store.ErrIdempotencyMismatch
	}
	if isUniqueViolation(err) && strings.Contains(msg, "unique_key") {
		return store.ErrUniqueKeyConflict
	}
	return nil
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY constraint failure.
func isUniqueViolation(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
