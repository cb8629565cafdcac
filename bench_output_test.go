package resman_test

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resman-dev/resman"
)

const (
	outputBenchLines   = 1_000_000
	outputBenchLineLen = 100 // bytes, '\n' included
)

// BenchmarkOutputThroughput: a supervised process (`cat` of a file of
// 1,000,000 lines of 100 bytes) has its output captured and every line
// handed to an output hook that counts it; an op ends when the process has
// exited and every line was delivered or counted as dropped. Baseline: a
// bufio.Scanner reading the same process's stdout pipe. BENCHMARKS.md has
// the numbers and the command.
func BenchmarkOutputThroughput(b *testing.B) {
	path := filepath.Join(b.TempDir(), "lines")
	script := `BEGIN { s = sprintf("%099d", 0); gsub(/0/, "x", s); for (i = 0; i < n; i++) print s > path }`
	if out, err := exec.Command("awk", "-v", "n="+strconv.Itoa(outputBenchLines), "-v", "path="+path, script).CombinedOutput(); err != nil {
		b.Fatalf("awk: %v: %s", err, out)
	}
	b.Run("raw=scanner", func(b *testing.B) {
		b.SetBytes(outputBenchLines * outputBenchLineLen)
		for range b.N {
			cmd := exec.Command("cat", path)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				b.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			n := 0
			s := bufio.NewScanner(stdout)
			for s.Scan() {
				n++
			}
			if err := s.Err(); err != nil {
				b.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
			if n != outputBenchLines {
				b.Fatalf("%d lines, want %d", n, outputBenchLines)
			}
		}
	})
	b.Run("resman=supervise", func(b *testing.B) {
		var delivered atomic.Int64
		m := benchManager(b, resman.WithOutputHook(func(resman.OutputLine) { delivered.Add(1) }))
		ctx := context.Background()
		b.SetBytes(outputBenchLines * outputBenchLineLen)
		dropped := 0
		for i := range b.N {
			delivered.Store(0)
			key := "cat" + strconv.Itoa(i)
			if err := m.Supervise(ctx, key, resman.ProcessSpec{Command: []string{"cat", path}}); err != nil {
				b.Fatal(err)
			}
			if code, err := waitExitCode(ctx, m, key); err != nil || code != 0 {
				b.Fatalf("cat: exit %d, %v", code, err)
			}
			dropped += allLinesAccounted(b, m, key, &delivered)
			if _, err := m.UnregisterProcess(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(dropped)/float64(b.N), "dropped/op")
	})
}

func waitExitCode(ctx context.Context, m *resman.Manager, key string) (int, error) {
	st, err := m.WaitProcess(ctx, key)
	if err != nil {
		return -1, err
	}
	return st.ExitCode(), nil
}

// allLinesAccounted waits until every line of key's run was delivered to the
// hook or dropped (the capture finishes reading the pipe after the reap), and
// returns how many were dropped. It polls Status every millisecond.
func allLinesAccounted(b *testing.B, m *resman.Manager, key string, delivered *atomic.Int64) int {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(time.Minute)
	for {
		if delivered.Load() == outputBenchLines {
			return 0
		}
		st, err := m.Status(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range st.Processes {
			if p.Key == key && delivered.Load()+int64(p.DroppedLines) == outputBenchLines {
				return p.DroppedLines
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d lines delivered after a minute, want %d with the dropped ones", delivered.Load(), outputBenchLines)
		}
		<-tick.C
	}
}
