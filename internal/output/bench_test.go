package output

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const (
	benchLines   = 1_000_000
	benchLineLen = 100 // bytes, '\n' included
)

// benchOutput writes 1,000,000 lines of 100 bytes to a file and returns its
// path; the benchmarks' process is `cat` of it, so that the writer is as fast
// as a process can be and the reading side is what is measured.
func benchOutput(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "lines")
	script := `BEGIN { s = sprintf("%099d", 0); gsub(/0/, "x", s); for (i = 0; i < n; i++) print s > path }`
	if out, err := exec.Command("awk", "-v", "n=1000000", "-v", "path="+path, script).CombinedOutput(); err != nil {
		b.Fatalf("awk: %v: %s", err, out)
	}
	return path
}

// catLines runs `cat path` and hands its stdout to read, which returns once
// it has read to EOF.
func catLines(b *testing.B, path string, read func(pid int, stdout io.Reader)) {
	cmd := exec.Command("cat", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	read(cmd.Process.Pid, out)
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCaptureThroughput: a Capture reads a process's 1,000,000 lines of
// 100 bytes and a consumer counts them. Baseline: BenchmarkRawScanner.
func BenchmarkCaptureThroughput(b *testing.B) {
	path := benchOutput(b)
	b.SetBytes(benchLines * benchLineLen)
	b.ResetTimer()
	dropped := 0
	for range b.N {
		catLines(b, path, func(pid int, stdout io.Reader) {
			n := 0 // the consumer's goroutine's until Wait returns
			c := NewCapture("bench", pid, func(b *Batch) { b.Each(func(*Line) { n++ }) })
			c.Add(Stdout, stdout)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.Wait(ctx); err != nil {
				b.Fatal(err)
			}
			if n+c.Dropped() != benchLines {
				b.Fatalf("%d lines delivered and %d dropped, want %d in all", n, c.Dropped(), benchLines)
			}
			dropped += c.Dropped()
		})
	}
	b.ReportMetric(float64(dropped)/float64(b.N), "dropped/op")
}

// BenchmarkRawScanner is BenchmarkCaptureThroughput's baseline: a
// bufio.Scanner reads the same process's stdout and counts the lines.
func BenchmarkRawScanner(b *testing.B) {
	path := benchOutput(b)
	b.SetBytes(benchLines * benchLineLen)
	b.ResetTimer()
	for range b.N {
		catLines(b, path, func(_ int, stdout io.Reader) {
			n := 0
			s := bufio.NewScanner(stdout)
			for s.Scan() {
				n++
			}
			if err := s.Err(); err != nil {
				b.Fatal(err)
			}
			if n != benchLines {
				b.Fatalf("%d lines, want %d", n, benchLines)
			}
		})
	}
}

// BenchmarkRawScannerStrings is BenchmarkRawScanner that also makes each
// line a string, as every OutputLine needs: what a string per line costs
// (its allocation and the garbage collection it brings) on its own.
func BenchmarkRawScannerStrings(b *testing.B) {
	path := benchOutput(b)
	b.SetBytes(benchLines * benchLineLen)
	b.ResetTimer()
	for range b.N {
		catLines(b, path, func(_ int, stdout io.Reader) {
			n := 0
			s := bufio.NewScanner(stdout)
			for s.Scan() {
				if len(s.Text()) == benchLineLen-1 {
					n++
				}
			}
			if err := s.Err(); err != nil {
				b.Fatal(err)
			}
			if n != benchLines {
				b.Fatalf("%d lines, want %d", n, benchLines)
			}
		})
	}
}
