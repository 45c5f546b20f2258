package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

type inputRow struct {
	backend              string
	conc                 int
	ceilRate, ironRate   float64
	ratio                float64
	ceil, iron           latencies
	ceilErrors, ironErrs int64
	// CPU used in the measured windows of all rounds, and the inputs they completed.
	ceilCPU, ironCPU cpuUse
	ceilN, ironN     int
}

type halfMaxRow struct {
	backend  string
	rate     float64
	lat      latencies
	late     int
	failures int
	// ceil is the ceiling's transactions at the same arrival rate, right after: a
	// baseline for the tail on the same disk and cores.
	ceil latencies
}

type historyRow struct {
	backend     string
	n           int
	short, long latencies
}

type e2eRow struct {
	system, backend, config string
	rate                    float64
	n, completed, late      int
	startErrors             int
	throughput              float64
	lat                     latencies
	sustained               bool
	// cpu is the CPU time this process and the database used from the first arrival
	// until every workflow completed (or the drain gave up): the system, its load
	// generator and the sink.
	cpu time.Duration
}

// inputSection: ironflow's input path over HTTP against the SQL ceiling, interleaved,
// at each concurrency; then latency at half the best rate, open-loop.
func (b *bench) inputSection(ctx context.Context) error {
	for _, backend := range b.backends() {
		var ceilDecide func(ctx context.Context, id string) error
		var ceilClose func()
		var ironDSN, curl string
		meter := cpuMeter{}
		if backend == "postgres" {
			var err error
			curl, err = b.dbs.fresh(ctx, "ceiling")
			if err != nil {
				return err
			}
			meter = newCPUMeter(ctx, curl)
			c, err := newPGCeiling(ctx, curl, max(4, 4*runtimeProcs()))
			if err != nil {
				return err
			}
			ceilDecide, ceilClose = c.decide, c.close
			if ironDSN, err = b.dbs.fresh(ctx, "input"); err != nil {
				return err
			}
		} else {
			c, err := newSQLiteCeiling(ctx, b.tmp)
			if err != nil {
				return err
			}
			ceilDecide, ceilClose = c.decide, c.close
			ironDSN = filepath.Join(b.tmp, "input.db")
		}
		srv, err := startIronflow(ctx, backend, ironDSN, "")
		if err != nil {
			ceilClose()
			return err
		}
		for i, conc := range b.concurrencies {
			if i > 0 {
				// Not before the first: ANALYZE on empty tables would have every
				// statement planned for empty tables, and the plans kept as they fill.
				b.settle(ctx, backend, curl, ironDSN)
			}
			row := inputRow{backend: backend, conc: conc}
			var ratios, cr, ir []float64
			for round := range b.rounds {
				prefix := fmt.Sprintf("c%d-r%d-", conc, round)
				cl := meteredLoop(ctx, &meter, conc, b.warm, b.window, func(ctx context.Context, _, seq int) error {
					return ceilDecide(ctx, fmt.Sprintf("%s%d", prefix, seq))
				})
				il := meteredLoop(ctx, &meter, conc, b.warm, b.window, func(ctx context.Context, _, seq int) error {
					return srv.input(ctx, fmt.Sprintf("%s%d", prefix, seq), "start")
				})
				cr, ir = append(cr, cl.rate()), append(ir, il.rate())
				if cl.rate() > 0 {
					ratios = append(ratios, il.rate()/cl.rate())
				}
				row.ceil.samples = append(row.ceil.samples, cl.samples...)
				row.iron.samples = append(row.iron.samples, il.samples...)
				row.ceilErrors += cl.errors
				row.ironErrs += il.errors
				row.ceilCPU, row.ceilN = row.ceilCPU.add(cl.cpu), row.ceilN+cl.n()
				row.ironCPU, row.ironN = row.ironCPU.add(il.cpu), row.ironN+il.n()
				cs, cd := cl.cpu.perInput(cl.n())
				is, id := il.cpu.perInput(il.n())
				b.logf("input %-8s c=%-3d round %d: ceiling %7.0f/s  ironflow %7.0f/s  (errors %d/%d); "+
					"CPU per input: ceiling %s + database %s (cores %.0f%% busy), ironflow %s + database %s (%.0f%%)",
					backend, conc, round, cl.rate(), il.rate(), cl.errors, il.errors,
					us(cs), us(cd), 100*cl.cpu.busy(runtime.NumCPU()), us(is), us(id), 100*il.cpu.busy(runtime.NumCPU()))
			}
			row.ceilRate, row.ironRate, row.ratio = median(cr), median(ir), median(ratios)
			b.inputs = append(b.inputs, row)
		}
		// Latency at half the best rate, open-loop so a stall shows up in the tail.
		best := 0.0
		for _, r := range b.inputs {
			if r.backend == backend {
				best = math.Max(best, r.ironRate)
			}
		}
		if best > 0 {
			b.settle(ctx, backend, curl, ironDSN)
			rate := math.Round(best / 2)
			_, lat, late := openLoop(ctx, rate, b.window, func(ctx context.Context, seq int) error {
				return srv.input(ctx, fmt.Sprintf("half-%d", seq), "start")
			})
			row := halfMaxRow{backend: backend, rate: rate, late: late}
			row.lat, row.failures = answered(lat, b.window)
			_, clat, _ := openLoop(ctx, rate, b.window, func(ctx context.Context, seq int) error {
				return ceilDecide(ctx, fmt.Sprintf("half-%d", seq))
			})
			row.ceil, _ = answered(clat, b.window)
			b.halfMax = append(b.halfMax, row)
			b.logf("input %-8s open-loop at %.0f/s: p50 %s p99 %s (late %d, failed %d); ceiling p50 %s p99 %s",
				backend, rate, ms(row.lat.pct(0.5)), ms(row.lat.pct(0.99)), late, row.failures,
				ms(row.ceil.pct(0.5)), ms(row.ceil.pct(0.99)))
		}
		srv.close()
		ceilClose()
	}
	return nil
}

// historySection: the cost of one decision on an instance with 1 event and on one with
// 10,000, alternating, one at a time over HTTP.
func (b *bench) historySection(ctx context.Context) error {
	for _, backend := range b.backends() {
		var dsn string
		var err error
		if backend == "postgres" {
			if dsn, err = b.dbs.fresh(ctx, "history"); err != nil {
				return err
			}
		} else {
			dsn = filepath.Join(b.tmp, "history.db")
		}
		srv, err := startIronflow(ctx, backend, dsn, "")
		if err != nil {
			return err
		}
		const long = 10_000
		if err := srv.input(ctx, "long", "start"); err != nil {
			srv.close()
			return err
		}
		if err := srv.seedHistory(ctx, "long", long-1); err != nil {
			srv.close()
			return fmt.Errorf("seed history: %w", err)
		}
		n := b.historyN
		for i := range n {
			if err := srv.input(ctx, fmt.Sprintf("short-%d", i), "start"); err != nil {
				srv.close()
				return err
			}
		}
		row := historyRow{backend: backend, n: n}
		for i := range n {
			t0 := time.Now()
			if err := srv.input(ctx, fmt.Sprintf("short-%d", i), "tick"); err != nil {
				srv.close()
				return err
			}
			t1 := time.Now()
			if err := srv.input(ctx, "long", "tick"); err != nil {
				srv.close()
				return err
			}
			if i >= n/10 { // the first tenth warms caches and connections
				row.short.samples = append(row.short.samples, t1.Sub(t0))
				row.long.samples = append(row.long.samples, time.Since(t1))
			}
		}
		b.history = append(b.history, row)
		b.logf("history %-8s p50 at 1 event %s, at 10,000 events %s", backend, ms(row.short.pct(0.5)), ms(row.long.pct(0.5)))
		srv.close()
	}
	return nil
}

// e2eSystemSpec names one contender and how to start it.
type e2eSystemSpec struct {
	system, backend, config string
	start                   func(ctx context.Context) (e2eSystem, error)
}

func (b *bench) e2eSystems(sinkURL string) []e2eSystemSpec {
	var specs []e2eSystemSpec
	for _, backend := range b.backends() {
		backend := backend
		dsn := func(ctx context.Context, name string) (string, error) {
			if backend == "postgres" {
				return b.dbs.fresh(ctx, name)
			}
			return filepath.Join(b.tmp, name+".db"), nil
		}
		starts := 0
		specs = append(specs, e2eSystemSpec{"ironflow", backend, "defaults", func(ctx context.Context) (e2eSystem, error) {
			starts++ // each start on a database of its own
			d, err := dsn(ctx, fmt.Sprintf("e2e_ironflow_%d", starts))
			if err != nil {
				return nil, err
			}
			s, err := startIronflow(ctx, backend, d, sinkURL)
			if err != nil {
				return nil, err
			}
			return ironE2E{s}, nil
		}})
		if !b.o.peers {
			continue
		}
		for _, tuned := range []bool{false, true} {
			if b.o.quick && !tuned {
				continue
			}
			tuned := tuned
			dcfg, rcfg := "defaults (queue polling 1 s)", "defaults (fetch 100 ms/1 s, 100 workers)"
			poll := time.Duration(0)
			if tuned {
				dcfg, rcfg, poll = "tuned (queue polling 10 ms)", "tuned (fetch 2 ms/20 ms, 2,000 workers)", 10*time.Millisecond
			}
			dbosStarts, riverStarts := 0, 0 // each start on a database of its own, as ironflow's
			specs = append(specs, e2eSystemSpec{"DBOS", backend, dcfg, func(ctx context.Context) (e2eSystem, error) {
				dbosStarts++
				d, err := dsn(ctx, fmt.Sprintf("e2e_dbos_%t_%d", tuned, dbosStarts))
				if err != nil {
					return nil, err
				}
				return startDBOS(ctx, backend, d, sinkURL, poll)
			}})
			specs = append(specs, e2eSystemSpec{"River", backend, rcfg, func(ctx context.Context) (e2eSystem, error) {
				riverStarts++
				if backend == "postgres" {
					d, err := dsn(ctx, fmt.Sprintf("e2e_river_%t_%d", tuned, riverStarts))
					if err != nil {
						return nil, err
					}
					return startRiverPG(ctx, d, sinkURL, tuned)
				}
				dir := filepath.Join(b.tmp, fmt.Sprintf("river-%t-%d", tuned, riverStarts))
				if err := mkdir(dir); err != nil {
					return nil, err
				}
				return startRiverSQLite(ctx, dir, sinkURL, tuned)
			}})
		}
	}
	return specs
}

// e2eSection: open-loop arrivals at fixed rates; each workflow's one effect POSTs to the
// sink, whose answer completes it. Then the highest rate sustained, searched upwards
// (×1.5) from 1,000/s or downwards (÷1.4) from it. Last, ironflow's tail against each
// tuned peer's at the peer's highest sustained rate (e2eTails).
func (b *bench) e2eSection(ctx context.Context) error {
	sk, err := startSink()
	if err != nil {
		return err
	}
	defer sk.close()
	if slices.Contains(b.backends(), "postgres") {
		b.pgMeter = newCPUMeter(ctx, b.o.pgURL)
	}
	specs := b.e2eSystems(sk.url)
	for _, spec := range specs {
		sys, err := spec.start(ctx)
		if err != nil {
			b.logf("e2e %s %s %s: cannot start: %v", spec.system, spec.backend, spec.config, err)
			b.e2e = append(b.e2e, e2eRow{system: spec.system, backend: spec.backend, config: spec.config + " — failed to start: " + firstLine(err)})
			continue
		}
		rates := slices.Clone(b.e2eRates)
		steps := 3
		if b.o.quick {
			steps = 1
		}
		// After the fixed rates, search: ×1.5 while sustained, ÷1.4 while not, and stop
		// when the answer flips (the highest sustained rate is then known within 1.5×).
		dir := 0
		for i := 0; i < len(rates); i++ {
			row := b.e2eRun(ctx, spec, sys, rates[i], b.e2eWindow, "")
			b.e2e = append(b.e2e, row)
			if i == len(rates)-1 && steps > 0 {
				steps--
				switch {
				case row.sustained && dir >= 0:
					dir = 1
					rates = append(rates, math.Round(rates[i]*1.5))
				case !row.sustained && dir <= 0 && rates[i]/1.4 >= 50:
					dir = -1
					rates = append(rates, math.Round(rates[i]/1.4))
				}
			}
			if !row.sustained && row.completed < row.n/2 && rates[i] >= 1000 {
				// Far behind: its backlog would spoil the next step.
				break
			}
		}
		sys.close()
	}
	b.e2eTails(ctx, specs)
	return nil
}

// tailRounds and tailSamples shape a tail comparison: ironflow and a tuned peer take
// turns for tailRounds rounds, each on a fresh start and as long as a run of the
// search, or longer where that gives each system fewer than tailSamples workflows at
// the peer's highest sustained rate, each after tailWarm of the same load that is not
// counted. A p99 is then at worst the 20th-worst of 2,000 workflows rather than the
// 5th-worst of 500, and a slow spell of the shared machine (a stalled load generator,
// a neighbour's burst) falls on both systems' turns alike instead of deciding the
// verdict by landing in one system's only run.
const (
	tailRounds  = 4
	tailSamples = 2000
	tailWarm    = time.Second
)

// tailRow is a tail comparison: ironflow's and a peer's runs, one per round, at the
// peer's highest sustained rate.
type tailRow struct {
	backend, peer, config string
	rate                  float64
	iron, other           []e2eRow
}

// pooled returns the workflows of every round of rows as one row.
func pooled(rows []e2eRow) e2eRow {
	var acc e2eRow
	for _, r := range rows {
		acc = pool(acc, r)
	}
	return acc
}

// e2eTails compares tails with each tuned peer, on each backend, at the highest rate
// the peer sustained (see tailRounds). ironflow goes first in odd rounds, the peer in
// even ones.
func (b *bench) e2eTails(ctx context.Context, specs []e2eSystemSpec) {
	rounds, samples := tailRounds, tailSamples
	if b.o.quick {
		rounds, samples = 2, 500
	}
peers:
	for _, peer := range specs {
		if peer.system == "ironflow" || !strings.HasPrefix(peer.config, "tuned") {
			continue
		}
		top, ok := b.best(peer.system, peer.backend, peer.config)
		i := slices.IndexFunc(specs, func(s e2eSystemSpec) bool { return s.system == "ironflow" && s.backend == peer.backend })
		if !ok || i < 0 {
			continue
		}
		iron := specs[i]
		// Each round is as long as a run of the search, so a system whose backlog grows
		// over a run shows it here too; more rounds' worth only when the rate is low.
		window := max(b.e2eWindow, time.Duration(float64(samples)/top.rate/float64(rounds)*float64(time.Second)))
		row := tailRow{backend: peer.backend, peer: peer.system, config: peer.config, rate: top.rate}
		for r := range rounds {
			turns := []e2eSystemSpec{iron, peer}
			if r%2 == 1 {
				turns[0], turns[1] = peer, iron
			}
			for _, spec := range turns {
				b.quiet(ctx, spec.backend)
				sys, err := spec.start(ctx)
				if err != nil {
					b.logf("tails %s %s %s: cannot start: %v", spec.system, spec.backend, spec.config, err)
					continue peers
				}
				// A second of the same load first, not counted: the tails compared are
				// those of running systems, not of their first requests (new
				// connections, cold caches), for ironflow and the peer alike.
				b.e2eRun(ctx, spec, sys, top.rate, tailWarm, fmt.Sprintf("warm%d-", r))
				got := b.e2eRun(ctx, spec, sys, top.rate, window, fmt.Sprintf("tail%d-", r))
				sys.close()
				if spec.system == "ironflow" {
					row.iron = append(row.iron, got)
				} else {
					row.other = append(row.other, got)
				}
			}
		}
		b.tails = append(b.tails, row)
		ip, op := pooled(row.iron), pooled(row.other)
		b.logf("tails %-8s ironflow against %s %s at %.0f/s over %d rounds: p99 %s vs %s (p50 %s vs %s; %d and %d workflows)",
			row.backend, row.peer, row.config, row.rate, rounds, ms(ip.lat.pct(0.99)), ms(op.lat.pct(0.99)),
			ms(ip.lat.pct(0.5)), ms(op.lat.pct(0.5)), ip.completed, op.completed)
	}
}

// pool adds run's workflows to acc.
func pool(acc, run e2eRow) e2eRow {
	if acc.n == 0 {
		acc = e2eRow{system: run.system, backend: run.backend, config: run.config, rate: run.rate, sustained: true}
	}
	acc.n += run.n
	acc.completed += run.completed
	acc.late += run.late
	acc.startErrors += run.startErrors
	acc.lat.samples = append(acc.lat.samples, run.lat.samples...)
	acc.sustained = acc.sustained && run.sustained
	acc.cpu += run.cpu
	return acc
}

// e2eRun runs spec's system at rate for window. tag sets its workflow ids apart from
// an earlier run's on the same database.
func (b *bench) e2eRun(ctx context.Context, spec e2eSystemSpec, sys e2eSystem, rate float64, window time.Duration, tag string) e2eRow {
	prefix := fmt.Sprintf("%s-%s-%.0f-%s", strings.ToLower(spec.system), spec.backend, rate, tag)
	meter := cpuMeter{} // SQLite runs in this process
	if spec.backend == "postgres" {
		meter = b.pgMeter
	}
	self0, db0 := meter.read()
	sent, lat, late := openLoop(ctx, rate, window, func(ctx context.Context, seq int) error {
		return sys.start(ctx, fmt.Sprintf("%s%d", prefix, seq))
	})
	drain := 10 * time.Second
	if b.o.quick {
		drain = 4 * time.Second
	}
	deadline := time.Now().Add(drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p, err := sys.pending(ctx); err == nil && !p {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	self1, db1 := meter.read()
	row := e2eRow{system: spec.system, backend: spec.backend, config: spec.config, rate: rate, n: len(sent), late: late,
		cpu: self1 - self0 + db1 - db0}
	comp, err := sys.completions(ctx)
	if err != nil {
		b.logf("e2e %s: completions: %v", spec.system, err)
	}
	var first, last time.Time
	for i, s := range sent {
		if lat[i] == 0 {
			row.startErrors++
			continue
		}
		c, ok := comp[fmt.Sprintf("%s%d", prefix, i)]
		if !ok {
			continue
		}
		row.completed++
		row.lat.samples = append(row.lat.samples, max(0, c.Sub(s)))
		if first.IsZero() || c.Before(first) {
			first = c
		}
		if c.After(last) {
			last = c
		}
	}
	if row.completed > 1 && last.After(first) {
		row.throughput = float64(row.completed-1) / last.Sub(first).Seconds()
	}
	row.sustained = row.startErrors == 0 && row.completed == row.n && row.throughput >= 0.9*rate
	b.logf("e2e %-8s %-8s %-40s %6.0f/s: completed %d/%d at %7.0f/s p50 %s p99 %s sustained=%t (late %d, start errors %d) cpu/workflow %s",
		spec.system, spec.backend, spec.config, rate, row.completed, row.n, row.throughput,
		ms(row.lat.pct(0.5)), ms(row.lat.pct(0.99)), row.sustained, late, row.startErrors, us(row.cpu/time.Duration(max(1, row.completed))))
	return row
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
