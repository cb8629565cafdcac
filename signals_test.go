package resman_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

// signalHost builds testdata/signalhost, as TestHostDeathTakesEveryProcessAlong
// builds its host.
func signalHost(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "signalhost")
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/signalhost").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// runSignalHost starts the host with grace and returns it, its temp dir and
// the PIDs it printed, once it is ready.
func runSignalHost(t *testing.T, grace time.Duration) (*exec.Cmd, string, []int, <-chan error) {
	t.Helper()
	dir := t.TempDir()
	host := exec.Command(signalHost(t), dir, grace.String())
	host.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := host.StdoutPipe()
	require.NoError(t, err)
	host.Stderr = os.Stderr
	require.NoError(t, host.Start())
	r := bufio.NewReader(stdout)
	pids := hostPIDs(t, r, 4)
	ready, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "ready\n", ready)
	for _, pid := range pids {
		require.True(t, alive(pid), "pid %d", pid)
	}
	exited := make(chan error, 1)
	gone := make(chan struct{})
	go func() { // owned by the test: ends when the host exits
		exited <- host.Wait()
		close(gone)
	}()
	t.Cleanup(func() {
		_ = host.Process.Kill()
		<-gone
	})
	return host, dir, pids, exited
}

// requireNothingLeft checks /proc for every PID.
func requireNothingLeft(t *testing.T, pids []int) {
	t.Helper()
	left := func() (out []string) {
		for _, pid := range pids {
			if exists(pid) {
				out = append(out, fmt.Sprintf("%d (%s)", pid, procState(pid)))
			}
		}
		return out
	}
	if !assert.Eventually(t, func() bool { return len(left()) == 0 }, time.Second, 5*time.Millisecond) {
		t.Fatalf("processes of the host are left (not even a zombie may be): %v", left())
	}
}

func TestHandleSignalsFirstSignalShutsDownGracefully(t *testing.T) {
	const grace = time.Second
	host, dir, pids, exited := runSignalHost(t, grace)
	began := time.Now()
	require.NoError(t, host.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		require.NoError(t, err, "the host exits 0")
	case <-time.After(grace + time.Second):
		t.Fatal("the host did not exit within the grace period + 1 s")
	}
	took := time.Since(began)
	require.GreaterOrEqual(t, took, grace-100*time.Millisecond, "the SIGTERM-ignorer had its grace period")
	b, err := os.ReadFile(filepath.Join(dir, "term"))
	require.NoError(t, err, "the normal process got SIGTERM")
	require.Equal(t, "term\n", string(b))
	requireNothingLeft(t, pids)
}

func TestHandleSignalsSecondSignalKillsAtOnce(t *testing.T) {
	host, dir, pids, exited := runSignalHost(t, 30*time.Second)
	began := time.Now()
	require.NoError(t, host.Process.Signal(syscall.SIGINT))
	// The shutdown has begun once the normal process has had its SIGTERM.
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "term"))
		return err == nil
	}, 5*time.Second, time.Millisecond)
	// pids: the two background children (in either order), then the
	// leaders by key: "ignorer", "normal".
	require.True(t, alive(pids[2]), "the SIGTERM-ignorer waits out its grace period")
	require.NoError(t, host.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		require.NoError(t, err, "the host exits 0")
	case <-time.After(5*time.Second - time.Since(began)):
		t.Fatal("the host did not exit promptly after the second signal")
	}
	requireNothingLeft(t, pids)
}

func TestHandleSignalsStop(t *testing.T) {
	m := newManager(t)
	stop := m.HandleSignals(syscall.SIGUSR1)
	stop()
	stop() // idempotent
	ctx := ctxT(t)
	require.NoError(t, m.RegisterCustomResource(ctx, "still", 1, func(ctxT context.Context, _ any) error { return nil }))
}

func TestHandleSignalsStartsShutdown(t *testing.T) {
	m, err := resman.New()
	require.NoError(t, err)
	stop := m.HandleSignals(syscall.SIGUSR1)
	defer stop()
	require.NoError(t, m.StartProcess(ctxT(t), "p", sh("exec sleep 300")))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the signal did not shut the manager down")
	}
	require.NoError(t, m.Shutdown(ctxT(t)))
}
