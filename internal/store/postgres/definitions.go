package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/store"
)

const definitionColumns = `type, version, body, hash, created_at`

func scanDefinition(row pgx.Row) (store.Definition, error) {
	var d store.Definition
	var body []byte
	if err := row.Scan(&d.Type, &d.Version, &body, &d.Hash, &d.CreatedAt); err != nil {
		return store.Definition{}, err
	}
	d.Body = rawJSON(body)
	d.CreatedAt = d.CreatedAt.UTC()
	return d, nil
}

// PutDefinition stores body as the next version of typ unless the latest version has
// the same hash; created reports whether a new version was made. Concurrent PUTs of one
// type are serialised by a transaction-scoped advisory lock on the type.
func (s *Store) PutDefinition(ctx context.Context, typ string, body json.RawMessage, hash string, now time.Time) (store.Definition, bool, error) {
	bodyParam, err := jsonParam(body)
	if err != nil {
		return store.Definition{}, false, fmt.Errorf("postgres: put definition: %w", err)
	}
	if bodyParam == nil {
		return store.Definition{}, false, errors.New("postgres: put definition: empty body")
	}
	var def store.Definition
	var created bool
	err = s.withTx(ctx, func(tx *batchTx) error {
		var latest store.Definition
		found := true
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended('ironflow.definition:' || $1, 0))`, typ)
		b.Queue(`SELECT `+definitionColumns+` FROM definitions WHERE type = $1 ORDER BY version DESC LIMIT 1`, typ).
			QueryRow(func(row pgx.Row) error {
				var err error
				latest, err = scanDefinition(row)
				if errors.Is(err, pgx.ErrNoRows) {
					found = false
					return nil
				}
				return err
			})
		if err := tx.Send(ctx, b); err != nil {
			return err
		}
		if found && latest.Hash == hash {
			def = latest
			return nil
		}
		var err error
		def, err = scanDefinition(tx.QueryRow(ctx, `
INSERT INTO definitions (type, version, body, hash, created_at) VALUES ($1, $2, $3, $4, $5)
RETURNING `+definitionColumns, typ, latest.Version+1, bodyParam, hash, nowOr(now)))
		created = true
		return err
	})
	if err != nil {
		return store.Definition{}, false, mapErr("put definition", err)
	}
	return def, created, nil
}

// GetDefinition returns version of typ, or the latest when version is 0.
// ErrNotFound when absent.
func (s *Store) GetDefinition(ctx context.Context, typ string, version int) (store.Definition, error) {
	var row pgx.Row
	if version == 0 {
		row = s.pool.QueryRow(ctx, `SELECT `+definitionColumns+` FROM definitions
WHERE type = $1 ORDER BY version DESC LIMIT 1`, typ)
	} else {
		row = s.pool.QueryRow(ctx, `SELECT `+definitionColumns+` FROM definitions
WHERE type = $1 AND version = $2`, typ, version)
	}
	d, err := scanDefinition(row)
	if err != nil {
		return store.Definition{}, mapErr("get definition", err)
	}
	return d, nil
}

// ListDefinitions returns the latest version of up to limit types named after
// afterType, by type name.
func (s *Store) ListDefinitions(ctx context.Context, afterType string, limit int) ([]store.Definition, error) {
	return s.listDefinitions(ctx, "list definitions", `SELECT DISTINCT ON (type) `+definitionColumns+`
FROM definitions WHERE type > $1 ORDER BY type, version DESC LIMIT $2`, afterType, limit)
}

// ListDefinitionVersions returns up to limit versions of typ after afterVersion, oldest
// first (empty when there are none).
func (s *Store) ListDefinitionVersions(ctx context.Context, typ string, afterVersion, limit int) ([]store.Definition, error) {
	return s.listDefinitions(ctx, "list definition versions", `SELECT `+definitionColumns+`
FROM definitions WHERE type = $1 AND version > $2 ORDER BY version LIMIT $3`, typ, afterVersion, limit)
}

func (s *Store) listDefinitions(ctx context.Context, op, query string, args ...any) ([]store.Definition, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, mapErr(op, err)
	}
	defs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Definition, error) {
		return scanDefinition(row)
	})
	if err != nil {
		return nil, mapErr(op, err)
	}
	if defs == nil {
		defs = []store.Definition{}
	}
	return defs, nil
}
