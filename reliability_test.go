package resman_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

// deepTree writes a script that starts a tree depth levels deep, every
// other level ignoring SIGTERM, each level appending its PID to f.
func deepTree(t *testing.T, depth int) (script, f string) {
	dir := t.TempDir()
	f = filepath.Join(dir, "pids")
	path := filepath.Join(dir, "tree.sh")
	require.NoError(t, os.WriteFile(path, []byte(`
level=$1
if [ $((level % 2)) -eq 0 ]; then trap "" TERM; fi
echo $$ >> `+f+`
if [ "$level" -gt 1 ]; then
  /bin/sh `+path+` $((level - 1)) &
  wait
  wait
else
  exec sleep 300
fi
`), 0o755))
	return fmt.Sprintf("exec /bin/sh %s %d", path, depth), f
}

func TestDeepTreeLeavesNothing(t *testing.T) {
	for _, how := range []string{"StopProcess", "CleanupAll"} {
		t.Run(how, func(t *testing.T) {
			m := newManager(t, resman.WithDefaultTimeout(300*time.Millisecond))
			ctx := ctxT(t)
			script, f := deepTree(t, 5)
			require.NoError(t, m.StartProcess(ctx, "tree", sh(script)))
			pids := readPIDs(t, f, 5)
			for _, pid := range pids {
				require.True(t, alive(pid))
			}
			if how == "StopProcess" {
				require.NoError(t, m.StopProcess(ctx, "tree"))
			} else {
				require.NoError(t, m.CleanupAll(ctx))
			}
			requireGone(t, pids...)
		})
	}
}

func TestGrandchildHoldingStdoutDoesNotHangTheStop(t *testing.T) {
	m := newManager(t, resman.WithDefaultTimeout(300*time.Millisecond))
	ctx := ctxT(t)
	f := filepath.Join(t.TempDir(), "pids")
	var out bytes.Buffer
	// hello is written before the pid, so it is out before the stop begins.
	cmd := sh(`(trap "" TERM; exec sleep 300) & echo hello; echo $! >> ` + f + `; wait`)
	cmd.Stdout = &out // a pipe the grandchild holds too
	require.NoError(t, m.StartProcess(ctx, "p", cmd))
	pids := readPIDs(t, f, 1)

	start := time.Now()
	require.NoError(t, m.StopProcess(ctx, "p"))
	require.Less(t, time.Since(start), 3*time.Second)
	requireGone(t, append(pids, cmd.Process.Pid)...)
	require.Equal(t, "hello\n", out.String())
}

func TestExitedLeaderTakesItsGroupAlong(t *testing.T) {
	m := newManager(t, resman.WithDefaultTimeout(300*time.Millisecond))
	ctx := ctxT(t)
	f := filepath.Join(t.TempDir(), "pids")
	var out bytes.Buffer
	// The shell exits at once; a SIGTERM-ignoring child keeps its stdout.
	cmd := sh(`(trap "" TERM; exec sleep 300) & echo $! >> ` + f + `; echo bye; exit 5`)
	cmd.Stdout = &out
	require.NoError(t, m.StartProcess(ctx, "p", cmd))
	pids := readPIDs(t, f, 1)

	state, err := m.WaitProcess(ctx, "p")
	require.NoError(t, err)
	require.Equal(t, 5, state.ExitCode())
	requireGone(t, pids...)
	require.False(t, exists(cmd.Process.Pid), "reaped")
	require.Equal(t, "bye\n", out.String())
}

func TestNoZombies(t *testing.T) {
	const n = 200
	m := newManager(t)
	ctx := ctxT(t)
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmds[i] = started(t, sh(fmt.Sprintf("exit %d", i%50)))
		require.NoError(t, m.RegisterProcess(ctx, fmt.Sprint("p", i), cmds[i]))
	}
	require.Eventually(t, func() bool {
		st, err := m.Status(ctx)
		if err != nil || len(st.Processes) != n {
			return false
		}
		for _, p := range st.Processes {
			if p.State != resman.StateExited {
				return false
			}
		}
		return true
	}, 20*time.Second, 5*time.Millisecond)
	st, err := m.Status(ctx)
	require.NoError(t, err)
	for _, p := range st.Processes {
		i, err := strconv.Atoi(strings.TrimPrefix(p.Key, "p"))
		require.NoError(t, err)
		require.Equal(t, i%50, p.ExitCode, p.Key)
		require.Equal(t, cmds[i].Process.Pid, p.PID)
		require.False(t, ourZombie(p.PID), "pid %d must be reaped, not a zombie", p.PID)
	}
}

func TestStopNeverSignalsTheCallersGroup(t *testing.T) {
	m := newManager(t, resman.WithDefaultTimeout(200*time.Millisecond))
	ctx := ctxT(t)
	// Both in the test's own process group.
	sibling := started(t, exec.Command("sleep", "300"))
	defer func() { _ = sibling.Process.Kill(); _ = sibling.Wait() }()
	target := started(t, exec.Command("sleep", "300"))
	pgid, err := syscall.Getpgid(target.Process.Pid)
	require.NoError(t, err)
	require.Equal(t, syscall.Getpgrp(), pgid)

	require.NoError(t, m.RegisterProcess(ctx, "target", target))
	require.NoError(t, m.StopProcess(ctx, "target", resman.WithSignal(syscall.SIGKILL)))
	require.False(t, exists(target.Process.Pid))
	require.True(t, alive(sibling.Process.Pid), "the sibling in the caller's group survives")
}

// TestStopAfterReapNeverSignalsAReusedPID makes the kernel hand the PID of a
// reaped process to a new one (ns_last_pid), then stops the old
// registration: the newcomer must not be touched.
func TestStopAfterReapNeverSignalsAReusedPID(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	// The PID can be taken meanwhile (a thread of this very process, say):
	// then try again with a new process.
	var stranger *exec.Cmd
	var key string
	var pid int
	for attempt := 0; attempt < 20 && stranger == nil; attempt++ {
		key = fmt.Sprint("old", attempt)
		old := sh("exit 0")
		require.NoError(t, m.StartProcess(ctx, key, old))
		_, err := m.WaitProcess(ctx, key) // reaped; still registered as exited
		require.NoError(t, err)
		pid = old.Process.Pid
		for try := 0; try < 10 && stranger == nil; try++ {
			require.NoError(t, os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0))
			c := exec.Command("sleep", "300")
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // leads group pid, as the old one did
			require.NoError(t, c.Start())
			if c.Process.Pid == pid {
				stranger = c
				break
			}
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	require.NotNil(t, stranger, "could not make the kernel reuse a PID")
	defer func() { _ = stranger.Process.Kill(); _ = stranger.Wait() }()

	require.NoError(t, m.StopProcess(ctx, key, resman.WithSignal(syscall.SIGKILL)))
	require.True(t, alive(pid), "the process that reused the PID is untouched")
}

func TestHostDeathTakesEveryProcessAlong(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hostdeath")
	build := exec.Command("go", "build", "-o", bin, "./testdata/hostdeath")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	host := exec.Command(bin, t.TempDir())
	host.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := host.StdoutPipe()
	require.NoError(t, err)
	host.Stderr = os.Stderr
	require.NoError(t, host.Start())
	pids := hostPIDs(t, bufio.NewReader(stdout), 5)
	for _, pid := range pids {
		require.True(t, alive(pid))
	}

	require.NoError(t, host.Process.Signal(syscall.SIGKILL))
	_ = host.Wait()
	require.Eventually(t, func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond, "soon after the host's death (well under a second on a quiet machine) every process, grandchildren included, is gone")
}
