// Package migrations embeds the SQL schema migrations of every store backend, one
// directory per backend, in golang-migrate's NNNNNN_name.{up,down}.sql layout.
package migrations

import "embed"

// SQLite holds the migrations of the SQLite store under the directory "sqlite".
//
//go:embed sqlite/*.sql
var SQLite embed.FS

// Postgres is declared in embed_postgres.go by the Postgres store's author.
