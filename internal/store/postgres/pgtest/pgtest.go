// Package pgtest gives tests a PostgreSQL database of their own on the server named by
// IRONFLOW_TEST_DATABASE_URL: a migrated one with empty tables from a pool shared by
// every test process (MigratedDatabaseURL), or a brand-new empty one for tests of the
// migrations themselves (NewDatabaseURL).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultAdminURL is the server tests use when IRONFLOW_TEST_DATABASE_URL is not set.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL returns IRONFLOW_TEST_DATABASE_URL, or DefaultAdminURL when it is not set:
// a database on the test server that may create and drop databases.
func AdminURL() string {
	if u := os.Getenv("IRONFLOW_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultAdminURL
}

// NewDatabaseURL creates a new empty database ironflow_test_<random> on the test server
// and returns its URL; the database is dropped (WITH (FORCE), so leftover connections do
// not block it) when the test and its subtests have finished. Register what connects to
// it after calling NewDatabaseURL, so it is closed before the drop.
//
// Creating and dropping a database costs far more than a test of the store; use it only
// where the test needs a database no migration has touched (tests of the migrations)
// or one it leaves broken. Everything else takes MigratedDatabaseURL.
//
// When the server cannot be reached the test is skipped, or fails when the environment
// variable CI is set.
func NewDatabaseURL(t testing.TB) string {
	t.Helper()
	admin := AdminURL()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := connectAdmin(ctx, t, admin)
	defer func() { _ = conn.Close(context.Background()) }()

	name := "ironflow_test_" + randomSuffix(t)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer func() { _ = conn.Close(context.Background()) }()
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// connectAdmin connects to the admin database, skipping the test (failing it under CI)
// when the server cannot be reached.
func connectAdmin(ctx context.Context, t testing.TB, admin string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pgtest: PostgreSQL unreachable (set IRONFLOW_TEST_DATABASE_URL): %v", err)
		}
		t.Skipf("pgtest: PostgreSQL unreachable (set IRONFLOW_TEST_DATABASE_URL): %v", err)
	}
	return conn
}

func randomSuffix(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("pgtest: random: %v", err)
	}
	return hex.EncodeToString(b)
}

// withDatabase returns the connection string admin pointing at database name instead.
func withDatabase(admin, name string) (string, error) {
	if strings.HasPrefix(admin, "postgres://") || strings.HasPrefix(admin, "postgresql://") {
		u, err := url.Parse(admin)
		if err != nil {
			return "", fmt.Errorf("parse IRONFLOW_TEST_DATABASE_URL: %w", err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// A keyword/value string: a later dbname overrides an earlier one.
	return admin + " dbname=" + name, nil
}
