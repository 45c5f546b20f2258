package migrations

import "embed"

// Postgres holds the migrations of the PostgreSQL store under the directory "postgres".
//
//go:embed postgres/*.sql
var Postgres embed.FS
