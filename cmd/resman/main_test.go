package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resman-dev/resman/internal/proctest"
)

// The /proc readings every package's tests share.
var (
	procState = proctest.State
	alive     = proctest.Alive
)

// bin is the resman binary TestMain builds.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "resman-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "resman")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	defer os.RemoveAll(dir) // goleak's VerifyTestMain exits; so this runs only when it panics
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// markerVar is in the environment of every process a test's resman
// starts (they inherit it): /proc finds them by it.
const markerVar = "RESMAN_TEST_MARK"

// run is a resman run the test started.
type run struct {
	cmd     *exec.Cmd
	mark    string
	dir     string
	mu      sync.Mutex
	out     bytes.Buffer  // its stdout so far
	changed chan struct{} // closed (and replaced) at each new line
	exited  chan struct{}
	err     error // Wait's, once exited is closed
}

// procfile writes a Procfile with content in a new directory and returns
// the directory.
func procfile(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Procfile"), []byte(content), 0o644))
	return dir
}

// startRun starts `resman run args...` in dir, its stdout a pipe, in a
// process group of its own (so the test's signals reach it alone). The
// test ends by killing it and checking that nothing of it is left.
func startRun(t *testing.T, dir string, args ...string) *run {
	t.Helper()
	r := &run{mark: fmt.Sprintf("%s-%d-%d", t.Name(), os.Getpid(), time.Now().UnixNano()), dir: dir,
		changed: make(chan struct{}), exited: make(chan struct{})}
	r.cmd = exec.Command(bin, append([]string{"run"}, args...)...)
	r.cmd.Dir = dir
	r.cmd.Env = append(os.Environ(), markerVar+"="+r.mark)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.cmd.Stderr = os.Stderr
	stdout, err := r.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, r.cmd.Start())
	go func() { // owned by the run: ends at the runner's exit (EOF of its stdout)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			r.mu.Lock()
			r.out.WriteString(sc.Text() + "\n")
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
		r.err = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.exited
		for _, pid := range marked(r.mark) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return r
}

// output is what the runner printed so far.
func (r *run) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// waitLine waits until the output has a line matching re and returns the
// first such line.
func (r *run) waitLine(t *testing.T, re string) string {
	t.Helper()
	return r.waitLines(t, re, 1)[0]
}

// waitLines waits until the output has n lines matching re and returns them.
func (r *run) waitLines(t *testing.T, re string, n int) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		out, changed := r.out.String(), r.changed
		r.mu.Unlock()
		var found []string
		for _, l := range strings.Split(out, "\n") {
			if rx.MatchString(l) {
				found = append(found, l)
			}
		}
		if len(found) >= n {
			return found
		}
		select {
		case <-changed:
		case <-r.exited:
			if r.output() == out {
				t.Fatalf("resman exited (%v) with %d lines matching %q, not %d; it printed:\n%s", r.err, len(found), re, n, out)
			}
		case <-deadline:
			t.Fatalf("%d lines matching %q, not %d; resman printed:\n%s", len(found), re, n, out)
		}
	}
}

// exitCode waits up to within for the runner's exit and returns its code.
func (r *run) exitCode(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-r.exited:
	case <-time.After(within):
		t.Fatalf("resman did not exit within %v; it printed:\n%s", within, r.output())
	}
	if r.err == nil {
		return 0
	}
	var ee *exec.ExitError
	require.ErrorAs(t, r.err, &ee)
	return ee.ExitCode()
}

func (r *run) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, r.cmd.Process.Signal(sig))
}

// marked lists the processes whose environment holds mark (zombies have
// none, so a zombie is not listed: requireNothingLeft checks the state).
func marked(mark string) []int {
	ents, _ := os.ReadDir("/proc")
	want := []byte(markerVar + "=" + mark + "\x00")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(env, want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// requireNothingLeft checks /proc that no process of the run is left (the
// runner's own pid included, once it exited), and that pids (found
// earlier, zombies count) are gone.
func (r *run) requireNothingLeft(t *testing.T, pids ...int) {
	t.Helper()
	left := func() []string {
		var out []string
		for _, pid := range marked(r.mark) {
			out = append(out, fmt.Sprintf("%d (%s)", pid, procState(pid)))
		}
		for _, pid := range pids {
			if st := procState(pid); st != "" {
				out = append(out, fmt.Sprintf("%d (%s)", pid, st))
			}
		}
		return out
	}
	if !assert.Eventually(t, func() bool { return len(left()) == 0 }, 3*time.Second, 5*time.Millisecond) {
		t.Fatalf("processes of the run are left: %v", left())
	}
}

// waitMarked waits until n processes of the run are alive and returns them.
func (r *run) waitMarked(t *testing.T, n int) []int {
	t.Helper()
	var pids []int
	require.Eventuallyf(t, func() bool {
		pids = pids[:0]
		for _, pid := range marked(r.mark) {
			if alive(pid) {
				pids = append(pids, pid)
			}
		}
		return len(pids) >= n
	}, 20*time.Second, 5*time.Millisecond, "want %d processes of the run", n)
	return pids
}

// runResman runs the binary with args to its end and returns its exit code,
// stdout and stderr.
func runResman(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
