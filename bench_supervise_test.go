package resman_test

import (
	"context"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/resman-dev/resman"
)

// Benchmarks of supervision, each beside its raw baseline: a restart loop
// written by hand, and processes stopped level by level by hand.
// BENCHMARKS.md ("Supervision") has the numbers and the command.

// restartsPerOp is how many exit → restart cycles one benchmark op is, so
// that a small -benchtime (3x) still gives hundreds of samples.
const restartsPerOp = 100

// reportLatencies reports the median and the 90th percentile of lat in ms.
func reportLatencies(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		b.Fatal("no samples")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "ms-median")
	b.ReportMetric(ms(lat[len(lat)*9/10]), "ms-p90")
}

// eventLog keeps the events an event hook sees. The hook never blocks: it
// appends under a mutex and wakes the benchmark with a non-blocking send.
type eventLog struct {
	mu        sync.Mutex
	events    []resman.Event
	restarted atomic.Int64
	wake      chan struct{} // capacity 1: a pending wake-up covers every later restart
}

func newEventLog() *eventLog { return &eventLog{wake: make(chan struct{}, 1)} }

func (l *eventLog) hook(ev resman.Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
	if ev.Type == resman.EventRestarted {
		l.restarted.Add(1)
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// waitRestarts waits until n runs were restarted, or d has passed.
func (l *eventLog) waitRestarts(n int64, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for l.restarted.Load() < n {
		select {
		case <-l.wake:
		case <-deadline.C:
			return false
		}
	}
	return true
}

// gaps returns, for each restart, EventRestarted.At − EventExited.At −
// EventRestarting.Delay: the cost of a restart beyond the backoff wait.
func (l *eventLog) gaps() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	var exitAt time.Time
	delay := time.Duration(-1)
	for _, ev := range l.events {
		switch ev.Type {
		case resman.EventExited:
			exitAt, delay = ev.At, -1
		case resman.EventRestarting:
			delay = ev.Delay
		case resman.EventRestarted:
			if !exitAt.IsZero() && delay >= 0 {
				out = append(out, ev.At.Sub(exitAt)-delay)
			}
			exitAt, delay = time.Time{}, -1
		}
	}
	return out
}

// BenchmarkSuperviseRestart: from a supervised run's exit to the next run
// started, minus the backoff delay (RestartOnFailure, 1 ms backoff; the
// command exits at once, so one Supervise gives every sample), against
// what a restart loop written by hand pays between Wait returning and the
// next Start returning. Both report ms-median and ms-p90; an op is
// restartsPerOp cycles.
func BenchmarkSuperviseRestart(b *testing.B) {
	argv := []string{"/bin/sh", "-c", "exit 1"}
	b.Run("raw=start-after-wait", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N*restartsPerOp)
		for range b.N * restartsPerOp {
			t0 := time.Now() // the previous run was just reaped
			cmd := exec.Command(argv[0], argv[1:]...)
			// What resman gives each run: its own group, a parent-death signal.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
			_ = cmd.Wait() // exit status 1
		}
		b.StopTimer()
		reportLatencies(b, lat)
	})
	b.Run("resman=supervise-on-failure", func(b *testing.B) {
		log := newEventLog()
		m := benchManager(b, resman.WithEventHook(log.hook))
		ctx := context.Background()
		policy := resman.RestartPolicy{Mode: resman.RestartOnFailure, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}
		if err := m.Supervise(ctx, "p", resman.ProcessSpec{Command: argv}, resman.WithRestart(policy)); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		ok := log.waitRestarts(int64(b.N*restartsPerOp), time.Duration(b.N)*time.Minute)
		b.StopTimer()
		if err := m.StopProcess(ctx, "p"); err != nil {
			b.Fatal(err)
		}
		if !ok {
			b.Fatalf("%d restarts, want %d", log.restarted.Load(), b.N*restartsPerOp)
		}
		reportLatencies(b, log.gaps())
	})
}

// The dependency tree of BenchmarkCleanupAllDependencyTree: 10 roots, 9
// children each, 10 grandchildren per child: 1,000 processes.
const (
	treeRoots    = 10
	treeChildren = 9
	treeGrand    = 10
)

// BenchmarkCleanupAllDependencyTree: CleanupAll of 1,000 processes that exit
// on SIGTERM, in a dependency tree of depth 3 (grandchildren DependsOn their
// child, children on their root), against stopping the same processes by
// hand level by level: SIGTERM every group of a level, reap the whole level
// in parallel, then the next level up.
func BenchmarkCleanupAllDependencyTree(b *testing.B) {
	const script = "exec sleep 300"
	b.Run("raw=sigterm-level-by-level", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			roots := startGroupLeaders(b, treeRoots, script)
			children := startGroupLeaders(b, treeRoots*treeChildren, script)
			grand := startGroupLeaders(b, treeRoots*treeChildren*treeGrand, script)
			b.StartTimer()
			for _, level := range [][]*exec.Cmd{grand, children, roots} {
				termAndReap(level)
			}
		}
	})
	b.Run("resman=cleanup-all", func(b *testing.B) {
		m := benchManager(b)
		ctx := context.Background()
		start := func(key string, opts ...resman.ResourceOption) {
			if err := m.StartProcess(ctx, key, exec.Command("/bin/sh", "-c", script), opts...); err != nil {
				b.Fatal(err)
			}
		}
		for range b.N {
			b.StopTimer()
			for r := range treeRoots {
				root := "r" + strconv.Itoa(r)
				start(root)
				for c := range treeChildren {
					child := root + "/c" + strconv.Itoa(c)
					start(child, resman.DependsOn(resman.KindProcess, root))
					for g := range treeGrand {
						start(child+"/g"+strconv.Itoa(g), resman.DependsOn(resman.KindProcess, child))
					}
				}
			}
			b.StartTimer()
			if err := m.CleanupAll(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
