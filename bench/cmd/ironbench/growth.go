package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ironflow/ironflow/internal/retention"
)

// The growth section (`-only growth`, `make bench-growth`): ironflow on a PostgreSQL
// database that already holds -growth-n finished instances and a tenth as many running
// ones (seed.go), against a near-empty one, in the same run: input throughput, every
// list filter of the API on a first and a deep page, the event feed, and retention
// pruning a day's worth while inputs run. Before that, on the near-empty database,
// inputs/s against clients with one server and with two sharing the database.

type growthResult struct {
	n, total        int64
	seeded          time.Duration
	dbSize          int64
	tables          []tableSize
	servers         []serversRow
	inputs          []growthInputRow
	lists           []listRow
	prune           pruneRow
	verified        string
	emptyN          int64
	measuredCommit  string
	growthDatabase  string
	reusedDatabase  bool
	pruneBatchSize  int
	pruneBefore     time.Time
	inputWindowSecs float64
	// prewarmed is what prewarm read into the OS cache, or why it did not.
	prewarmed string
	// runTag starts the ids of the instances this run creates, so that a database kept
	// from an earlier run (-growth-db) gets new instances, not inputs to old ones.
	runTag string
}

type tableSize struct {
	name        string
	rows        int64
	heap, index int64
}

type serversRow struct {
	clients   int
	one, two  float64
	oneP, twP time.Duration
}

type growthInputRow struct {
	kind         string // "new instance", "existing instance"
	empty, grown []float64
	emptyP99     time.Duration
	grownP99     time.Duration
}

type listRow struct {
	name, path string
	deep       bool
	lat        latencies
}

type pruneRow struct {
	rows          int64
	elapsed       time.Duration
	batches       latencies
	before, while []float64 // inputs/s without and with pruning
	whileP99      time.Duration
	beforeP99     time.Duration
}

func (b *bench) growthSection(ctx context.Context) error {
	g := &b.growth
	g.n = b.o.growthN
	g.runTag = strconv.FormatInt(time.Now().Unix(), 36)
	g.emptyN = 1000
	g.pruneBatchSize = retention.DefaultBatchSize
	window := 5 * time.Second
	if b.o.quick {
		window = 2 * time.Second
	}
	g.inputWindowSecs = window.Seconds()

	// The near-empty database: a thousand instances, so that inputs to existing
	// instances have somewhere to go.
	emptyURL, err := b.dbs.fresh(ctx, "growth_empty")
	if err != nil {
		return err
	}
	empty, err := startGrowthServer(ctx, emptyURL)
	if err != nil {
		return err
	}
	defer empty.close()
	if err := seed(ctx, emptyURL, newSeedPlan(g.emptyN, time.Now()), func(string, ...any) {}); err != nil {
		return fmt.Errorf("seed the near-empty database: %w", err)
	}

	// The grown database: seeded here, or one a previous run kept (-growth-db).
	var grownURL string
	if b.o.growthDB != "" {
		u, err := url.Parse(b.o.pgURL)
		if err != nil {
			return err
		}
		u.Path = "/" + b.o.growthDB
		grownURL, g.growthDatabase, g.reusedDatabase = u.String(), b.o.growthDB, true
	} else {
		if grownURL, err = b.dbs.fresh(ctx, "growth"); err != nil {
			return err
		}
		if b.o.growthKeep {
			b.dbs.created = b.dbs.created[:len(b.dbs.created)-1] // kept: not dropped at the end
		}
		g.growthDatabase = databaseName(grownURL)
	}
	grown, err := startGrowthServer(ctx, grownURL)
	if err != nil {
		return err
	}
	defer grown.close()
	plan := newSeedPlan(g.n, time.Now())
	if !g.reusedDatabase {
		t0 := time.Now()
		if err := seed(ctx, grownURL, plan, b.logf); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		g.seeded = time.Since(t0)
		b.logf("growth: seeded %d instances in %s", plan.total, g.seeded.Round(time.Second))
	}
	g.total = plan.total
	if err := g.readSizes(ctx, grownURL); err != nil {
		return err
	}
	b.logf("growth: database %s is %.1f GB", g.growthDatabase, float64(g.dbSize)/1e9)
	if err := g.verify(ctx, grown); err != nil {
		return fmt.Errorf("seeded rows read back through the API: %w", err)
	}

	parts := strings.Split(b.o.growthPart, ",")
	// 1. One server against two sharing the near-empty database.
	if slices.Contains(parts, "servers") {
		if err := g.servers2(ctx, b, empty, emptyURL, window); err != nil {
			return err
		}
	}
	if slices.Contains(parts, "inputs") {
		g.prewarm(ctx, b, grownURL)
		g.inputRates(ctx, b, empty, grown, window)
	}
	if slices.Contains(parts, "lists") {
		if err := g.listRates(ctx, b, grown, grownURL, plan); err != nil {
			return err
		}
	}
	if !slices.Contains(parts, "prune") {
		return nil
	}
	// 4. Retention prunes the oldest day while inputs run.
	return g.pruneWhileInputs(ctx, b, grown, grownURL, growthClients, window)
}

const growthClients = 32

func (g *growthResult) servers2(ctx context.Context, b *bench, empty *ironServer, emptyURL string, window time.Duration) error {
	second, err := startGrowthServer(ctx, emptyURL)
	if err != nil {
		return err
	}
	for _, conc := range []int{8, 32, 128} {
		row := serversRow{clients: conc}
		prefix := fmt.Sprintf("%s-srv-c%d-", g.runTag, conc)
		one := closedLoop(ctx, conc, b.warm, window, func(ctx context.Context, _, seq int) error {
			return empty.input(ctx, fmt.Sprintf("%s1-%d", prefix, seq), "start")
		})
		two := closedLoop(ctx, conc, b.warm, window, func(ctx context.Context, w, seq int) error {
			s := empty
			if w%2 == 1 {
				s = second
			}
			return s.input(ctx, fmt.Sprintf("%s2-%d", prefix, seq), "start")
		})
		row.one, row.two, row.oneP, row.twP = one.rate(), two.rate(), one.pct(0.99), two.pct(0.99)
		g.servers = append(g.servers, row)
		b.logf("growth: c=%-3d one server %6.0f/s (p99 %s), two servers %6.0f/s (p99 %s)",
			conc, row.one, ms(row.oneP), row.two, ms(row.twP))
	}
	second.close()
	return nil
}

// inputRates: input throughput, near-empty against grown, alternating, 32 clients.
func (g *growthResult) inputRates(ctx context.Context, b *bench, empty, grown *ironServer, window time.Duration) {
	const clients = growthClients
	running := func(n int64, i int) string { // the i-th running seeded instance of a plan of n
		total := n + n/10
		k := int64(11 * (1 + i%int(total/11)))
		return "/v1/workflows/" + seedTypes[k%4] + "/" + fmt.Sprintf("o-%010d", k) + "/inputs"
	}
	for _, kind := range []string{"new instance", "existing instance"} {
		row := growthInputRow{kind: kind}
		var el, gl latencies
		for round := range 3 {
			for _, side := range []string{"empty", "grown"} {
				srv, n := empty, g.emptyN
				if side == "grown" {
					srv, n = grown, g.n
				}
				prefix := fmt.Sprintf("%s-in-%d-%s-", g.runTag, round, side)
				l := closedLoop(ctx, clients, b.warm, window, func(ctx context.Context, w, seq int) error {
					if kind == "new instance" {
						return srv.input(ctx, prefix+strconv.Itoa(seq), "start")
					}
					_, err := srv.call(ctx, http.MethodPost, running(n, seq*7919+round*104729), `{"type": "tick", "data": {"n": 1}}`, http.StatusOK)
					return err
				})
				if side == "empty" {
					row.empty = append(row.empty, l.rate())
					el.samples = append(el.samples, l.samples...)
				} else {
					row.grown = append(row.grown, l.rate())
					gl.samples = append(gl.samples, l.samples...)
				}
				b.logf("growth: inputs (%s) %s round %d: %6.0f/s p99 %s errors %d", kind, side, round, l.rate(), ms(l.pct(0.99)), l.errors)
			}
		}
		row.emptyP99, row.grownP99 = el.pct(0.99), gl.pct(0.99)
		g.inputs = append(g.inputs, row)
	}
}

// listRates: every list filter, first page and a deep one, one request at a time.
func (g *growthResult) listRates(ctx context.Context, b *bench, grown *ironServer, grownURL string, plan seedPlan) error {
	reps := 100
	if b.o.quick {
		reps = 20
	}
	for _, l := range g.listCases(ctx, grownURL, plan) {
		for i := range reps + 1 { // the first request warms the connection and the plan
			t0 := time.Now()
			if _, err := grown.call(ctx, http.MethodGet, l.path, "", http.StatusOK); err != nil {
				return fmt.Errorf("%s: %w", l.path, err)
			}
			if i > 0 {
				l.lat.samples = append(l.lat.samples, time.Since(t0))
			}
		}
		b.logf("growth: list %-45s p50 %s p99 %s", l.name, ms(l.lat.pct(0.5)), ms(l.lat.pct(0.99)))
		g.lists = append(g.lists, *l)
	}
	return nil
}

// listCases are the list requests measured; a deep page starts at a cursor 90 % of the
// way into the table (for the created range, in the middle of the range).
func (g *growthResult) listCases(ctx context.Context, url string, p seedPlan) []*listRow {
	cur := func(rid int64) string {
		return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(rid, 10)))
	}
	maxRid := func(table string) int64 {
		var n int64
		_ = withConn(ctx, url, func(c *pgx.Conn) error {
			return c.QueryRow(ctx, `SELECT coalesce(max(rid), 0) FROM `+table).Scan(&n)
		})
		return n
	}
	day := func(d int) string {
		return url2(p.start.Add(time.Duration(d) * 24 * time.Hour).UTC().Format(time.RFC3339))
	}
	deepInst, deepEff, deepTim := cur(maxRid("instances")*9/10), cur(maxRid("effects")*9/10), cur(maxRid("timers")*9/10)
	midDay := cur(int64(float64(p.total) * 5.9 / 10))
	one := fmt.Sprintf("o-%010d", (p.total/2)/4*4+1) // an 'orders' instance, finished
	var out []*listRow
	add := func(name, path, deep string) {
		out = append(out, &listRow{name: name, path: path})
		if deep != "" {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			out = append(out, &listRow{name: name, path: path + sep + "cursor=" + deep, deep: true})
		}
	}
	add("instances", "/v1/workflows", deepInst)
	add("instances type", "/v1/workflows?type=orders", deepInst)
	add("instances type+state", "/v1/workflows?type=orders&state=waiting", deepInst)
	add("instances state", "/v1/workflows?state=waiting", deepInst)
	add("instances status=running", "/v1/workflows?status=running", deepInst)
	add("instances status=completed", "/v1/workflows?status=completed", deepInst)
	add("instances status=failed (none)", "/v1/workflows?status=failed", deepInst)
	add("instances type+status", "/v1/workflows?type=payments&status=running", deepInst)
	// A prefix shared by 1,000 ids (o-0000012000…o-0000012999), and a broad one shared
	// by the first 100,000.
	add("instances id_prefix (1,000 ids)", "/v1/workflows?id_prefix=o-0000012", deepInst)
	add("instances type+id_prefix (1,000 ids)", "/v1/workflows?type=orders&id_prefix=o-0000012", deepInst)
	add("instances id_prefix (100,000 ids)", "/v1/workflows?id_prefix=o-00000", deepInst)
	add("instances type+id_prefix (100,000 ids)", "/v1/workflows?type=orders&id_prefix=o-00000", deepInst)
	add("instances id_prefix, no match", "/v1/workflows?id_prefix=x", "")
	add("instances type+id_prefix, no match", "/v1/workflows?type=orders&id_prefix=x", "")
	add("instances created day 6", "/v1/workflows?created_after="+day(5)+"&created_before="+day(6), midDay)
	add("instances created last day", "/v1/workflows?created_after="+day(9), deepInst)
	add("instances created first day", "/v1/workflows?created_before="+day(1), "")
	add("instances type+status+created", "/v1/workflows?type=orders&status=completed&created_after="+day(5)+"&created_before="+day(6), midDay)
	add("instance counts type", "/v1/workflow-counts?type=orders", "")
	add("effects", "/v1/effects", deepEff)
	add("effects status=delivered", "/v1/effects?status=delivered", deepEff)
	add("effects status=dead", "/v1/effects?status=dead", deepEff)
	add("effects status=pending", "/v1/effects?status=pending", deepEff)
	add("effects workflow_type", "/v1/effects?workflow_type=orders", deepEff)
	add("effects workflow_type+status", "/v1/effects?workflow_type=orders&status=dead", deepEff)
	add("timers", "/v1/timers", deepTim)
	add("timers status=pending", "/v1/timers?status=pending", deepTim)
	add("timers status=fired", "/v1/timers?status=fired", deepTim)
	add("timers workflow_type", "/v1/timers?workflow_type=orders", deepTim)
	add("one instance", "/v1/workflows/orders/"+one, "")
	add("one instance's inputs", "/v1/workflows/orders/"+one+"/inputs", "")
	add("one instance's events", "/v1/workflows/orders/"+one+"/events", "")
	add("one instance's effects", "/v1/workflows/orders/"+one+"/effects", "")
	add("one instance's timers", "/v1/workflows/orders/"+one+"/timers", "")
	add("effects of one instance", "/v1/effects?workflow_type=orders&workflow_id="+one, "")
	add("event feed from the start", "/v1/events", "")
	add("event feed of a type from the start", "/v1/events?workflow_type=orders", "")
	var tail string
	_ = withConn(ctx, url, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT txid::text || '.' || gid FROM events ORDER BY txid DESC, gid DESC OFFSET 50 LIMIT 1`).Scan(&tail)
	})
	add("event feed from the tail", "/v1/events?after="+tail, "")
	add("event feed of a type from the tail", "/v1/events?workflow_type=orders&after="+tail, "")
	return out
}

func url2(s string) string { return url.QueryEscape(s) }

// prewarmRelations are what an input to an existing instance reads at random places:
// the instance row and its key, and the leaves of the keys its event and input go into.
// Every other index it writes, it writes at the right edge.
var prewarmRelations = []string{"instances", "instances_pkey", "events_pkey", "inputs_instance"}

// prewarm reads prewarmRelations of the grown database into the operating system's cache
// (pg_prewarm), as on a server that has been serving inputs to its running instances
// for a while: otherwise an input to one of the million running instances is measured
// against a cache that has just been filled by seeding and index builds, and reads its
// pages from the disk (0.18× the near-empty rate at ten million instances, against
// 0.46–0.81× once cached, with full pages and then with room for HOT updates;
// docs/SCALING.md).
func (g *growthResult) prewarm(ctx context.Context, b *bench, url string) {
	t0 := time.Now()
	var blocks int64
	err := withConn(ctx, url, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_prewarm`); err != nil {
			return err
		}
		return c.QueryRow(ctx, `SELECT sum(pg_prewarm(r, 'read')) FROM unnest($1::regclass[]) AS r`, prewarmRelations).Scan(&blocks)
	})
	if err != nil {
		g.prewarmed = "not read into the cache first (pg_prewarm: " + firstLine(err) + ")"
		b.logf("growth: prewarm: %v", err)
		return
	}
	g.prewarmed = fmt.Sprintf("%s read into the operating system's cache first (pg_prewarm, %.1f GB in %s)",
		strings.Join(prewarmRelations, ", "), float64(blocks)*8192/1e9, time.Since(t0).Round(time.Second))
	b.logf("growth: prewarm: %s", g.prewarmed)
}

func withConn(ctx context.Context, url string, f func(*pgx.Conn) error) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return f(c)
}

func databaseName(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(p.Path, "/")
}

// startGrowthServer starts an ironflow server on url with benchDefinition registered
// under every seeded type.
func startGrowthServer(ctx context.Context, url string) (*ironServer, error) {
	s, err := startIronflow(ctx, "postgres", url, "")
	if err != nil {
		return nil, err
	}
	for _, t := range seedTypes[1:] {
		if _, err := s.call(ctx, http.MethodPut, "/v1/workflow-types/"+t, benchDefinition, http.StatusCreated, http.StatusOK); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// verify reads seeded rows back through the API and sends an input to a seeded running
// instance: the seeder's rows must be rows the engine can use.
func (g *growthResult) verify(ctx context.Context, s *ironServer) error {
	k := int64(11 * 7) // running
	id := fmt.Sprintf("o-%010d", k)
	typ := seedTypes[k%4]
	for _, p := range []string{"/v1/workflows/" + typ + "/" + id, "/v1/workflows/" + typ + "/" + id + "/events",
		"/v1/workflows/" + typ + "/" + id + "/inputs", "/v1/workflows/" + typ + "/" + id + "/effects",
		"/v1/workflows/" + typ + "/" + id + "/timers", "/v1/workflows/orders/o-0000000001/inputs"} {
		if _, err := s.call(ctx, http.MethodGet, p, "", http.StatusOK); err != nil {
			return err
		}
	}
	body, err := s.call(ctx, http.MethodPost, "/v1/workflows/"+typ+"/"+id+"/inputs", `{"type": "tick", "data": {"n": 1}}`, http.StatusOK)
	if err != nil {
		return err
	}
	if !strings.Contains(string(body), `"accepted"`) {
		return fmt.Errorf("tick on a seeded running instance: %s", body)
	}
	g.verified = "a seeded running instance, its events, inputs, effects and timers read back through the API, and an input to it accepted"
	return nil
}

func (g *growthResult) readSizes(ctx context.Context, url string) error {
	return withConn(ctx, url, func(c *pgx.Conn) error {
		if err := c.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&g.dbSize); err != nil {
			return err
		}
		g.tables = nil
		for _, t := range seedTables {
			ts := tableSize{name: t}
			if err := c.QueryRow(ctx, `SELECT greatest(reltuples, 0)::bigint, pg_table_size(oid), pg_indexes_size(oid) FROM pg_class WHERE oid = $1::regclass`, t).
				Scan(&ts.rows, &ts.heap, &ts.index); err != nil {
				return err
			}
			g.tables = append(g.tables, ts)
		}
		return nil
	})
}

// timedPruner times each Prune call of the retention worker.
type timedPruner struct {
	retention.Pruner
	mu  sync.Mutex
	lat latencies
}

func (t *timedPruner) Prune(ctx context.Context, before time.Time, batch int) (int64, error) {
	t0 := time.Now()
	n, err := t.Pruner.Prune(ctx, before, batch)
	t.mu.Lock()
	t.lat.samples = append(t.lat.samples, time.Since(t0))
	t.mu.Unlock()
	return n, err
}

// pruneWhileInputs measures inputs/s, then runs the retention worker over the oldest
// day's rows (from the oldest input of a completed instance) while the same inputs run,
// window after window, then inputs alone again.
func (g *growthResult) pruneWhileInputs(ctx context.Context, b *bench, grown *ironServer, url string, clients int, window time.Duration) error {
	var oldest time.Time
	if err := withConn(ctx, url, func(c *pgx.Conn) error {
		// The oldest input of a completed instance: a kept database (-growth-db) may have
		// been pruned before, leaving the inputs of running instances oldest.
		return c.QueryRow(ctx, `SELECT i.created_at FROM inputs i
JOIN instances w ON w.type = i.workflow_type AND w.id = i.workflow_id AND w.status = 'completed'
ORDER BY i.created_at LIMIT 1`).Scan(&oldest)
	}); err != nil {
		return err
	}
	g.pruneBefore = oldest.Add(24 * time.Hour)
	seq := 0
	inputs := func(tag string) latencies {
		seq++
		prefix := fmt.Sprintf("%s-pr-%s-%d-", g.runTag, tag, seq)
		return closedLoop(ctx, clients, b.warm, window, func(ctx context.Context, _, s int) error {
			return grown.input(ctx, prefix+strconv.Itoa(s), "start")
		})
	}
	p := &g.prune
	var beforeL, whileL latencies
	for range 2 {
		l := inputs("before")
		p.before = append(p.before, l.rate())
		beforeL.samples = append(beforeL.samples, l.samples...)
	}
	tp := &timedPruner{Pruner: grown.store}
	w, err := retention.New(retention.Config{Store: tp, Retention: time.Since(g.pruneBefore), BatchSize: g.pruneBatchSize})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	var pruneErr error
	t0 := time.Now()
	go func() {
		defer close(done)
		p.rows, pruneErr = w.RunOnce(ctx)
		p.elapsed = time.Since(t0)
	}()
	for {
		select {
		case <-done:
		default:
			l := inputs("while")
			p.while = append(p.while, l.rate())
			whileL.samples = append(whileL.samples, l.samples...)
			b.logf("growth: inputs while pruning %6.0f/s (p99 %s), %d batches so far", l.rate(), ms(l.pct(0.99)), tp.count())
			continue
		}
		break
	}
	if pruneErr != nil {
		return pruneErr
	}
	l := inputs("after")
	p.before = append(p.before, l.rate())
	beforeL.samples = append(beforeL.samples, l.samples...)
	p.beforeP99, p.whileP99 = beforeL.pct(0.99), whileL.pct(0.99)
	tp.mu.Lock()
	p.batches = tp.lat
	tp.mu.Unlock()
	b.logf("growth: pruned %d rows older than %s in %s (%d batches, p99 %s)", p.rows,
		g.pruneBefore.UTC().Format(time.RFC3339), p.elapsed.Round(time.Millisecond), p.batches.n(), ms(p.batches.pct(0.99)))
	return nil
}

func (t *timedPruner) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.lat.samples)
}
