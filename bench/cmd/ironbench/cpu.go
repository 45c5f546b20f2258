package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// CPU accounting of a closed-loop window: the CPU time this process (load generator,
// ironflow's server or the ceiling's client) and the PostgreSQL server (every process
// of its cluster: backends, WAL writer, checkpointer) used while it ran, read from
// /proc. On a machine where all of them share the cores, CPU per input is what bounds
// a rate once the cores are busy, and it does not move with the load of other
// processes the way a rate does. Without /proc (or for SQLite, which runs in this
// process) the database's share is zero.

// cpuUse is the CPU time used during one window.
type cpuUse struct {
	self, db time.Duration
	wall     time.Duration
}

// cpuMeter reads the CPU time of this process and of the database's processes.
type cpuMeter struct {
	postmaster int // 0: no database processes to read
}

// newCPUMeter finds the PostgreSQL cluster behind dbURL (the parent of a backend of
// it); dbURL "" (SQLite) or a cluster on another machine gives a meter of this process
// alone.
func newCPUMeter(ctx context.Context, dbURL string) cpuMeter {
	if dbURL == "" {
		return cpuMeter{}
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return cpuMeter{}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		return cpuMeter{}
	}
	// A backend of a server on another machine has a pid that may name any process
	// here: only a local PostgreSQL backend's parent is the server.
	st, ok := procStat(pid)
	if !ok || st.comm != "postgres" {
		return cpuMeter{}
	}
	return cpuMeter{postmaster: st.ppid}
}

// read returns the CPU time used so far by this process and by the database's.
func (m cpuMeter) read() (self, db time.Duration) {
	if st, ok := procStat(os.Getpid()); ok {
		self = st.cpu
	}
	if m.postmaster == 0 {
		return self, 0
	}
	if st, ok := procStat(m.postmaster); ok {
		db = st.cpu
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, ok := procStat(pid); ok && st.ppid == m.postmaster {
			db += st.cpu
		}
	}
	return self, db
}

// during returns the CPU used between from and to, read by a goroutine at those times;
// the channel yields once, after to.
func (m cpuMeter) during(from, to time.Time) <-chan cpuUse {
	out := make(chan cpuUse, 1)
	go func() {
		time.Sleep(time.Until(from))
		s0, d0 := m.read()
		t0 := time.Now()
		time.Sleep(time.Until(to))
		s1, d1 := m.read()
		out <- cpuUse{self: s1 - s0, db: d1 - d0, wall: time.Since(t0)}
	}()
	return out
}

type procStatus struct {
	comm string
	ppid int
	cpu  time.Duration // user + system
}

// clockTick is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on Linux.
const clockTick = 10 * time.Millisecond

func procStat(pid int) (procStatus, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStatus{}, false
	}
	// The command name is in parentheses and may hold spaces: fields count from the
	// last ')'. After it: state ppid … utime (14th field of the line) stime (15th).
	i := bytes.LastIndexByte(b, ')')
	j := bytes.IndexByte(b, '(')
	if i < 0 || j < 0 || j > i {
		return procStatus{}, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return procStatus{}, false
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	stt, _ := strconv.ParseInt(string(f[12]), 10, 64)
	return procStatus{comm: string(b[j+1 : i]), ppid: ppid, cpu: time.Duration(ut+stt) * clockTick}, true
}

// perInput is u's CPU per operation of n, split as this process, the database.
func (u cpuUse) perInput(n int) (self, db time.Duration) {
	if n == 0 {
		return 0, 0
	}
	return u.self / time.Duration(n), u.db / time.Duration(n)
}

// busy is the share of the machine's cores u kept busy.
func (u cpuUse) busy(cores int) float64 {
	if u.wall <= 0 || cores <= 0 {
		return 0
	}
	return float64(u.self+u.db) / float64(u.wall) / float64(cores)
}

func (u cpuUse) add(v cpuUse) cpuUse {
	return cpuUse{self: u.self + v.self, db: u.db + v.db, wall: u.wall + v.wall}
}

// us formats d in microseconds.
func us(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) + " µs" }

// cpuTimes are the machine's CPU times from /proc/stat: all of them, and steal, the
// time the hypervisor ran something else while this machine's cores wanted to run.
type cpuTimes struct{ total, steal int64 }

// machineTimes reads the first line of /proc/stat; ok is false without it.
func machineTimes() (t cpuTimes, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, false
	}
	return parseCPULine(b)
}

// parseCPULine reads the times of /proc/stat's first line, "cpu user nice system idle
// iowait irq softirq steal …", in clock ticks.
func parseCPULine(stat []byte) (t cpuTimes, ok bool) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return cpuTimes{}, false
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(string(v), 10, 64)
		if i < 8 { // user … steal; guest time is counted in user already
			t.total += n
		}
		if i == 7 {
			t.steal = n
		}
	}
	return t, true
}

// stealShare is the share of the machine's CPU time between t0 and t1 that went to
// steal.
func stealShare(t0, t1 cpuTimes) float64 {
	if t1.total <= t0.total {
		return 0
	}
	return float64(t1.steal-t0.steal) / float64(t1.total-t0.total)
}
