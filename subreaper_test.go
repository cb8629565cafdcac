package resman_test

import (
	"errors"
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

// These tests make the test binary a child subreaper, for good: the other
// tests of the package run under it too (their orphans come to the binary
// and, untracked by a subreaping manager, stay zombies; they check
// liveness, not existence, for grandchildren).

// ppid reads a process's parent from /proc; 0 if it is gone.
func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// childrenOf lists pid's children, waiting until there are want of them.
func childrenOf(t *testing.T, pid, want int) []int {
	t.Helper()
	return readPIDs(t, "/proc/"+strconv.Itoa(pid)+"/task/"+strconv.Itoa(pid)+"/children", want)
}

// requireNoTrace asserts that none of pids exists, not even as a zombie.
func requireNoTrace(t *testing.T, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		require.Falsef(t, exists(pid), "pid %d is left (state %q)", pid, procState(pid))
	}
}

// requireAdopted waits until each of pids is a child of the test binary: it
// was orphaned and came to us, not to PID 1.
func requireAdopted(t *testing.T, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		require.Eventuallyf(t, func() bool { return ppid(pid) == os.Getpid() }, 10*time.Second, 2*time.Millisecond,
			"pid %d was not adopted (parent %d)", pid, ppid(pid))
	}
}

// orphans is a script that leaves n SIGTERM-ignoring orphans in its group,
// each writing its pid to f, and then waits.
func orphans(n int, f string) string {
	return strings.Repeat(`(sh -c 'trap "" TERM; echo $$ >> `+f+`; exec sleep 300' &); `, n) + `exec sleep 300`
}

func TestWithSubreaperLeavesNoZombie(t *testing.T) {
	t.Run("background children", func(t *testing.T) {
		// The quickstart's tree: the shell's children outlive it by an
		// instant and are orphaned as the group dies.
		m := newManager(t, resman.WithSubreaper())
		ctx := ctxT(t)
		cmd := sh("sleep 60 & sleep 60 & wait")
		require.NoError(t, m.StartProcess(ctx, "tree", cmd))
		kids := childrenOf(t, cmd.Process.Pid, 2)
		require.NoError(t, m.StopProcess(ctx, "tree"))
		requireNoTrace(t, append(kids, cmd.Process.Pid)...)
	})
	t.Run("children that outlive the shell", func(t *testing.T) {
		// They ignore SIGTERM: the shell dies, they are orphaned (adopted
		// by us while the stop waits out the grace period), then SIGKILLed.
		m := newManager(t, resman.WithSubreaper())
		ctx := ctxT(t)
		f := filepath.Join(t.TempDir(), "pids")
		cmd := sh(`for i in 1 2; do sh -c 'trap "" TERM; echo $$ >> ` + f + `; exec sleep 300' & done; wait`)
		require.NoError(t, m.StartProcess(ctx, "tree", cmd))
		kids := readPIDs(t, f, 2)
		stopped := make(chan error, 1)
		go func() { stopped <- m.StopProcess(ctx, "tree", resman.WithTimeout(time.Second)) }()
		requireAdopted(t, kids...)
		select {
		case err := <-stopped:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("the stop did not return")
		}
		requireNoTrace(t, append(kids, cmd.Process.Pid)...)
	})
	t.Run("orphans", func(t *testing.T) {
		m := newManager(t, resman.WithSubreaper(), resman.WithDefaultTimeout(200*time.Millisecond))
		ctx := ctxT(t)
		f := filepath.Join(t.TempDir(), "pids")
		cmd := sh(orphans(3, f))
		require.NoError(t, m.StartProcess(ctx, "tree", cmd))
		kids := readPIDs(t, f, 3)
		requireAdopted(t, kids...)
		require.NoError(t, m.StopProcess(ctx, "tree"))
		requireNoTrace(t, append(kids, cmd.Process.Pid)...)
	})
	t.Run("exited leader", func(t *testing.T) {
		// The leader exits on its own: its orphans are stopped and reaped
		// before it is.
		m := newManager(t, resman.WithSubreaper(), resman.WithDefaultTimeout(200*time.Millisecond))
		ctx := ctxT(t)
		f := filepath.Join(t.TempDir(), "pids")
		cmd := sh(strings.TrimSuffix(orphans(2, f), `exec sleep 300`) + `while [ "$(cat ` + f + ` 2>/dev/null | wc -l)" -lt 2 ]; do sleep 0.01; done; exit 4`)
		require.NoError(t, m.StartProcess(ctx, "tree", cmd))
		kids := readPIDs(t, f, 2)
		state, err := m.WaitProcess(ctx, "tree")
		require.NoError(t, err)
		require.Equal(t, 4, state.ExitCode())
		requireNoTrace(t, kids...)
	})
}

func TestWithSubreaperReapsOrphansOfARunningTree(t *testing.T) {
	m := newManager(t, resman.WithSubreaper(), resman.WithDefaultTimeout(200*time.Millisecond))
	ctx := ctxT(t)
	f := filepath.Join(t.TempDir(), "pids")
	cmd := sh(orphans(2, f))
	require.NoError(t, m.StartProcess(ctx, "tree", cmd))
	kids := readPIDs(t, f, 2)
	requireAdopted(t, kids...)

	// One dies while its tree runs on: no stop, and still no zombie.
	require.NoError(t, syscall.Kill(kids[0], syscall.SIGKILL))
	require.Eventually(t, func() bool { return !exists(kids[0]) }, 10*time.Second, 2*time.Millisecond,
		"the orphan is reaped")
	require.True(t, alive(kids[1]), "its sibling runs on")
	require.True(t, alive(cmd.Process.Pid), "the tree runs on")
	require.NoError(t, m.StopProcess(ctx, "tree"))
	requireNoTrace(t, kids[1], cmd.Process.Pid)
}

func TestWithSubreaperAndCgroupReapsSetsidDaemons(t *testing.T) {
	dir := cgroupDir(t)
	m := newManager(t, resman.WithSubreaper(), resman.WithCgroup(dir), resman.WithDefaultTimeout(200*time.Millisecond))
	ctx := ctxT(t)

	// A daemon that left the group (setsid, double fork) dies while its
	// tree runs: it is reaped by its cgroup.
	f := filepath.Join(t.TempDir(), "pid")
	require.NoError(t, m.StartProcess(ctx, "a", sh(escapee(f))))
	daemon := readPIDs(t, f, 1)[0]
	requireAdopted(t, daemon)
	require.NotEqual(t, procPgid(t, daemon), procPgid(t, os.Getpid()))
	require.NoError(t, syscall.Kill(daemon, syscall.SIGKILL))
	require.Eventually(t, func() bool { return !exists(daemon) }, 10*time.Second, 2*time.Millisecond,
		"the daemon is reaped")
	require.NoError(t, m.StopProcess(ctx, "a"))

	// One that is stopped with its tree leaves nothing either.
	f = filepath.Join(t.TempDir(), "pid")
	cmd := sh(escapee(f))
	require.NoError(t, m.StartProcess(ctx, "b", cmd))
	daemon = readPIDs(t, f, 1)[0]
	requireAdopted(t, daemon)
	require.NoError(t, m.StopProcess(ctx, "b"))
	requireNoTrace(t, daemon, cmd.Process.Pid)
}

// procPgid reads pid's process group.
func procPgid(t *testing.T, pid int) int {
	t.Helper()
	pg, err := syscall.Getpgid(pid)
	require.NoError(t, err)
	return pg
}

func TestWithSubreaperNeverReapsOthersChildren(t *testing.T) {
	// Other code in the program starts processes and waits for them: with
	// the subreaper on and tracked trees' orphans dying around them, they
	// keep their exit status for that code.
	m := newManager(t, resman.WithSubreaper(), resman.WithDefaultTimeout(200*time.Millisecond))
	ctx := ctxT(t)
	f := filepath.Join(t.TempDir(), "pids")
	tree := sh(orphans(4, f))
	require.NoError(t, m.StartProcess(ctx, "tree", tree))
	kids := readPIDs(t, f, 4)
	requireAdopted(t, kids...)

	plain := sh("exit 7")                              // in our own group
	grouped := exec.Command("/bin/sh", "-c", "exit 9") // in a group of its own, as StartProcess would do
	grouped.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	for _, c := range []*exec.Cmd{plain, grouped} {
		require.NoError(t, c.Start())
		pid := c.Process.Pid
		require.Eventually(t, func() bool { return procState(pid) == "Z" }, 10*time.Second, 2*time.Millisecond)
	}

	// Orphans die one by one, each a SIGCHLD and a pass over our children
	// while the others' zombies wait; then the tree is stopped.
	for _, kid := range kids[:3] {
		require.NoError(t, syscall.Kill(kid, syscall.SIGKILL))
		require.Eventually(t, func() bool { return !exists(kid) }, 10*time.Second, 2*time.Millisecond)
	}
	require.NoError(t, m.StopProcess(ctx, "tree"))
	requireNoTrace(t, kids[3], tree.Process.Pid)

	for c, code := range map[*exec.Cmd]int{plain: 7, grouped: 9} {
		require.Equal(t, "Z", procState(c.Process.Pid), "not reaped by resman")
		var exit *exec.ExitError
		require.True(t, errors.As(c.Wait(), &exit), "its own Wait reaps it")
		require.Equal(t, code, exit.ExitCode())
	}
}

func TestWithSubreaperUnderYourOwnActor(t *testing.T) {
	// Spawned from Props: stopping the supervisor stops the tree and reaps
	// its orphans before it reports Stopped.
	system := newSystem(t)
	sup := system.Root.Spawn(resman.Props(resman.WithSubreaper(), resman.WithDefaultTimeout(200*time.Millisecond)))
	m := resman.Attach(system, sup)
	f := filepath.Join(t.TempDir(), "pids")
	cmd := sh(orphans(2, f))
	require.NoError(t, m.StartProcess(ctxT(t), "tree", cmd))
	kids := readPIDs(t, f, 2)
	requireAdopted(t, kids...)
	require.NoError(t, system.Root.StopFuture(sup).Wait())
	requireNoTrace(t, append(kids, cmd.Process.Pid)...)
}
