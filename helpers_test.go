package resman_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/internal/proctest"
)

// The /proc readings every package's tests share.
var (
	procState = proctest.State
	ourZombie = proctest.OurZombie
	alive     = proctest.Alive
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newManager returns a manager that is shut down when the test ends.
func newManager(t testing.TB, opts ...resman.Option) *resman.Manager {
	t.Helper()
	m, err := resman.New(opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, m.Shutdown(ctx))
	})
	return m
}

// sh returns an unstarted shell command.
func sh(script string) *exec.Cmd {
	return exec.Command("/bin/sh", "-c", script)
}

// started starts cmd in its own process group (as a caller who knows what
// they do would) and returns it.
func started(t testing.TB, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	require.NoError(t, cmd.Start())
	return cmd
}

// exists reports whether pid exists at all (a zombie included).
func exists(pid int) bool { return procState(pid) != "" }

// readPIDs reads whitespace-separated PIDs a test script wrote to path,
// waiting until want of them are there.
func readPIDs(t testing.TB, path string, want int) []int {
	t.Helper()
	var pids []int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pids = pids[:0]
		for _, f := range strings.Fields(string(b)) {
			n, err := strconv.Atoi(f)
			if err == nil {
				pids = append(pids, n)
			}
		}
		return len(pids) >= want
	}, 10*time.Second, 2*time.Millisecond)
	return pids
}

// requireGone asserts that none of pids is alive (zombies of processes
// reparented to init count as gone only once reaped, so allow a moment).
func requireGone(t testing.TB, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		require.Falsef(t, alive(pid), "pid %d survived (state %q)", pid, procState(pid))
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func writeFile(path string) error { return os.WriteFile(path, []byte("x"), 0o644) }

// hostPIDs reads the line of want PIDs a test host program prints first,
// and SIGKILLs them when the test ends, so that a failing test leaves
// nothing behind.
func hostPIDs(t testing.TB, r *bufio.Reader, want int) []int {
	t.Helper()
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	var pids []int
	for _, f := range strings.Fields(line) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	require.Len(t, pids, want)
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return pids
}
