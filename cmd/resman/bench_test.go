package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/internal/hooks"
	"github.com/resman-dev/resman/internal/output"
)

// benchProcs is the size of the benchmarked Procfile.
const benchProcs = 50

// sleepFormation is a Procfile of n long-running lines, one instance each.
func sleepFormation(n int) []instance {
	ins := make([]instance, n)
	for i := range ins {
		ins[i] = instance{Type: fmt.Sprint("p", i), Index: i, N: 1, Key: fmt.Sprintf("p%d.1", i), Port: 5000 + 100*i, Cmd: "sleep 300"}
	}
	return ins
}

// BenchmarkProcfileStartStop: what `resman run` does for a Procfile of 50
// `sleep 300` lines, from a new manager to the last process reaped: New,
// Supervise each line (sh -c, its own group, PORT and PS, output captured
// and printed), then stop them all (SIGTERM, reap) and shut down. Baseline:
// BenchmarkProcfileStartStopRaw. BENCHMARKS.md has the numbers.
func BenchmarkProcfileStartStop(b *testing.B) {
	cfg := runConfig{instances: sleepFormation(benchProcs), grace: 5 * time.Second, restart: resman.RestartOnFailure, maxRestarts: 5}
	ctx := context.Background()
	for range b.N {
		out := newPrinter(io.Discard, false, instanceKeys(cfg.instances), typeIndexes(cfg.instances))
		r, err := newRunner(cfg, out)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.start(ctx); err != nil {
			b.Fatal(err)
		}
		r.shutdown()
		out.Close()
	}
}

// BenchmarkProcfileStartStopRaw is goreman's approach, raw: each line as
// sh -c LINE in a process group of its own (Setpgid), its output copied
// through os/exec's pipe to a writer, then kill(-pgid, SIGTERM) for each
// and a Wait for each.
func BenchmarkProcfileStartStopRaw(b *testing.B) {
	ins := sleepFormation(benchProcs)
	for range b.N {
		cmds := make([]*exec.Cmd, len(ins))
		for i, in := range ins {
			cmd := exec.Command("/bin/sh", "-c", in.Cmd)
			cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(in.Port), "PS="+in.Key)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Stdout, cmd.Stderr = discard{}, discard{}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			cmds[i] = cmd
		}
		for _, cmd := range cmds {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		}
		for _, cmd := range cmds {
			_ = cmd.Wait()
		}
	}
}

// discard is io.Discard without ReadFrom, so os/exec copies as it would
// to goreman's writer.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

const (
	prefixerLines   = 200_000
	prefixerLineLen = 100 // bytes, '\n' included
)

// drain is a pipe whose reading end a goroutine empties.
type drain struct {
	w    *os.File
	done chan struct{}
}

func newDrain(b *testing.B) *drain {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	d := &drain{w: w, done: make(chan struct{})}
	go func() { // owned by the benchmark: ends at close
		defer close(d.done)
		buf := make([]byte, 64*1024)
		for {
			if _, err := r.Read(buf); err != nil {
				_ = r.Close()
				return
			}
		}
	}()
	return d
}

func (d *drain) close() {
	_ = d.w.Close()
	<-d.done
}

// startCat starts `cat path` and returns it with its stdout.
func startCat(b *testing.B, path string) (*exec.Cmd, io.Reader) {
	cmd := exec.Command("cat", path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd, stdout
}

// linesFile writes prefixerLines lines of prefixerLineLen bytes.
func linesFile(b *testing.B) string {
	path := filepath.Join(b.TempDir(), "lines")
	script := `BEGIN { s = sprintf("%099d", 0); gsub(/0/, "x", s); for (i = 0; i < n; i++) print s > path }`
	if out, err := exec.Command("awk", "-v", "n="+strconv.Itoa(prefixerLines), "-v", "path="+path, script).CombinedOutput(); err != nil {
		b.Fatalf("awk: %v: %s", err, out)
	}
	return path
}

// BenchmarkPrefixer: a supervised `cat` of 200,000 lines of 100 bytes,
// each line through the runner's output path (captured, handed to the
// printer, prefixed "HH:MM:SS name.N | ", written whole to a pipe that a
// goroutine drains); an op ends when the process has exited and every
// line printed was read from the pipe. Baseline: the sub-benchmark raw,
// the same `cat`'s stdout copied to the same kind of pipe with io.Copy;
// and raw=line-writes, goreman's way of prefixing (a bufio.Scanner over
// the pipe, one prefixed write per line).
// Bytes per op are the process's output in both.
func BenchmarkPrefixer(b *testing.B) {
	path := linesFile(b)
	b.Run("raw=io.Copy", func(b *testing.B) {
		b.SetBytes(prefixerLines * prefixerLineLen)
		for range b.N {
			d := newDrain(b)
			cmd, stdout := startCat(b, path)
			if _, err := io.Copy(d.w, stdout); err != nil {
				b.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
			d.close()
		}
	})
	b.Run("raw=line-writes", func(b *testing.B) {
		// goreman's way: read lines, write each one prefixed, a write per line.
		b.SetBytes(prefixerLines * prefixerLineLen)
		for range b.N {
			d := newDrain(b)
			cmd, stdout := startCat(b, path)
			sc := bufio.NewScanner(stdout)
			var line []byte
			for sc.Scan() {
				line = time.Now().AppendFormat(line[:0], "15:04:05 ")
				line = append(append(append(line, "cat.1  | "...), sc.Bytes()...), '\n')
				if _, err := d.w.Write(line); err != nil {
					b.Fatal(err)
				}
			}
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
			d.close()
		}
	})
	b.Run("resman", func(b *testing.B) {
		var out atomic.Pointer[printer] // this op's
		// As the runner's printer does (newRunner).
		m, err := resman.New(hooks.OutputBytes(func(b *output.Batch) { out.Load().Output(b) }).(resman.Option))
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = m.Shutdown(context.Background()) }()
		ctx := context.Background()
		b.SetBytes(prefixerLines * prefixerLineLen)
		var dropped int
		for range b.N {
			d := newDrain(b)
			p := newPrinter(d.w, false, []string{"resman", "cat.1"}, map[string]int{})
			out.Store(p)
			if err := m.Supervise(ctx, "cat.1", resman.ProcessSpec{Command: []string{"cat", path}}); err != nil {
				b.Fatal(err)
			}
			if _, err := m.WaitProcess(ctx, "cat.1"); err != nil {
				b.Fatal(err)
			}
			st, err := m.Status(ctx)
			if err != nil {
				b.Fatal(err)
			}
			dropped += st.Processes[0].DroppedLines
			if err := m.StopProcess(ctx, "cat.1"); err != nil {
				b.Fatal(err)
			}
			p.Close() // every line written
			d.close() // and read
		}
		b.ReportMetric(float64(dropped)/float64(b.N), "dropped-lines/op")
	})
}
