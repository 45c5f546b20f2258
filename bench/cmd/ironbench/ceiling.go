package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // the driver ironflow's SQLite store uses
)

// The ceiling is the least SQL one accepted input needs: lock or create the instance
// row, insert one event and one outbox row, update the row, commit. Nothing else — no
// HTTP, no JSON Schema, no CEL, no input record, no response body. ironflow's figures
// are reported as a fraction of it.

const ceilingSchemaPG = `
CREATE TABLE instances (type text NOT NULL, id text NOT NULL, version bigint NOT NULL,
    state_name text NOT NULL, state_data jsonb NOT NULL, updated_at timestamptz NOT NULL,
    PRIMARY KEY (type, id));
CREATE TABLE events (type text NOT NULL, id text NOT NULL, seq bigint NOT NULL,
    name text NOT NULL, data jsonb NOT NULL, recorded_at timestamptz NOT NULL,
    PRIMARY KEY (type, id, seq));
CREATE TABLE outbox (id bigserial PRIMARY KEY, type text NOT NULL, wid text NOT NULL,
    name text NOT NULL, payload jsonb NOT NULL, status text NOT NULL, next_attempt_at timestamptz NOT NULL);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending';`

// pgCeiling issues one decision in two round trips: BEGIN with the lock-or-create
// upsert, then the event, the outbox row, the update and COMMIT pipelined.
type pgCeiling struct{ pool *pgxpool.Pool }

func newPGCeiling(ctx context.Context, dbURL string, conns int) (*pgCeiling, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(conns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, ceilingSchemaPG); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ceiling schema: %w", err)
	}
	return &pgCeiling{pool: pool}, nil
}

func (c *pgCeiling) close() { c.pool.Close() }

func (c *pgCeiling) decide(ctx context.Context, id string) error {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var version int64
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`INSERT INTO instances (type, id, version, state_name, state_data, updated_at)
VALUES ('bench', $1, 0, 'new', '{}', now())
ON CONFLICT (type, id) DO UPDATE SET version = instances.version RETURNING version`, id).
		QueryRow(func(r pgx.Row) error { return r.Scan(&version) })
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
		return err
	}
	b = &pgx.Batch{}
	b.Queue(`INSERT INTO events (type, id, seq, name, data, recorded_at) VALUES ('bench', $1, $2, 'Started', $3, now())`,
		id, version+1, `{"n": 1}`)
	b.Queue(`INSERT INTO outbox (type, wid, name, payload, status, next_attempt_at) VALUES ('bench', $1, 'call', $2, 'pending', now())`,
		id, `{"n": 1}`)
	b.Queue(`UPDATE instances SET version = $2, state_name = 'waiting', state_data = $3, updated_at = now()
WHERE type = 'bench' AND id = $1`, id, version+1, `{"n": 1}`)
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
		return err
	}
	return nil
}

const ceilingSchemaSQLite = `
CREATE TABLE instances (type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    state_name TEXT NOT NULL, state_data TEXT NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (type, id));
CREATE TABLE events (type TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
    name TEXT NOT NULL, data TEXT NOT NULL, recorded_at INTEGER NOT NULL,
    PRIMARY KEY (type, id, seq));
CREATE TABLE outbox (id INTEGER PRIMARY KEY, type TEXT NOT NULL, wid TEXT NOT NULL,
    name TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL, next_attempt_at INTEGER NOT NULL);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending';`

// sqliteDSN mirrors the pragmas of ironflow's SQLite store writer: WAL, synchronous
// NORMAL, busy timeout 5 s, foreign keys, BEGIN IMMEDIATE.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.Itoa(5000))
	q.Set("_foreign_keys", "1")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode()
}

// sqliteCeiling writes through one connection with prepared statements, as ironflow's
// store writes through one writer connection.
type sqliteCeiling struct {
	db                         *sql.DB
	lock, event, outbox, write *sql.Stmt
}

func newSQLiteCeiling(ctx context.Context, dir string) (*sqliteCeiling, error) {
	db, err := sql.Open("sqlite", sqliteDSN(filepath.Join(dir, "ceiling.db")))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if _, err := db.ExecContext(ctx, ceilingSchemaSQLite); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ceiling schema: %w", err)
	}
	c := &sqliteCeiling{db: db}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&c.lock, `INSERT INTO instances (type, id, version, state_name, state_data, updated_at)
VALUES ('bench', ?, 0, 'new', '{}', ?)
ON CONFLICT (type, id) DO UPDATE SET version = instances.version RETURNING version`},
		{&c.event, `INSERT INTO events (type, id, seq, name, data, recorded_at) VALUES ('bench', ?, ?, 'Started', ?, ?)`},
		{&c.outbox, `INSERT INTO outbox (type, wid, name, payload, status, next_attempt_at) VALUES ('bench', ?, 'call', ?, 'pending', ?)`},
		{&c.write, `UPDATE instances SET version = ?, state_name = 'waiting', state_data = ?, updated_at = ? WHERE type = 'bench' AND id = ?`},
	} {
		if *p.stmt, err = db.PrepareContext(ctx, p.sql); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *sqliteCeiling) close() { _ = c.db.Close() }

func (c *sqliteCeiling) decide(ctx context.Context, id string) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	now := time.Now().UnixMicro()
	var version int64
	if err := tx.StmtContext(ctx, c.lock).QueryRowContext(ctx, id, now).Scan(&version); err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, c.event).ExecContext(ctx, id, version+1, `{"n":1}`, now); err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, c.outbox).ExecContext(ctx, id, `{"n":1}`, now); err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, c.write).ExecContext(ctx, version+1, `{"n":1}`, now, id); err != nil {
		return err
	}
	return tx.Commit()
}
