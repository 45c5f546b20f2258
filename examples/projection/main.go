// Command projection is an example consumer of ironflow's global event feed: it keeps
// a table of order totals (orders placed and their value, payments received and their
// amount, per workflow type) in its own SQLite file, fed by GET /v1/events.
//
// The feed's cursor is stored in the same file and updated in the same transaction as
// the totals, so the projection can be stopped and restarted at any point, crash
// included, and counts every event exactly once: it resumes after the last event it
// committed. The long-poll (wait=) makes it follow new events as they are committed
// without polling.
//
//	go run ./examples/projection -server http://127.0.0.1:8080 -db totals.db
//
// IRONFLOW_API_KEY is sent as the bearer key when set.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

func main() {
	server := flag.String("server", "http://127.0.0.1:8080", "ironflow's address")
	dbPath := flag.String("db", "totals.db", "the projection's SQLite file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	p, err := Open(*dbPath, *server, os.Getenv("IRONFLOW_API_KEY"))
	if err != nil {
		slog.Error("open", "error", err)
		os.Exit(1)
	}
	defer p.Close()
	if err := p.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		slog.Error("run", "error", err)
		os.Exit(1)
	}
}

const schema = `
CREATE TABLE IF NOT EXISTS feed_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), cursor TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS totals (
    workflow_type TEXT PRIMARY KEY,
    orders        INTEGER NOT NULL DEFAULT 0,
    order_value   REAL    NOT NULL DEFAULT 0,
    payments      INTEGER NOT NULL DEFAULT 0,
    paid_amount   REAL    NOT NULL DEFAULT 0
);`

// Projection applies the feed to the totals table.
type Projection struct {
	db     *sql.DB
	server string
	key    string
	http   *http.Client
	// Wait is the long-poll of each read.
	Wait time.Duration
}

// Open opens (creating it) the projection's database.
func Open(path, server, key string) (*Projection, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("schema: %w", err)
	}
	return &Projection{db: db, server: server, key: key, http: &http.Client{Timeout: 2 * time.Minute}, Wait: 30 * time.Second}, nil
}

// Close closes the database.
func (p *Projection) Close() error { return p.db.Close() }

// Run applies the feed until ctx ends, retrying after errors.
func (p *Projection) Run(ctx context.Context) error {
	for {
		if _, err := p.Step(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			slog.Warn("feed read failed; retrying", "error", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
}

// feedPage is the part of a GET /v1/events answer the projection reads.
type feedPage struct {
	Items []struct {
		WorkflowType string `json:"workflow_type"`
		Type         string `json:"type"`
		Data         struct {
			Total  float64 `json:"total"`
			Amount float64 `json:"amount"`
		} `json:"data"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// Step reads one page after the saved cursor (waiting up to Wait for one) and applies
// it with the new cursor in one transaction. n is the number of events applied.
func (p *Projection) Step(ctx context.Context) (n int, err error) {
	var cursor string
	err = p.db.QueryRowContext(ctx, `SELECT cursor FROM feed_cursor WHERE id = 1`).Scan(&cursor)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	q := url.Values{"limit": {"500"}, "wait": {p.Wait.String()}}
	if cursor != "" {
		q.Set("after", cursor)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.server+"/v1/events?"+q.Encode(), nil)
	if err != nil {
		return 0, err
	}
	if p.key != "" {
		req.Header.Set("Authorization", "Bearer "+p.key)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /v1/events: %s: %s", resp.Status, body)
	}
	var page feedPage
	if err := json.Unmarshal(body, &page); err != nil {
		return 0, err
	}

	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	for _, ev := range page.Items {
		var orders, payments int
		var value, amount float64
		switch ev.Type {
		case "OrderPlaced":
			orders, value = 1, ev.Data.Total
		case "PaymentReceived":
			payments, amount = 1, ev.Data.Amount
		default:
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO totals (workflow_type, orders, order_value, payments, paid_amount)
VALUES (?, ?, ?, ?, ?) ON CONFLICT (workflow_type) DO UPDATE SET orders = orders + excluded.orders,
    order_value = order_value + excluded.order_value, payments = payments + excluded.payments,
    paid_amount = paid_amount + excluded.paid_amount`, ev.WorkflowType, orders, value, payments, amount); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO feed_cursor (id, cursor) VALUES (1, ?)
ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor`, page.NextCursor); err != nil {
		return 0, err
	}
	return len(page.Items), tx.Commit()
}

// Totals is one row of the table.
type Totals struct {
	Orders     int
	OrderValue float64
	Payments   int
	PaidAmount float64
}

// Totals returns the table, by workflow type.
func (p *Projection) Totals(ctx context.Context) (map[string]Totals, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT workflow_type, orders, order_value, payments, paid_amount FROM totals`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Totals{}
	for rows.Next() {
		var typ string
		var t Totals
		if err := rows.Scan(&typ, &t.Orders, &t.OrderValue, &t.Payments, &t.PaidAmount); err != nil {
			return nil, err
		}
		out[typ] = t
	}
	return out, rows.Err()
}
