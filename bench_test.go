package resman_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/internal/baseline"
)

// Benchmarks, each beside its baseline: the raw protoactor round trip, raw
// signals and waits, raw goroutines. BENCHMARKS.md has the numbers and the
// command.

func benchManager(b *testing.B, opts ...resman.Option) *resman.Manager {
	b.Helper()
	m, err := resman.New(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	return m
}

func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

type ping struct{}

// BenchmarkRoundTrip: RegisterTask + UnregisterTask of a started task
// against one raw protoactor RequestFuture round trip to a trivial actor.
func BenchmarkRoundTrip(b *testing.B) {
	b.Run("raw=protoactor-request-future", func(b *testing.B) {
		system := quietSystem()
		defer system.Shutdown()
		echo := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if _, ok := ctx.Message().(*ping); ok {
				ctx.Respond(&ping{})
			}
		}))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := system.Root.RequestFuture(echo, &ping{}, 10*time.Second).Result(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("resman=register+unregister-task", func(b *testing.B) {
		m := benchManager(b)
		ctx := context.Background()
		task := resman.StartTask(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil })
		defer task.Cancel()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := m.RegisterTask(ctx, "k", task); err != nil {
				b.Fatal(err)
			}
			if _, err := m.UnregisterTask(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	// From 8 goroutines.
	b.Run("raw=protoactor-request-future/parallel8", func(b *testing.B) {
		system := quietSystem()
		defer system.Shutdown()
		echo := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if _, ok := ctx.Message().(*ping); ok {
				ctx.Respond(&ping{})
			}
		}))
		b.SetParallelism(8 / runtime.GOMAXPROCS(0))
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := system.Root.RequestFuture(echo, &ping{}, 10*time.Second).Result(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("resman=register+unregister-task/parallel8", func(b *testing.B) {
		m := benchManager(b)
		ctx := context.Background()
		task := resman.StartTask(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil })
		defer task.Cancel()
		var next atomic.Int64
		b.SetParallelism(8 / runtime.GOMAXPROCS(0))
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			key := strconv.FormatInt(next.Add(1), 10)
			for pb.Next() {
				if err := m.RegisterTask(ctx, key, task); err != nil {
					b.Error(err)
					return
				}
				if _, err := m.UnregisterTask(ctx, key); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// startGroupLeaders starts n `sleep 300` processes, each leading its own group.
func startGroupLeaders(tb testing.TB, n int, script string) []*exec.Cmd {
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmds[i] = exec.Command("/bin/sh", "-c", script)
		cmds[i].SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmds[i].Start(); err != nil {
			tb.Fatal(err)
		}
	}
	return cmds
}

// BenchmarkCleanupAllProcesses: CleanupAll of 500 processes that exit on
// SIGTERM, against SIGTERM to every group and reaping all in parallel.
func BenchmarkCleanupAllProcesses(b *testing.B) {
	const n = 500
	b.Run("raw=sigterm-groups+parallel-wait", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			cmds := startGroupLeaders(b, n, "exec sleep 300")
			b.StartTimer()
			termAndReap(cmds)
		}
	})
	b.Run("resman=cleanup-all", func(b *testing.B) {
		m := benchManager(b)
		ctx := context.Background()
		for range b.N {
			b.StopTimer()
			for i, c := range startGroupLeaders(b, n, "exec sleep 300") {
				if err := m.RegisterProcess(ctx, strconv.Itoa(i), c); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			if err := m.CleanupAll(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCleanupAllStubborn: 100 SIGTERM-ignoring processes with a 1 s
// grace period (a stop one after another would take 100 s).
func BenchmarkCleanupAllStubborn(b *testing.B) {
	const n = 100
	m := benchManager(b, resman.WithDefaultTimeout(time.Second))
	ctx := context.Background()
	dir := b.TempDir()
	for it := range b.N {
		b.StopTimer()
		f := fmt.Sprintf("%s/ready%d", dir, it)
		for i := range n {
			cmd := exec.Command("/bin/sh", "-c", `trap "" TERM; echo x >> `+f+`; exec sleep 300`)
			if err := m.StartProcess(ctx, strconv.Itoa(i), cmd); err != nil {
				b.Fatal(err)
			}
		}
		for { // every trap is installed
			data, _ := os.ReadFile(f)
			if strings.Count(string(data), "x") == n {
				break
			}
			runtime.Gosched()
		}
		b.StartTimer()
		if err := m.CleanupAll(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCleanupAllTasks: CleanupAll of 10,000 cooperative tasks, against
// cancelling them all and waiting on a WaitGroup.
func BenchmarkCleanupAllTasks(b *testing.B) {
	const n = 10000
	coop := func(ctx context.Context) error { <-ctx.Done(); return nil }
	b.Run("raw=cancel+waitgroup", func(b *testing.B) { baseline.CancelAll(b, n) })
	b.Run("resman=cleanup-all", func(b *testing.B) {
		m := benchManager(b)
		ctx := context.Background()
		for range b.N {
			b.StopTimer()
			for i := range n {
				if _, err := m.Go(ctx, strconv.Itoa(i), coop); err != nil {
					b.Fatal(err)
				}
			}
			runtime.GC() // the setup's garbage is not the timed part's
			b.StartTimer()
			if err := m.CleanupAll(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func threadCount() int {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return -1
}

// BenchmarkIdleProcessThreads: OS threads added by watching 1,000 idle
// processes, against os.Process.Wait in a goroutine per process. Go never
// gives a thread back, so each side is measured in a fresh process: the
// benchmark runs this test binary again as TestHelperThreadProbe.
func BenchmarkIdleProcessThreads(b *testing.B) {
	for _, mode := range []string{"raw=process-wait-per-goroutine", "resman=pidfd-netpoller"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				cmd := exec.Command(os.Args[0], "-test.run=^TestHelperThreadProbe$")
				cmd.Env = append(os.Environ(), "RESMAN_THREAD_PROBE="+mode)
				out, err := cmd.CombinedOutput()
				if err != nil {
					b.Fatalf("%v: %s", err, out)
				}
				var added int
				if _, err := fmt.Sscanf(string(out), "threads-added %d", &added); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
				b.ReportMetric(float64(added), "threads-added")
			}
		})
	}
}

// TestHelperThreadProbe is not a test: it is the fresh process that
// BenchmarkIdleProcessThreads measures, and does nothing unless it sets
// RESMAN_THREAD_PROBE.
func TestHelperThreadProbe(t *testing.T) {
	mode := os.Getenv("RESMAN_THREAD_PROBE")
	if mode == "" {
		return
	}
	cmds := startGroupLeaders(t, 1000, "exec sleep 300")
	before := threadCount()
	var m *resman.Manager
	var waits sync.WaitGroup
	if mode == "raw=process-wait-per-goroutine" {
		for _, c := range cmds {
			waits.Add(1)
			go func() { defer waits.Done(); _ = c.Wait() }()
		}
	} else {
		var err error
		m, err = resman.New()
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cmds {
			if err := m.RegisterProcess(context.Background(), strconv.Itoa(i), c); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Let the waits settle: threads appear as goroutines block.
	deadline := time.Now().Add(2 * time.Second)
	peak := 0
	for time.Now().Before(deadline) {
		peak = max(peak, threadCount()-before)
		time.Sleep(10 * time.Millisecond) // sampling, not synchronising
	}
	fmt.Printf("threads-added %d\n", peak)
	if m != nil {
		_ = m.Shutdown(context.Background()) // stops and reaps them all
	} else {
		for _, c := range cmds {
			_ = c.Process.Kill()
		}
		waits.Wait() // reaped by their goroutines
	}
	os.Exit(0) // skip the test framework: this is a measurement, not a test
}

// BenchmarkExitLatency: from a process's exit to WaitProcess returning,
// against cmd.Wait. The process exits when its stdin closes; the clock
// starts at the close.
func BenchmarkExitLatency(b *testing.B) {
	start := func(b *testing.B) (*exec.Cmd, io.WriteCloser) {
		cmd := exec.Command("/bin/sh", "-c", "read x; exit 0")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		w, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		return cmd, w
	}
	report := func(b *testing.B, lat []time.Duration) {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "µs-median")
	}
	b.Run("raw=cmd-wait", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for range b.N {
			cmd, w := start(b)
			t0 := time.Now()
			_ = w.Close()
			_ = cmd.Wait()
			lat = append(lat, time.Since(t0))
		}
		report(b, lat)
	})
	b.Run("resman=wait-process", func(b *testing.B) {
		m := benchManager(b)
		ctx := context.Background()
		lat := make([]time.Duration, 0, b.N)
		for i := range b.N {
			cmd, w := start(b)
			key := strconv.Itoa(i)
			if err := m.RegisterProcess(ctx, key, cmd); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			_ = w.Close()
			if _, err := m.WaitProcess(ctx, key); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
			if err := m.StopProcess(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
		report(b, lat)
	})
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemoryPerResource: heap per tracked task and custom resource
// beyond the resource itself (10,000 registered).
func BenchmarkMemoryPerResource(b *testing.B) {
	const n = 10000
	b.Run("custom-resource", func(b *testing.B) {
		for range b.N {
			m := benchManager(b)
			ctx := context.Background()
			values := make([]*int, n)
			for i := range values {
				values[i] = new(int)
			}
			before := heapInUse()
			for i, v := range values {
				if err := m.RegisterCustomResource(ctx, strconv.Itoa(i), v, noop); err != nil {
					b.Fatal(err)
				}
			}
			after := heapInUse()
			b.ReportMetric(float64(after-before)/n, "B/resource")
			_ = m.Shutdown(ctx)
		}
	})
	b.Run("task", func(b *testing.B) {
		for range b.N {
			m := benchManager(b)
			ctx := context.Background()
			tasks := make([]*resman.Task, n)
			for i := range tasks {
				tasks[i] = resman.StartTask(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil })
			}
			before := heapInUse()
			for i, t := range tasks {
				if err := m.RegisterTask(ctx, strconv.Itoa(i), t); err != nil {
					b.Fatal(err)
				}
			}
			after := heapInUse()
			b.ReportMetric(float64(after-before)/n, "B/resource")
			_ = m.Shutdown(ctx)
		}
	})
}

// BenchmarkStatus: Status with 10,000 tracked resources.
func BenchmarkStatus(b *testing.B) {
	m := benchManager(b)
	ctx := context.Background()
	for i := range 10000 {
		if err := m.RegisterCustomResource(ctx, strconv.Itoa(i), i, noop); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		st, err := m.Status(ctx)
		if err != nil || len(st.CustomResources) != 10000 {
			b.Fatal(err, len(st.CustomResources))
		}
	}
}

// BenchmarkScale: register, report and clean up 1k, 10k and 100k tasks.
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) {
			coop := func(ctx context.Context) error { <-ctx.Done(); return nil }
			for range b.N {
				m := benchManager(b)
				ctx := context.Background()
				t0 := time.Now()
				for i := range n {
					if _, err := m.Go(ctx, strconv.Itoa(i), coop); err != nil {
						b.Fatal(err)
					}
				}
				t1 := time.Now()
				st, err := m.Status(ctx)
				if err != nil || len(st.Tasks) != n {
					b.Fatal(err, len(st.Tasks))
				}
				t2 := time.Now()
				if err := m.CleanupAll(ctx); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				b.ReportMetric(float64(t1.Sub(t0).Nanoseconds())/float64(n), "ns/register")
				b.ReportMetric(float64(t2.Sub(t1).Milliseconds()), "ms-status")
				b.ReportMetric(float64(t3.Sub(t2).Milliseconds()), "ms-cleanup-all")
				_ = m.Shutdown(ctx)
			}
		})
	}
}

// termAndReap is the raw stop of process group leaders: SIGTERM to every
// group, then a parallel reap.
func termAndReap(cmds []*exec.Cmd) {
	var wg sync.WaitGroup
	for _, c := range cmds {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Wait() }()
	}
	wg.Wait()
}
