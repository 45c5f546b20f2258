package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ironflow/ironflow/internal/store/sqlstore"
)

// Prepared statements on the writer.
//
// modernc's driver compiles every statement text it is given, and on the write path
// that parsing cost about a fifth of the CPU. The statements every input, completion
// and claim runs are therefore prepared once on the writer connection at Open and
// reused through tx.StmtContext, which binds the already-prepared statement to the
// transaction's connection (re-preparing by itself should the connection ever be
// replaced). They are prepared at Open rather than on first use because the writer
// has a single connection: preparing on the *sql.DB while a transaction holds that
// connection would wait for it forever.

// Savepoint statements of the write group (see writer.go). One name suffices: each
// request's savepoint is released before the next one is opened.
const (
	sqlSavepoint  = `SAVEPOINT request`
	sqlRollbackTo = `ROLLBACK TO request`
	sqlRelease    = `RELEASE request`
)

// hotStatements are the statement texts prepared on the writer: the savepoints, the
// check of what a decision read (protocol.go), the writes of its rows and the claims.
// Any other text still works, compiled on each call.
var hotStatements = []string{
	sqlSavepoint, sqlRollbackTo, sqlRelease,
	sqlInstanceVersion, sqlInstanceVersions, sqlHolders(sqlstore.TableEffects), sqlHolders(sqlstore.TableTimers),
	sqlUniqueKeyHolder, sqlInsertEffect, cancelTimerKeysSQL(1), sqlInsertTimer,
	sqlClaimEffects, sqlClaimTimers,
}

// readStatements are the statement texts prepared on the reader pool: what a decision
// reads (protocol.go).
var readStatements = []string{
	sqlInputByKey, sqlInstanceAndLatest, sqlInstancesOf, sqlLatestVersion, sqlDefinitionVersion,
	sqlHolders(sqlstore.TableEffects), sqlHolders(sqlstore.TableTimers),
}

func init() {
	for _, w := range rowWrites {
		hotStatements = append(hotStatements, w.texts...)
	}
}

// prepareStatements prepares texts on db.
func prepareStatements(ctx context.Context, db *sql.DB, texts []string) (map[string]*sql.Stmt, error) {
	stmts := make(map[string]*sql.Stmt, len(texts))
	for _, q := range texts {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			return nil, errors.Join(mapErr("prepare", fmt.Errorf("%.40q: %w", q, err)), closeStatements(stmts))
		}
		stmts[q] = st
	}
	return stmts, nil
}

func closeStatements(stmts map[string]*sql.Stmt) error {
	var errs []error
	for _, st := range stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// wtx is the write group's transaction as the write helpers see it: a querier that
// runs the prepared form of a statement when there is one.
type wtx struct {
	tx       *sql.Tx
	prepared map[string]*sql.Stmt // the driver's, read-only after Open
	bound    map[string]*sql.Stmt // prepared statements bound to tx, reused by the group
}

// querier is the reader or the writer's *wtx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reader is the reader pool as a querier that runs the prepared form of a statement
// when there is one (a statement prepared on a *sql.DB serves every connection).
type reader struct {
	db    *sql.DB
	stmts map[string]*sql.Stmt
}

func (r reader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.stmts[query]; st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.db.QueryContext(ctx, query, args...)
}

func (r reader) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := r.stmts[query]; st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.db.QueryRowContext(ctx, query, args...)
}

func (d *driver) newWtx(tx *sql.Tx) *wtx {
	return &wtx{tx: tx, prepared: d.stmts, bound: make(map[string]*sql.Stmt)}
}

// stmt returns the prepared statement for query bound to the transaction, or nil.
func (t *wtx) stmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := t.bound[query]; ok {
		return st
	}
	p, ok := t.prepared[query]
	if !ok {
		return nil
	}
	st := t.tx.StmtContext(ctx, p)
	t.bound[query] = st
	return st
}

func (t *wtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *wtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t *wtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}
