// Package enginetest gives tests a real store on every backend and a settable clock:
// the effect outbox, the timer worker and the end-to-end tests run the same cases on
// SQLite (a temporary file) and PostgreSQL (a fresh database of their own).
package enginetest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
	"github.com/ironflow/ironflow/internal/store/sqlite"
)

// Backend opens fresh stores of one kind.
type Backend struct {
	// Name is "sqlite" or "postgres", for subtest names.
	Name string
	// NewDatabase gives the test a database of its own with no rows (on PostgreSQL a
	// migrated one from pgtest's pool) and returns how to open it; it skips the test
	// (fails under CI) when the backend is unreachable.
	NewDatabase func(t testing.TB) Database
}

// Database is one fresh database. Open may be called more than once: every store it
// returns shares the database, like server processes do (on SQLite, commit signals are
// only seen by the store that committed; others poll).
type Database struct {
	URL  string
	Open func(t testing.TB) store.Store
}

// Backends returns SQLite and PostgreSQL.
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", NewDatabase: newSQLite},
		{Name: "postgres", NewDatabase: newPostgres},
	}
}

// ForEachBackend runs f as a parallel subtest per backend.
func ForEachBackend(t *testing.T, f func(t *testing.T, b Backend)) {
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f(t, b)
		})
	}
}

func newSQLite(t testing.TB) Database {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ironflow.db")
	return Database{URL: "sqlite://" + path, Open: func(t testing.TB) store.Store {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("enginetest: open sqlite: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}}
}

func newPostgres(t testing.TB) Database {
	t.Helper()
	url := pgtest.MigratedDatabaseURL(t, postgres.Migrate)
	return Database{URL: url, Open: func(t testing.TB) store.Store {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatalf("enginetest: open postgres: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}}
}

// Clock is a settable clock for NowFunc fields. The zero value starts at the Unix
// epoch; use NewClock for a realistic start.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock set to start.
func NewClock(start time.Time) *Clock { return &Clock{now: start.UTC().Truncate(time.Microsecond)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t.UTC().Truncate(time.Microsecond)
}
