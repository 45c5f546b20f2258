package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/dbos-inc/dbos-transact-golang/dbos"
	_ "github.com/dbos-inc/dbos-transact-golang/dbos/driver/sqlite" // DBOS on SQLite
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// e2eSystem is one contender of the end-to-end run: start begins workflow id (its first
// input), pending reports work still outstanding, completions returns when each
// completed workflow committed its completion.
type e2eSystem interface {
	start(ctx context.Context, id string) error
	pending(ctx context.Context) (bool, error)
	completions(ctx context.Context) (map[string]time.Time, error)
	close()
}

// ironE2E drives ironflow over its HTTP API.
type ironE2E struct{ s *ironServer }

func (e ironE2E) start(ctx context.Context, id string) error { return e.s.input(ctx, id, "start") }
func (e ironE2E) pending(ctx context.Context) (bool, error) {
	b, err := e.s.call(ctx, http.MethodGet, "/v1/effects?status=pending&workflow_type=bench&limit=1", "", http.StatusOK)
	if err != nil {
		return true, err
	}
	return !strings.Contains(string(b), `"items":[]`), nil
}
func (e ironE2E) completions(ctx context.Context) (map[string]time.Time, error) {
	return e.s.completions(ctx)
}
func (e ironE2E) close() { e.s.close() }

// ---- DBOS Transact ----

// dbosE2E: a workflow with one step that POSTs to the sink, started through a queue.
type dbosE2E struct {
	ctx     dbos.Context
	queue   dbos.Queue
	wf      func(dbos.Context, string) (string, error)
	sqlite  bool
	pgURL   string
	sqlPath string
}

// startDBOS starts DBOS on dsn (a postgres URL, or a SQLite file path). poll is the
// queue's base polling interval (0: DBOS's default).
func startDBOS(ctx context.Context, backend, dsn, sinkURL string, poll time.Duration) (*dbosE2E, error) {
	cfg := dbos.Config{AppName: "ironbench", Logger: slog.New(slog.DiscardHandler)}
	d := &dbosE2E{}
	if backend == "postgres" {
		cfg.DatabaseURL = dsn
		d.pgURL = dsn
	} else {
		cfg.DatabaseURL = "sqlite:" + dsn
		d.sqlite, d.sqlPath = true, dsn
	}
	dctx, err := dbos.NewContext(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return nil, fmt.Errorf("dbos: %w", err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: peerTransport}
	d.wf = func(wctx dbos.Context, id string) (string, error) {
		return dbos.RunAsStep(wctx, func(sctx context.Context) (string, error) {
			return postSink(sctx, client, sinkURL, map[string]string{"workflow_id": id})
		})
	}
	dbos.RegisterWorkflow(dctx, d.wf)
	var opts []dbos.QueueOption
	if poll > 0 {
		opts = append(opts, dbos.WithQueueBasePollingInterval(poll))
	}
	q, err := dbos.RegisterQueue(dctx, "bench", opts...)
	if err != nil {
		return nil, fmt.Errorf("dbos queue: %w", err)
	}
	d.queue = q
	if err := dbos.Launch(dctx); err != nil {
		return nil, fmt.Errorf("dbos launch: %w", err)
	}
	d.ctx = dctx
	return d, nil
}

func (d *dbosE2E) start(_ context.Context, id string) error {
	_, err := dbos.RunWorkflow(d.ctx, d.wf, id, dbos.WithQueue(d.queue), dbos.WithWorkflowID(id))
	return err
}

func (d *dbosE2E) query(ctx context.Context, q string, scan func(rows interface {
	Next() bool
	Scan(...any) error
}) error) error {
	if d.sqlite {
		db, err := sql.Open("sqlite", sqliteDSN(d.sqlPath))
		if err != nil {
			return err
		}
		defer db.Close()
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		return scan(rows)
	}
	conn, err := pgx.Connect(ctx, d.pgURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, strings.ReplaceAll(q, "workflow_status", "dbos.workflow_status"))
	if err != nil {
		return err
	}
	defer rows.Close()
	return scan(rows)
}

func (d *dbosE2E) pending(ctx context.Context) (bool, error) {
	var n int64
	err := d.query(ctx, `SELECT count(*) FROM workflow_status WHERE status NOT IN ('SUCCESS', 'ERROR', 'CANCELLED')`,
		func(rows interface {
			Next() bool
			Scan(...any) error
		}) error {
			for rows.Next() {
				if err := rows.Scan(&n); err != nil {
					return err
				}
			}
			return nil
		})
	return n > 0, err
}

func (d *dbosE2E) completions(ctx context.Context) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := d.query(ctx, `SELECT workflow_uuid, updated_at FROM workflow_status WHERE status = 'SUCCESS'`,
		func(rows interface {
			Next() bool
			Scan(...any) error
		}) error {
			for rows.Next() {
				var id string
				var ms int64
				if err := rows.Scan(&id, &ms); err != nil {
					return err
				}
				out[id] = time.UnixMilli(ms)
			}
			return nil
		})
	return out, err
}

func (d *dbosE2E) close() { _ = dbos.Shutdown(d.ctx, 10*time.Second) }

// ---- River ----

// sinkArgs is the River job: POST to the sink, then complete the business row and the
// job in one transaction (JobCompleteTx), River's way to apply a result exactly once.
type sinkArgs struct {
	OrderID string `json:"order_id"`
}

func (sinkArgs) Kind() string { return "sink" }

type riverPGWorker struct {
	river.WorkerDefaults[sinkArgs]
	pool   *pgxpool.Pool
	client *http.Client
	url    string
}

func (w *riverPGWorker) Work(ctx context.Context, job *river.Job[sinkArgs]) error {
	if _, err := postSink(ctx, w.client, w.url, job.Args); err != nil {
		return err
	}
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `UPDATE bench_orders SET completed_at = $2 WHERE id = $1`, job.Args.OrderID, time.Now()); err != nil {
		return err
	}
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

type riverSQLiteWorker struct {
	river.WorkerDefaults[sinkArgs]
	db     *sql.DB
	client *http.Client
	url    string
}

func (w *riverSQLiteWorker) Work(ctx context.Context, job *river.Job[sinkArgs]) error {
	if _, err := postSink(ctx, w.client, w.url, job.Args); err != nil {
		return err
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `UPDATE bench_orders SET completed_at = ? WHERE id = ?`, time.Now().UnixMicro(), job.Args.OrderID); err != nil {
		return err
	}
	if _, err := river.JobCompleteTx[*riversqlite.Driver](ctx, tx, job); err != nil {
		return err
	}
	return tx.Commit()
}

// riverConfig is River at its defaults (FetchCooldown 100 ms, FetchPollInterval 1 s,
// 100 workers as its docs start with) or tuned with the settings of River's own
// benchmark (2 ms, 20 ms, 2,000 workers).
func riverConfig(tuned bool, workers *river.Workers) *river.Config {
	cfg := &river.Config{
		Logger:  slog.New(slog.DiscardHandler),
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 100}},
		Workers: workers,
	}
	if tuned {
		cfg.FetchCooldown = 2 * time.Millisecond
		cfg.FetchPollInterval = 20 * time.Millisecond
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2000}}
	}
	return cfg
}

type riverPGE2E struct {
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx]
}

func startRiverPG(ctx context.Context, dsn, sinkURL string, tuned bool) (*riverPGE2E, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	drv := riverpgxv5.New(pool)
	m, err := rivermigrate.New(drv, nil)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		pool.Close()
		return nil, fmt.Errorf("river migrate: %w", err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_orders (id text PRIMARY KEY, created_at timestamptz NOT NULL, completed_at timestamptz)`); err != nil {
		pool.Close()
		return nil, err
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &riverPGWorker{pool: pool, url: sinkURL,
		client: &http.Client{Timeout: 10 * time.Second, Transport: peerTransport}})
	client, err := river.NewClient(drv, riverConfig(tuned, workers))
	if err != nil {
		pool.Close()
		return nil, err
	}
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		pool.Close()
		return nil, err
	}
	return &riverPGE2E{pool: pool, client: client}, nil
}

// start inserts the business row and its job in one transaction.
func (r *riverPGE2E) start(ctx context.Context, id string) error {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `INSERT INTO bench_orders (id, created_at) VALUES ($1, now())`, id); err != nil {
		return err
	}
	if _, err := r.client.InsertTx(ctx, tx, sinkArgs{OrderID: id}, nil); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (r *riverPGE2E) pending(ctx context.Context) (bool, error) {
	var n int64
	err := r.pool.QueryRow(ctx, `SELECT count(*) FROM bench_orders WHERE completed_at IS NULL`).Scan(&n)
	return n > 0, err
}

func (r *riverPGE2E) completions(ctx context.Context) (map[string]time.Time, error) {
	rows, err := r.pool.Query(ctx, `SELECT id, completed_at FROM bench_orders WHERE completed_at IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var t time.Time
		if err := rows.Scan(&id, &t); err != nil {
			return nil, err
		}
		out[id] = t
	}
	return out, rows.Err()
}

func (r *riverPGE2E) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.client.Stop(ctx)
	r.pool.Close()
}

type riverSQLiteE2E struct {
	db     *sql.DB
	client *river.Client[*sql.Tx]
}

// startRiverSQLite runs River on a SQLite file with ironflow's pragmas and, as the
// riversqlite documentation advises, one connection.
func startRiverSQLite(ctx context.Context, dir, sinkURL string, tuned bool) (*riverSQLiteE2E, error) {
	db, err := sql.Open("sqlite", sqliteDSN(filepath.Join(dir, "river.db")))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	drv := riversqlite.New(db)
	m, err := rivermigrate.New(drv, nil)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("river migrate: %w", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE bench_orders (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, completed_at INTEGER)`); err != nil {
		_ = db.Close()
		return nil, err
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &riverSQLiteWorker{db: db, url: sinkURL,
		client: &http.Client{Timeout: 10 * time.Second, Transport: peerTransport}})
	client, err := river.NewClient(drv, riverConfig(tuned, workers))
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &riverSQLiteE2E{db: db, client: client}, nil
}

func (r *riverSQLiteE2E) start(ctx context.Context, id string) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `INSERT INTO bench_orders (id, created_at) VALUES (?, ?)`, id, time.Now().UnixMicro()); err != nil {
		return err
	}
	if _, err := r.client.InsertTx(ctx, tx, sinkArgs{OrderID: id}, nil); err != nil {
		return err
	}
	return tx.Commit()
}

func (r *riverSQLiteE2E) pending(ctx context.Context) (bool, error) {
	var n int64
	err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM bench_orders WHERE completed_at IS NULL`).Scan(&n)
	return n > 0, err
}

func (r *riverSQLiteE2E) completions(ctx context.Context) (map[string]time.Time, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id, completed_at FROM bench_orders WHERE completed_at IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var us int64
		if err := rows.Scan(&id, &us); err != nil {
			return nil, err
		}
		out[id] = time.UnixMicro(us)
	}
	return out, rows.Err()
}

func (r *riverSQLiteE2E) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.client.Stop(ctx)
	_ = r.db.Close()
}
