// Command ironbench measures ironflow against the least SQL its decisions need (the
// ceiling) and against DBOS Transact and River doing the same work on the same
// database server, in one run, and writes the results as a Markdown table into
// docs/BENCHMARKS.md. Every figure that matters is a ratio of two systems measured in
// the same run, because the machines this runs on are shared and noisy.
//
//	go run ./cmd/ironbench -quick          # under 2 minutes
//	go run ./cmd/ironbench                 # under 15 minutes
//
// All traffic goes to 127.0.0.1: the server under test, the webhook sink and
// PostgreSQL. Each system gets its own fresh database (dropped at the end) or a
// temporary SQLite file.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ironflow/ironflow/internal/config"
)

type options struct {
	quick      bool
	pgURL      string
	out        string
	only       string // comma-separated sections: input,history,e2e,growth
	backends   string // comma-separated: postgres,sqlite
	clients    string // comma-separated closed-loop concurrencies of the input section
	peers      bool
	cpuProfile string
	memProfile string
	growthN    int64  // finished instances the growth section seeds
	growthDB   string // a database a previous growth run kept, to measure again unseeded
	growthKeep bool   // keep the seeded database
	growthOut  string // Markdown file whose growth block is rewritten
	growthPart string // comma-separated parts of the growth section to run
}

func main() {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "short run (under 2 minutes): shorter windows, one round, tuned peers only")
	flag.StringVar(&o.pgURL, "pg", envOr("IRONFLOW_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"PostgreSQL URL to create the benchmark databases from")
	flag.StringVar(&o.out, "out", "../docs/BENCHMARKS.md", "Markdown file whose ironbench block is rewritten (empty: print only)")
	flag.StringVar(&o.only, "only", "input,history,e2e", "sections to run (growth too, alone: `make bench-growth`)")
	flag.StringVar(&o.backends, "backends", "postgres,sqlite", "backends to run")
	flag.StringVar(&o.clients, "clients", "1,8,32,128", "input section: the closed-loop client counts to run")
	flag.BoolVar(&o.peers, "peers", true, "run DBOS and River in the end-to-end section")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile of the whole run to this file")
	flag.Int64Var(&o.growthN, "growth-n", 1_000_000, "growth section: finished instances to seed (and a tenth as many running)")
	flag.StringVar(&o.growthDB, "growth-db", "", "growth section: measure this already seeded database (kept by -growth-keep) instead of seeding one")
	flag.BoolVar(&o.growthKeep, "growth-keep", false, "growth section: keep the seeded database (its name is printed) for -growth-db")
	flag.StringVar(&o.growthOut, "growth-out", "../docs/SCALING.md", "Markdown file whose growth block is rewritten (empty: print only)")
	flag.StringVar(&o.growthPart, "growth-parts", "servers,inputs,lists,prune", "growth section: the parts to run")
	flag.Parse()
	// The collector as the server runs it (cmd/server), for the server in this process.
	config.TuneGC(os.Getenv)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The whole run stops by itself: a stuck system cannot keep it going.
	limit := 14 * time.Minute
	if o.quick {
		limit = 2 * time.Minute
	}
	if slices.Contains(strings.Split(o.only, ","), "growth") {
		limit = 6 * time.Hour // seeding 10 million instances takes hours on 2 cores
	}
	ctx, cancel := context.WithTimeout(ctx, limit+time.Minute)
	defer cancel()

	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ironbench:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.memProfile != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			if f, err := os.Create(o.memProfile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				_ = f.Close()
			}
		}()
	}
	b := &bench{o: o, log: stdout, dbs: &databases{admin: o.pgURL}, started: time.Now()}
	b.startTimes, _ = machineTimes()
	if err := b.plan(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ironbench-")
	if err != nil {
		return err
	}
	b.tmp = tmp
	defer os.RemoveAll(tmp)
	defer b.dbs.dropAll(context.WithoutCancel(ctx))

	sections := strings.Split(o.only, ",")
	if slices.Contains(sections, "input") {
		if err := b.inputSection(ctx); err != nil {
			return fmt.Errorf("input: %w", err)
		}
	}
	if slices.Contains(sections, "history") {
		if err := b.historySection(ctx); err != nil {
			return fmt.Errorf("history: %w", err)
		}
	}
	if slices.Contains(sections, "e2e") {
		if err := b.e2eSection(ctx); err != nil {
			return fmt.Errorf("e2e: %w", err)
		}
	}
	if slices.Contains(sections, "growth") {
		if err := b.growthSection(ctx); err != nil {
			return fmt.Errorf("growth: %w", err)
		}
		report := b.growthReport(ctx)
		fmt.Fprintln(stdout)
		fmt.Fprint(stdout, report)
		if o.growthOut != "" {
			begin, end := growthMarkers(o.growthN)
			if err := writeBlock(o.growthOut, begin, end, report); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "\nwritten to %s\n", o.growthOut)
		}
		if len(sections) == 1 {
			return nil
		}
	}
	report := b.report(ctx)
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, report)
	if o.out != "" {
		if err := writeBlock(o.out, blockBegin, blockEnd, report); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwritten to %s\n", o.out)
	}
	return nil
}

// bench holds the plan of a run and what it measured.
type bench struct {
	o          options
	log        io.Writer
	dbs        *databases
	tmp        string
	started    time.Time
	startTimes cpuTimes // the machine's CPU times when the run started (steal)

	// plan
	concurrencies []int
	warm, window  time.Duration
	rounds        int
	historyN      int
	e2eWindow     time.Duration
	e2eRates      []float64
	pgMeter       cpuMeter // the end-to-end section's reader of the PostgreSQL cluster's CPU

	// results
	inputs  []inputRow
	halfMax []halfMaxRow
	history []historyRow
	e2e     []e2eRow
	tails   []tailRow
	growth  growthResult
}

func (b *bench) plan() error {
	for c := range strings.SplitSeq(b.o.clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return fmt.Errorf("-clients: %q is not a client count", c)
		}
		b.concurrencies = append(b.concurrencies, n)
	}
	if b.o.quick {
		b.warm, b.window, b.rounds = 300*time.Millisecond, 1500*time.Millisecond, 1
		b.historyN = 150
		b.e2eWindow = 1500 * time.Millisecond
	} else {
		b.warm, b.window, b.rounds = time.Second, 4*time.Second, 2
		b.historyN = 600
		b.e2eWindow = 5 * time.Second
	}
	b.e2eRates = []float64{100, 1000}
	return nil
}

func (b *bench) backends() []string { return strings.Split(b.o.backends, ",") }

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "[%5.1fs] "+format+"\n", append([]any{time.Since(b.started).Seconds()}, args...)...)
}
