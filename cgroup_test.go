package resman_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

// cgroupParent is this machine kind's writable cgroup v2 hierarchy.
const cgroupParent = "/sys/fs/cgroup/unified"

func cgroupDir(t *testing.T) string {
	t.Helper()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(cgroupParent, &fs); err != nil || fs.Type != 0x63677270 {
		t.Skipf("no cgroup v2 hierarchy at %s on this machine", cgroupParent)
	}
	dir := filepath.Join(cgroupParent, fmt.Sprintf("resman-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	t.Cleanup(func() { _ = os.Remove(dir) })
	return dir
}

// escapee is a script whose daemon leaves the process group with setsid and
// a double fork, ignores SIGTERM, and writes its PID to f.
func escapee(f string) string {
	return `(setsid /bin/sh -c 'trap "" TERM; echo $$ > ` + f + `; exec sleep 300' &) ; exec sleep 300`
}

func TestWithoutCgroupASetsidDaemonEscapes(t *testing.T) {
	// What WithCgroup is for: a process-group stop cannot reach a daemon
	// that left the group. (Documented in doc.go.)
	m := newManager(t, resman.WithDefaultTimeout(200*time.Millisecond))
	ctx := ctxT(t)
	f := filepath.Join(t.TempDir(), "pid")
	require.NoError(t, m.StartProcess(ctx, "p", sh(escapee(f))))
	daemon := readPIDs(t, f, 1)[0]
	defer func() { _ = syscall.Kill(daemon, syscall.SIGKILL) }()
	require.NoError(t, m.StopProcess(ctx, "p"))
	require.True(t, alive(daemon), "it escaped, as documented")
}

func TestWithCgroupNothingEscapes(t *testing.T) {
	dir := cgroupDir(t)
	m := newManager(t, resman.WithCgroup(dir), resman.WithDefaultTimeout(300*time.Millisecond))
	ctx := ctxT(t)
	f := filepath.Join(t.TempDir(), "pid")
	cmd := sh(escapee(f))
	require.NoError(t, m.StartProcess(ctx, "p", cmd))
	daemon := readPIDs(t, f, 1)[0]
	defer func() { _ = syscall.Kill(daemon, syscall.SIGKILL) }()

	cgroups, err := os.ReadDir(dir)
	require.NoError(t, err)
	var own []string
	for _, e := range cgroups {
		if e.IsDir() {
			own = append(own, e.Name())
		}
	}
	require.Len(t, own, 1, "one cgroup for the process")
	procs, err := os.ReadFile(filepath.Join(dir, own[0], "cgroup.procs"))
	require.NoError(t, err)
	require.Contains(t, string(procs), fmt.Sprint(daemon), "the daemon is still in the process's cgroup")

	start := time.Now()
	require.NoError(t, m.StopProcess(ctx, "p"))
	require.Less(t, time.Since(start), 3*time.Second)
	requireGone(t, daemon, cmd.Process.Pid)
	_, err = os.Stat(filepath.Join(dir, own[0]))
	require.True(t, os.IsNotExist(err), "the cgroup is removed")
}

func TestWithCgroupCleanupAllAndExit(t *testing.T) {
	dir := cgroupDir(t)
	m := newManager(t, resman.WithCgroup(dir), resman.WithDefaultTimeout(300*time.Millisecond))
	ctx := ctxT(t)
	var daemons []int
	for i := range 3 {
		f := filepath.Join(t.TempDir(), "pid")
		require.NoError(t, m.StartProcess(ctx, fmt.Sprint("p", i), sh(escapee(f))))
		daemons = append(daemons, readPIDs(t, f, 1)[0])
	}
	// One whose main process exits on its own: its daemon goes with it.
	f := filepath.Join(t.TempDir(), "pid")
	require.NoError(t, m.StartProcess(ctx, "exits", sh(`(setsid /bin/sh -c 'trap "" TERM; echo $$ > `+f+`; exec sleep 300' &); while [ ! -s `+f+` ]; do sleep 0.01; done; exit 3`)))
	exitsDaemon := readPIDs(t, f, 1)[0]
	state, err := m.WaitProcess(ctx, "exits")
	require.NoError(t, err)
	require.Equal(t, 3, state.ExitCode())
	requireGone(t, exitsDaemon)

	require.NoError(t, m.CleanupAll(ctx))
	requireGone(t, daemons...)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, e.IsDir(), "cgroup %s left behind", e.Name())
	}
}

func TestWithCgroupRejectsUnusableDir(t *testing.T) {
	for _, dir := range []string{
		filepath.Join(t.TempDir(), "not-a-cgroup"), // a plain file system
		"/proc/self/nope",
	} {
		_, err := resman.New(resman.WithCgroup(dir))
		require.Error(t, err, dir)
		require.Contains(t, err.Error(), "cgroup", dir)
	}
	// Props cannot return the error: its supervisor refuses every registration with it.
	system := newSystem(t)
	var props *actor.Props
	require.NotPanics(t, func() { props = resman.Props(resman.WithCgroup("/proc/self/nope")) })
	m := resman.Attach(system, system.Root.Spawn(props))
	t.Cleanup(func() { require.NoError(t, m.Shutdown(context.Background())) })
	cmd := sh("exec sleep 300")
	err := m.StartProcess(ctxT(t), "p", cmd)
	require.ErrorIs(t, err, resman.ErrInvalid)
	require.Contains(t, err.Error(), "cgroup")
	require.Nil(t, cmd.Process, "nothing started")
}
