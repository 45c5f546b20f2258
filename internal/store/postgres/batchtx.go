package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// batchTx is one transaction on one pooled connection that spends no round trip of its
// own on BEGIN or COMMIT: BEGIN travels with the first statements sent, COMMIT with the
// last. Statements whose results nobody reads (a decision's writes) are held back with
// Hold and travel with whatever is sent next, at the latest with the COMMIT. A decision
// therefore costs two round trips: BEGIN and the lock batch, then the writes and COMMIT
// (docs/decisions/0007-postgres-round-trips.md).
//
// pgx sends a batch as one pipeline with a single Sync, and Postgres skips everything
// after a failed statement up to that Sync: a write that fails never reaches the COMMIT
// behind it, and the transaction is left aborted for end to roll back. A connection
// that is still not idle when end releases it (a rollback that failed, a batch cut off
// by a cancelled context) is destroyed by pgxpool, never handed out again.
type batchTx struct {
	conn  *pgxpool.Conn
	begun bool // BEGIN has been sent
	held  []*pgx.QueuedQuery
}

// withTx runs fn in one batchTx on a pooled connection and commits when it returns
// nil. On any error the transaction is rolled back, even when ctx has ended, so the
// connection goes back clean.
func (d *driver) withTx(ctx context.Context, fn func(tx *batchTx) error) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	tx := &batchTx{conn: conn}
	defer tx.end(ctx)
	if err := fn(tx); err != nil {
		return err
	}
	return tx.commit(ctx)
}

// Hold queues b's statements to be sent, in order, before whatever is sent next on tx,
// at the latest with the COMMIT. Their results are not read (callbacks queued on b are
// dropped), so an error surfaces from that later send; the transaction is then aborted.
func (tx *batchTx) Hold(b *pgx.Batch) {
	for _, q := range b.QueuedQueries {
		q.Fn = nil
		tx.held = append(tx.held, q)
	}
}

// Send sends the held statements and then b in one round trip (with BEGIN first, the
// first time) and runs b's callbacks. It returns the first error, of a statement or of
// a callback.
func (tx *batchTx) Send(ctx context.Context, b *pgx.Batch) error {
	return tx.send(ctx, b.QueuedQueries, false)
}

// Exec runs one statement, in the round trip of the held statements.
func (tx *batchTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	var ct pgconn.CommandTag
	b := &pgx.Batch{}
	b.Queue(sql, args...).Exec(func(c pgconn.CommandTag) error {
		ct = c
		return nil
	})
	err := tx.Send(ctx, b)
	return ct, err
}

// QueryRow returns a row whose Scan runs the query, in the round trip of the held
// statements. Scan returns pgx.ErrNoRows when the query returns no row.
func (tx *batchTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return batchRow{tx: tx, ctx: ctx, sql: sql, args: args}
}

type batchRow struct {
	tx   *batchTx
	ctx  context.Context
	sql  string
	args []any
}

func (r batchRow) Scan(dest ...any) error {
	b := &pgx.Batch{}
	b.Queue(r.sql, r.args...).QueryRow(func(row pgx.Row) error { return row.Scan(dest...) })
	return r.tx.Send(r.ctx, b)
}

// commit sends the held statements and COMMIT in one round trip. It returns
// pgx.ErrTxCommitRollback when Postgres rolled back instead (the transaction had
// failed). A transaction that sent and held nothing has nothing to commit.
func (tx *batchTx) commit(ctx context.Context) error {
	if !tx.begun && len(tx.held) == 0 {
		return nil
	}
	return tx.send(ctx, nil, true)
}

func (tx *batchTx) send(ctx context.Context, qs []*pgx.QueuedQuery, commit bool) error {
	b := &pgx.Batch{}
	if !tx.begun {
		b.Queue("BEGIN")
		tx.begun = true
	}
	b.QueuedQueries = append(b.QueuedQueries, tx.held...)
	tx.held = nil
	b.QueuedQueries = append(b.QueuedQueries, qs...)
	if commit {
		b.Queue("COMMIT").Exec(func(ct pgconn.CommandTag) error {
			if ct.String() == "ROLLBACK" {
				return pgx.ErrTxCommitRollback
			}
			return nil
		})
	}
	return tx.conn.SendBatch(ctx, b).Close()
}

// end rolls back what is still open on the connection, unless a commit already ended
// it, and releases the connection. The rollback runs even when ctx has ended, so the
// connection goes back to the pool clean; if it cannot, pgxpool destroys the
// connection instead of reusing it.
func (tx *batchTx) end(ctx context.Context) {
	if tx.conn.Conn().PgConn().TxStatus() != 'I' && !tx.conn.Conn().IsClosed() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		_, _ = tx.conn.Exec(rctx, "ROLLBACK")
		cancel()
	}
	tx.held = nil
	tx.conn.Release()
}
