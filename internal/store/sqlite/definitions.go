package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

const definitionCols = `type, version, body, hash, created_at`

const (
	sqlLatestDefinition  = `SELECT ` + definitionCols + ` FROM definitions WHERE type = ? ORDER BY version DESC LIMIT 1`
	sqlDefinitionVersion = `SELECT ` + definitionCols + ` FROM definitions WHERE type = ? AND version = ?`
)

func scanDefinition(sc scanner) (store.Definition, error) {
	var d store.Definition
	var body string
	var created int64
	if err := sc.Scan(&d.Type, &d.Version, &body, &d.Hash, &created); err != nil {
		return store.Definition{}, err
	}
	d.Body = json.RawMessage(body)
	d.CreatedAt = fromMicros(created)
	return d, nil
}

// PutDefinition stores body as the next version of typ unless the latest version has the
// same hash, in which case it returns that version with created false.
func (s *Store) PutDefinition(ctx context.Context, typ string, body json.RawMessage, hash string, now time.Time) (store.Definition, bool, error) {
	text, err := jsonText(body)
	if err != nil {
		return store.Definition{}, false, fmt.Errorf("sqlite: put definition: %w", err)
	}
	if !text.Valid {
		return store.Definition{}, false, errors.New("sqlite: put definition: empty body")
	}
	var def store.Definition
	var created bool
	err = s.inTx(ctx, func(ctx context.Context, tx *wtx) error {
		latest, err := scanDefinition(tx.QueryRowContext(ctx, sqlLatestDefinition, typ))
		switch {
		case err == nil && latest.Hash == hash:
			def = latest
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		def = store.Definition{
			Type:      typ,
			Version:   latest.Version + 1,
			Body:      json.RawMessage(text.String),
			Hash:      hash,
			CreatedAt: nowOr(now),
		}
		created = true
		_, err = tx.ExecContext(ctx, `INSERT INTO definitions (`+definitionCols+`) VALUES (?, ?, ?, ?, ?)`,
			def.Type, def.Version, text.String, def.Hash, toMicros(def.CreatedAt))
		return err
	})
	if err != nil {
		return store.Definition{}, false, mapErr("put definition", err)
	}
	return def, created, nil
}

// GetDefinition returns version of typ, or the latest when version is 0;
// store.ErrNotFound when absent.
func (s *Store) GetDefinition(ctx context.Context, typ string, version int) (store.Definition, error) {
	d, err := getDefinition(ctx, s.r, typ, version)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Definition{}, fmt.Errorf("sqlite: get definition %s v%d: %w", typ, version, store.ErrNotFound)
	}
	if err != nil {
		return store.Definition{}, mapErr("get definition", err)
	}
	return d, nil
}

// getDefinition reads version of typ (0: the latest) with q; sql.ErrNoRows when absent.
func getDefinition(ctx context.Context, q querier, typ string, version int) (store.Definition, error) {
	if version == 0 {
		return scanDefinition(q.QueryRowContext(ctx, sqlLatestDefinition, typ))
	}
	return scanDefinition(q.QueryRowContext(ctx, sqlDefinitionVersion, typ, version))
}

// ListDefinitions returns the latest version of up to limit types named after
// afterType, ordered by type name.
func (s *Store) ListDefinitions(ctx context.Context, afterType string, limit int) ([]store.Definition, error) {
	return s.queryDefinitions(ctx, "list definitions",
		`SELECT `+definitionCols+` FROM definitions d
		 WHERE type > ? AND version = (SELECT MAX(version) FROM definitions WHERE type = d.type)
		 ORDER BY type LIMIT ?`, afterType, limit)
}

// ListDefinitionVersions returns up to limit versions of typ after afterVersion,
// oldest first; an empty list when there are none.
func (s *Store) ListDefinitionVersions(ctx context.Context, typ string, afterVersion, limit int) ([]store.Definition, error) {
	return s.queryDefinitions(ctx, "list definition versions",
		`SELECT `+definitionCols+` FROM definitions WHERE type = ? AND version > ? ORDER BY version LIMIT ?`,
		typ, afterVersion, limit)
}

func (s *Store) queryDefinitions(ctx context.Context, op, query string, args ...any) ([]store.Definition, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr(op, err)
	}
	defer rows.Close()
	defs := []store.Definition{}
	for rows.Next() {
		d, err := scanDefinition(rows)
		if err != nil {
			return nil, mapErr(op, err)
		}
		defs = append(defs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(op, err)
	}
	return defs, nil
}
