package proc

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseCgroup(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"0::/resman/p1-2\n", "/resman/p1-2"},
		{"9:name=systemd:/\n4:memory:/x/y\n0::/a b\n", "/a b"}, // hybrid: v1 lines first
		{"0::/\n", "/"},
		{"4:memory:/x\n", ""}, // v1 only
		{"", ""},
	} {
		require.Equal(t, tc.want, parseCgroup([]byte(tc.in)), tc.in)
	}
}

func TestWithin(t *testing.T) {
	for _, tc := range []struct {
		cg, root string
		want     bool
	}{
		{"/r/p1", "/r/p1", true},
		{"/r/p1/sub", "/r/p1", true},
		{"/r/p10", "/r/p1", false},
		{"/r", "/r/p1", false},
		{"", "/r/p1", false},
	} {
		require.Equal(t, tc.want, within(tc.cg, tc.root), "%q in %q", tc.cg, tc.root)
	}
}

func TestChildrenListsOurChildren(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	require.Contains(t, children(os.Getpid()), cmd.Process.Pid)
	require.Contains(t, childrenByScan(os.Getpid()), cmd.Process.Pid)
}

func TestSubreaperLeavesTrackedProcessesToTheirOwner(t *testing.T) {
	// Without PR_SET_CHILD_SUBREAPER no orphan comes to us: only the
	// bookkeeping and the goroutine's life are tested here (the root
	// package's tests cover the reaping on real trees).
	s := NewSubreaper()
	cmd := exec.Command("sh", "-c", "exit 3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	s.Track(pid, pid, false)
	require.Eventually(t, func() bool {
		_, state, ok := readStat("/proc/"+strconv.Itoa(pid)+"/stat", make([]byte, 512))
		return ok && state == 'Z'
	}, 10*time.Second, time.Millisecond)
	s.reap(nil) // what a SIGCHLD does
	s.Release(pid)
	require.Error(t, cmd.Wait(), "exit status 3, for its owner")
	require.Equal(t, 3, cmd.ProcessState.ExitCode())
	s.Release(pid) // twice: nothing
	s.Close()
	s.Close()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the SIGCHLD goroutine did not end")
	}
}

func TestSubreaperCloseWithoutTrees(t *testing.T) {
	s := NewSubreaper()
	s.Track(os.Getpid(), 0, false) // no group, no cgroup: no goroutine
	s.Release(os.Getpid())
	s.Close()
	<-s.Done()
}
