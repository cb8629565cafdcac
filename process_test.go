package resman_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

// ignorer starts (through m) a process that ignores SIGTERM and returns its
// PID once the shell has installed the trap.
func ignorer(t *testing.T, m *resman.Manager, key string) int {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pid")
	require.NoError(t, m.StartProcess(ctxT(t), key, sh(`trap "" TERM; echo $$ > `+f+`; exec sleep 300`)))
	return readPIDs(t, f, 1)[0]
}

func TestStopProcessThatExitsOnSIGTERMIsPrompt(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	cmd := sh("exec sleep 300")
	require.NoError(t, m.StartProcess(ctx, "sleeper", cmd))
	pid := cmd.Process.Pid

	start := time.Now()
	require.NoError(t, m.StopProcess(ctx, "sleeper", resman.WithTimeout(10*time.Second)))
	require.Less(t, time.Since(start), 2*time.Second, "a SIGTERM-obeying process must not wait out the grace period")
	require.False(t, exists(pid), "the process must be reaped")
	require.NotNil(t, cmd.ProcessState)
	require.Equal(t, syscall.SIGTERM, cmd.ProcessState.Sys().(syscall.WaitStatus).Signal())

	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Processes)
}

func TestStopProcessKillsAfterGracePeriod(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	pid := ignorer(t, m, "stubborn")

	grace := 300 * time.Millisecond
	start := time.Now()
	require.NoError(t, m.StopProcess(ctx, "stubborn", resman.WithTimeout(grace)), "SIGKILL after the grace period is a normal stop")
	took := time.Since(start)
	require.GreaterOrEqual(t, took, grace)
	require.Less(t, took, grace+2*time.Second)
	require.False(t, exists(pid))
}

func TestStopProcessLeavesNoGrandchild(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
	}{
		// The shell obeys SIGTERM at once; its children ignore it.
		{"leader exits, grandchildren ignore", `(trap "" TERM; exec sleep 300) & echo $! >> F; (trap "" TERM; exec sleep 300) & echo $! >> F; echo $$ >> F; wait`},
		// Everybody ignores SIGTERM.
		{"all ignore", `trap "" TERM; sleep 300 & echo $! >> F; sleep 300 & echo $! >> F; echo $$ >> F; wait`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t)
			ctx := ctxT(t)
			f := filepath.Join(t.TempDir(), "pids")
			script := strings.ReplaceAll(tc.script, "F", f)
			require.NoError(t, m.StartProcess(ctx, "tree", sh(script)))
			pids := readPIDs(t, f, 3)

			start := time.Now()
			require.NoError(t, m.StopProcess(ctx, "tree", resman.WithTimeout(300*time.Millisecond)))
			require.Less(t, time.Since(start), 3*time.Second)
			requireGone(t, pids...)
		})
	}
}

func TestStopProcessWithSignal(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	pid := ignorer(t, m, "p") // ignores SIGTERM, dies of SIGINT

	start := time.Now()
	require.NoError(t, m.StopProcess(ctx, "p", resman.WithSignal(syscall.SIGINT), resman.WithTimeout(20*time.Second)))
	require.Less(t, time.Since(start), 5*time.Second, "SIGINT, not SIGTERM, must have been sent")
	require.False(t, exists(pid))
}

func TestRegisterProcessStartedByCaller(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	started(t, cmd)
	require.NoError(t, m.RegisterProcess(ctx, "p", cmd))

	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Processes, 1)
	require.Equal(t, cmd.Process.Pid, st.Processes[0].PID)
	require.Equal(t, resman.StateRunning, st.Processes[0].State)

	require.NoError(t, m.StopProcess(ctx, "p"))
	require.False(t, exists(cmd.Process.Pid))
}

func TestUnregisterRunningProcessCallerWaits(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	gate := filepath.Join(t.TempDir(), "gate")
	cmd := started(t, sh(`while [ ! -e `+gate+` ]; do sleep 0.01; done; exit 3`))
	require.NoError(t, m.RegisterProcess(ctx, "p", cmd))

	got, err := m.UnregisterProcess(ctx, "p")
	require.NoError(t, err)
	require.Same(t, cmd, got)
	require.Nil(t, got.ProcessState, "still running: not waited")

	require.NoError(t, writeFile(gate))
	err = got.Wait()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	require.Equal(t, 3, exitErr.ExitCode())

	_, err = m.UnregisterProcess(ctx, "p")
	require.ErrorIs(t, err, resman.ErrNotRegistered)
}

func TestUnregisterExitedProcessHasState(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	cmd := started(t, sh("exit 4"))
	require.NoError(t, m.RegisterProcess(ctx, "p", cmd))
	_, err := m.WaitProcess(ctx, "p")
	require.NoError(t, err)

	got, err := m.UnregisterProcess(ctx, "p")
	require.NoError(t, err)
	require.NotNil(t, got.ProcessState)
	require.Equal(t, 4, got.ProcessState.ExitCode())
}

func TestProcessExitingOnItsOwnIsReaped(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	codeCmd := started(t, sh("exit 7"))
	sigCmd := started(t, sh(`kill -KILL $$`))
	require.NoError(t, m.RegisterProcess(ctx, "code", codeCmd))
	require.NoError(t, m.RegisterProcess(ctx, "signal", sigCmd))

	state, err := m.WaitProcess(ctx, "code")
	require.NoError(t, err)
	require.Equal(t, 7, state.ExitCode())
	state, err = m.WaitProcess(ctx, "signal")
	require.NoError(t, err)
	require.Equal(t, -1, state.ExitCode())

	for _, pid := range []int{codeCmd.Process.Pid, sigCmd.Process.Pid} {
		require.False(t, exists(pid), "pid %d must be reaped, not a zombie", pid)
	}
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Processes, 2)
	require.Equal(t, "code", st.Processes[0].Key)
	require.Equal(t, resman.StateExited, st.Processes[0].State)
	require.Equal(t, 7, st.Processes[0].ExitCode)
	require.Equal(t, "signal", st.Processes[1].Key)
	require.Equal(t, resman.StateExited, st.Processes[1].State)
	require.Equal(t, -1, st.Processes[1].ExitCode)

	// Stopping an exited process just unregisters it.
	require.NoError(t, m.StopProcess(ctx, "code"))
	require.NoError(t, m.StopProcess(ctx, "signal"))
	st, err = m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Processes)
}

func TestWaitProcessBlocksUntilExit(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	gate := filepath.Join(t.TempDir(), "gate")
	require.NoError(t, m.StartProcess(ctx, "p", sh(`while [ ! -e `+gate+` ]; do sleep 0.01; done; exit 2`)))

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := m.WaitProcess(short, "p")
	require.ErrorIs(t, err, context.DeadlineExceeded)

	done := make(chan error, 1)
	go func() {
		state, err := m.WaitProcess(ctx, "p")
		if err == nil && state.ExitCode() != 2 {
			err = errors.New("wrong exit code")
		}
		done <- err
	}()
	require.NoError(t, writeFile(gate))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("WaitProcess did not return after the exit")
	}
}

func TestStartProcessDuplicateKeyDoesNotStart(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	require.NoError(t, m.StartProcess(ctx, "p", sh("exec sleep 300")))
	marker := filepath.Join(t.TempDir(), "ran")
	second := sh("touch " + marker + "; exec sleep 300")
	err := m.StartProcess(ctx, "p", second)
	require.ErrorIs(t, err, resman.ErrAlreadyRegistered)
	require.Nil(t, second.Process, "a cmd whose key is taken must not be started")
}

func TestStartProcessFailureIsNotTracked(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	err := m.StartProcess(ctx, "p", exec.Command("/nonexistent/binary"))
	var re *resman.ResourceError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "start", re.Op)
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Processes)
	// The key is free again.
	require.NoError(t, m.StartProcess(ctx, "p", sh("exec sleep 300")))
}

func TestStartProcessIsolatesGroup(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	cmd := sh("exec sleep 300")
	require.NoError(t, m.StartProcess(ctx, "p", cmd))
	pgid, err := syscall.Getpgid(cmd.Process.Pid)
	require.NoError(t, err)
	require.Equal(t, cmd.Process.Pid, pgid, "StartProcess puts the process in a group of its own")
	require.True(t, cmd.SysProcAttr.Setpgid)
	require.Equal(t, syscall.SIGKILL, cmd.SysProcAttr.Pdeathsig)
}
