package proc

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in    string
		pgid  int
		state byte
		ok    bool
	}{
		{"123 (sleep) S 1 123 123 0 -1", 123, 'S', true},
		{"7 (a) b) c) Z 1 42 42 0", 42, 'Z', true},
		{"8 (with space) R 1 9 9", 9, 'R', true},
		{"garbage", 0, 0, false},
		{"1 (x) S 1", 0, 0, false},
		{"1 (x) S 1 notanumber", 0, 0, false},
	} {
		pgid, state, ok := parseStat([]byte(tc.in))
		require.Equal(t, tc.ok, ok, tc.in)
		require.Equal(t, tc.pgid, pgid, tc.in)
		require.Equal(t, tc.state, state, tc.in)
	}
}

func TestExitWatchSeesExitWithoutReaping(t *testing.T) {
	cmd := exec.Command("sleep", "0.05")
	require.NoError(t, cmd.Start())
	w, err := OpenExitWatch(cmd.Process.Pid)
	require.NoError(t, err)
	called := make(chan struct{})
	w.Start(func() { close(called) })
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatal("exit not seen")
	}
	require.True(t, w.HasExited())
	// Not reaped: the zombie is still there for us to wait.
	require.False(t, Alive(cmd.Process.Pid))
	require.NoError(t, cmd.Wait())
	w.Close()
}

func TestExitWatchClose(t *testing.T) {
	cmd := exec.Command("sleep", "300")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	w, err := OpenExitWatch(cmd.Process.Pid)
	require.NoError(t, err)
	w.Start(func() { t.Error("no exit happened") })
	w.Close() // returns once the watch goroutine has
	w.Close() // twice is fine
	require.False(t, w.HasExited())

	unstarted, err := OpenExitWatch(cmd.Process.Pid)
	require.NoError(t, err)
	unstarted.Close()
}

func TestOpenExitWatchOfReapedProcess(t *testing.T) {
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	_, err := OpenExitWatch(cmd.Process.Pid)
	require.Error(t, err)
}

func TestGroupEmpty(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 300 & sleep 300 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	pgid := cmd.Process.Pid
	require.False(t, GroupEmpty(pgid))
	require.False(t, WaitGroupEmpty(pgid, time.Now().Add(20*time.Millisecond)))
	require.NoError(t, SignalGroup(pgid, syscall.SIGKILL))
	require.True(t, WaitGroupEmpty(pgid, time.Now().Add(5*time.Second)))
	_ = cmd.Wait()
}

func TestSignalGroupRefusesOwnGroup(t *testing.T) {
	require.Error(t, SignalGroup(OwnPgid(), syscall.Signal(0)))
	require.Error(t, SignalGroup(1, syscall.Signal(0)))
	require.Error(t, SignalGroup(0, syscall.Signal(0)))
}
