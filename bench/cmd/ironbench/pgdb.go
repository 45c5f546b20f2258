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
