package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
)

// databases creates and drops the fresh PostgreSQL databases each system runs in.
type databases struct {
	admin   string // URL of a database to run CREATE/DROP DATABASE from
	created []string
}

// fresh creates an empty database named after purpose and returns its URL.
func (d *databases) fresh(ctx context.Context, purpose string) (string, error) {
	name := fmt.Sprintf("ironbench_%s_%d", purpose, os.Getpid())
	conn, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		return "", fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
		return "", fmt.Errorf("drop database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	d.created = append(d.created, name)
	u, err := url.Parse(d.admin)
	if err != nil {
		return "", fmt.Errorf("parse database url: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// dropAll drops every database fresh created.
func (d *databases) dropAll(ctx context.Context) {
	conn, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	for _, name := range d.created {
		_, _ = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
	}
	d.created = nil
}

// serverVersion returns the server's version string ("15.19 (Debian …)").
func (d *databases) serverVersion(ctx context.Context) string {
	conn, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		return "unknown"
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, `SHOW server_version`).Scan(&v); err != nil {
		return "unknown"
	}
	return strings.TrimSpace(v)
}

// settle vacuums and analyzes the PostgreSQL databases of the input section before each
// of its measurements but the first, then checkpoints the cluster, as pgbench vacuums
// before a run. Without it, autovacuum's passes over the tables the previous windows
// filled fell into the next windows: their CPU was counted as the database's CPU per
// input, and their I/O set the tail of the open-loop latency (p99 89.5 ms against 16.8
// ms settled, at 4,731 inputs/s). A failure is logged and the measurement runs anyway.
func (b *bench) settle(ctx context.Context, backend string, urls ...string) {
	if backend != "postgres" {
		return
	}
	for i, u := range urls {
		stmts := []string{`VACUUM (ANALYZE)`}
		if i == len(urls)-1 {
			stmts = append(stmts, `CHECKPOINT`) // the whole cluster's, once
		}
		if err := execOn(ctx, u, stmts...); err != nil {
			b.logf("input %s: settle: %v (measuring all the same)", backend, err)
			return
		}
	}
}

// quiet drops the PostgreSQL databases of the runs before and checkpoints the cluster,
// before each turn of a tail comparison. Without it the first turn after a heavy
// comparison paid for it: the checkpoint of the WAL that comparison wrote, with the
// writing back of its dirty pages, fell into that turn, and on a cluster that runs
// autovacuum so would its passes over the databases the comparison filled. That
// turn's p99 was 24.8 ms against 4.6-5.3 ms in the three rounds after it (on a cluster
// with autovacuum off), and it always falls on the system that goes first in the first
// round. A failure is logged and the turn runs anyway.
func (b *bench) quiet(ctx context.Context, backend string) {
	if backend != "postgres" {
		return
	}
	b.dbs.dropAll(ctx)
	if err := execOn(ctx, b.dbs.admin, `CHECKPOINT`); err != nil {
		b.logf("tails %s: quiet: %v (running the turn all the same)", backend, err)
	}
}

// execOn runs stmts in order on a connection of its own to the database at url,
// stopping at the first error.
func execOn(ctx context.Context, url string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return err
		}
	}
	return nil
}
