// Package sqlite is the embedded default store.Store: one SQLite file (modernc.org/sqlite,
// pure Go) in WAL mode, written through a single connection and read through a pool.
//
// SQLite allows one writer at a time per database file. Rather than letting many
// connections race for the write lock and back off on SQLITE_BUSY, every write goes
// through one connection whose transactions begin with BEGIN IMMEDIATE, so writers queue
// in database/sql (honouring their context) and a transaction never has to upgrade a
// read lock to a write lock halfway. Readers use a separate pool and, thanks to WAL,
// never wait for the writer. Consequently inputs to different instances are serialised
// here; the Postgres store is the one that lets them run in parallel. To make the
// serialised writes cheap, one writer goroutine runs every write waiting for it in one
// transaction, a savepoint each, and commits once (group commit, writer.go), with the
// hot statements prepared once on the writer connection (statements.go).
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/golang-migrate/migrate/v4"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/migrations"
)

// busyTimeoutMillis is how long a connection waits for a lock held by another process
// sharing the file before SQLite reports SQLITE_BUSY (mapped to store.ErrUnavailable).
const busyTimeoutMillis = 5000

// defaultLimit is the page size of lists and claims when the caller passes none.
const defaultLimit = 50

// Store is the SQLite implementation of store.Store. Create it with Open.
type Store struct {
	w      *sql.DB // the single writer connection (BEGIN IMMEDIATE)
	r      *sql.DB // the reader pool
	notify *broker

	stmts    map[string]*sql.Stmt // hotStatements prepared on w
	writes   chan *writeReq       // to the writer goroutine; unbuffered
	quit     chan struct{}        // closed by Close: the writer goroutine stops
	quitOnce sync.Once
	loopDone chan struct{} // closed when the writer goroutine has stopped
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it and its parent directory when missing) the database file at
// path, applies the embedded migrations and returns the store. Errors wrap
// store.ErrUnavailable when the file cannot be opened or is locked by another process.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := Migrate(ctx, path); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	stmts, err := prepareStatements(ctx, w)
	if err != nil {
		return nil, errors.Join(err, w.Close(), r.Close())
	}
	s := &Store{
		w: w, r: r, notify: newBroker(), stmts: stmts,
		writes: make(chan *writeReq), quit: make(chan struct{}), loopDone: make(chan struct{}),
	}
	go s.writeLoop()
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
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
	// The migrate driver owns db from here: m.Close closes it.
	drv, err := migratesqlite.WithInstance(db, &migratesqlite.Config{})
	if err != nil {
		_ = db.Close()
		return mapErr("migrate", err)
	}
	src, err := iofs.New(migrations.SQLite, "sqlite")
	if err != nil {
		_ = drv.Close()
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "sqlite", drv)
	if err != nil {
		_ = drv.Close()
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return mapErr("migrate", err)
	}
	return nil
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

// Ping reports whether the database answers and every embedded migration is applied.
// It returns an error wrapping store.ErrUnavailable otherwise.
func (s *Store) Ping(ctx context.Context) error {
	want, err := latestMigration()
	if err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	var version int64
	var dirty bool
	err = s.r.QueryRowContext(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&version, &dirty)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: ping: %w: no migrations applied", store.ErrUnavailable)
	}
	if err != nil {
		return mapErr("ping", err)
	}
	if dirty || version != want {
		return fmt.Errorf("sqlite: ping: %w: schema at version %d (dirty %t), want %d",
			store.ErrUnavailable, version, dirty, want)
	}
	return nil
}

// latestMigration returns the highest version among the embedded migrations.
func latestMigration() (int64, error) {
	entries, err := fs.ReadDir(migrations.SQLite, "sqlite")
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

// Close closes every Listen channel, waits for the write group in progress (if any) to
// finish, stops the writer goroutine and closes both connection pools. Writes that had
// not reached the writer fail with store.ErrUnavailable.
func (s *Store) Close() error {
	s.notify.close()
	s.stopWriter()
	return errors.Join(closeStatements(s.stmts), s.w.Close(), s.r.Close())
}

// decideError carries an error returned by a DecideFunc through the transaction so the
// store can hand it back unchanged.
type decideError struct{ err error }

func (e decideError) Error() string { return e.err.Error() }
func (e decideError) Unwrap() error { return e.err }

// mapErr turns an error at the edge of a method into what callers branch on: a
// DecideFunc's error unchanged, the store sentinels wrapped with the operation, and
// driver failures that mean the database cannot be used as store.ErrUnavailable.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var de decideError
	if errors.As(err, &de) {
		return de.err
	}
	if isUnavailable(err) {
		return fmt.Errorf("sqlite: %s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

func isUnavailable(err error) bool {
	if errors.Is(err, store.ErrUnavailable) {
		return false // already wrapped
	}
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	if strings.Contains(err.Error(), "sql: database is closed") {
		return true
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_NOTADB,
			sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL:
			return true
		}
	}
	return false
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY constraint failure.
func isUniqueViolation(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
