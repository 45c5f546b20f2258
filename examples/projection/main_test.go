package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/feed"
	ironhttp "github.com/ironflow/ironflow/internal/http"
	"github.com/ironflow/ironflow/internal/store/sqlite"
)

// newServer runs ironflow (SQLite) in the test and defines the order example.
func newServer(t *testing.T) string {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ironflow.db"))
	require.NoError(t, err)
	hub := feed.NewHub(st, nil)
	require.NoError(t, hub.Start(ctx))
	srv := httptest.NewServer(ironhttp.New(ironhttp.Config{Engine: engine.New(engine.Config{Store: st}), Feed: hub}))
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, hub.Stop(ctx))
		require.NoError(t, st.Close())
	})
	def, err := os.ReadFile(filepath.Join("..", "order.json"))
	require.NoError(t, err)
	send(t, srv.URL, http.MethodPut, "/v1/workflow-types/order", string(def), http.StatusCreated)
	return srv.URL
}

func send(t *testing.T, base, method, path, body string, want int) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewBufferString(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, want, resp.StatusCode, "%s %s", method, path)
}

func placeAndPay(t *testing.T, base string, from, to int) {
	for i := from; i < to; i++ {
		id := fmt.Sprint("o-", i)
		send(t, base, http.MethodPost, "/v1/workflows/order/"+id+"/inputs",
			fmt.Sprintf(`{"type":"place","data":{"total":%d,"order_ref":%q}}`, 10*i, id), http.StatusOK)
		if i%2 == 0 {
			send(t, base, http.MethodPost, "/v1/workflows/order/"+id+"/inputs",
				fmt.Sprintf(`{"type":"pay","data":{"amount":%d}}`, 10*i), http.StatusOK)
		}
	}
}

// catchUp steps until a read returns nothing new.
func catchUp(t *testing.T, p *Projection) {
	for {
		n, err := p.Step(context.Background())
		require.NoError(t, err)
		if n == 0 {
			return
		}
	}
}

func want(n int) Totals {
	var w Totals
	for i := range n {
		w.Orders++
		w.OrderValue += float64(10 * i)
		if i%2 == 0 {
			w.Payments++
			w.PaidAmount += float64(10 * i)
		}
	}
	return w
}

func TestProjectionRestartsFromItsCursor(t *testing.T) {
	t.Parallel()
	base := newServer(t)
	dbPath := filepath.Join(t.TempDir(), "totals.db")
	placeAndPay(t, base, 0, 5)

	p, err := Open(dbPath, base, "")
	require.NoError(t, err)
	p.Wait = 100 * time.Millisecond
	catchUp(t, p)
	totals, err := p.Totals(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]Totals{"order": want(5)}, totals)
	require.NoError(t, p.Close())

	// Stopped; more orders meanwhile; started again from the same file.
	placeAndPay(t, base, 5, 12)
	p, err = Open(dbPath, base, "")
	require.NoError(t, err)
	defer p.Close()
	p.Wait = 100 * time.Millisecond
	catchUp(t, p)
	totals, err = p.Totals(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]Totals{"order": want(12)}, totals, "every event counted once across the restart")

	// Following: Run picks up new orders as they are committed.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	p.Wait = 10 * time.Second
	go func() { done <- p.Run(ctx) }()
	placeAndPay(t, base, 12, 14)
	require.Eventually(t, func() bool {
		totals, err := p.Totals(context.Background())
		return err == nil && totals["order"] == want(14)
	}, 10*time.Second, 20*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}
