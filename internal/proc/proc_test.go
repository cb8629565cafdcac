package proc

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	_, state, ok := readStat(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid), make([]byte, 512))
	require.True(t, ok, "the process still exists")
	require.Equal(t, byte('Z'), state, "as a zombie")
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
	for _, tc := range []struct {
		name  string
		stamp func(pid int) Stamp
	}{
		{"pass over /proc", func(int) Stamp { return Stamp{} }},
		{"probe from a stamp", func(pid int) Stamp { return StampRegistered(pid) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", "sleep 300 & sleep 300 & echo ready; wait")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			defer func() { _ = SignalGroup(cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
			_, err = io.ReadFull(out, make([]byte, 6)) // both sleeps are forked
			require.NoError(t, err)
			pgid := cmd.Process.Pid
			st := tc.stamp(pgid)
			require.False(t, GroupEmpty(pgid, st))
			require.False(t, WaitGroupEmpty(pgid, st, At(time.Now().Add(20*time.Millisecond))))
			require.NoError(t, SignalGroup(pgid, syscall.SIGKILL))
			require.True(t, WaitGroupEmpty(pgid, st, At(time.Now().Add(5*time.Second))))
		})
	}
}

func TestStampProbesOnlyWhatItCanVouchFor(t *testing.T) {
	// The leader exits; its child, in its group, lives on.
	cmd := exec.Command("sh", "-c", "sleep 300 & exit 0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	st := NewStamp()
	require.NoError(t, cmd.Start())
	defer func() { _ = SignalGroup(cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	pgid := cmd.Process.Pid
	st = st.Leader(pgid)
	require.True(t, st.trusted, "a fresh stamp on a young process")
	w, err := OpenExitWatch(pgid)
	require.NoError(t, err)
	defer w.Close()
	w.Start(func() {})
	<-w.Exited()
	empty, sure := st.probe(pgid)
	require.True(t, sure, "a few pids since the stamp: probed")
	require.False(t, empty, "the orphan in the group is found")
	require.NoError(t, SignalGroup(pgid, syscall.SIGKILL))
	require.True(t, WaitGroupEmpty(pgid, st, At(time.Now().Add(5*time.Second))))

	// A counter that looks like it went backwards (a wrap) is not trusted.
	wrapped := st
	wrapped.last = 1 << 30
	_, sure = wrapped.probe(pgid)
	require.False(t, sure)
	// Nor is a process older than the counter can vouch for.
	require.False(t, StampRegistered(1).trusted, "init started long ago")
	_, sure = Stamp{}.probe(pgid)
	require.False(t, sure, "no stamp: the pass decides")
}

func TestTrackedLeadersAreSkipped(t *testing.T) {
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	require.False(t, GroupEmpty(pid, Stamp{}), "an untracked live leader counts")
	TrackLeader(pid)
	require.True(t, GroupEmpty(pid, Stamp{}), "a tracked leader is the caller's to watch")
	UntrackLeader(pid)
	require.False(t, GroupEmpty(pid, Stamp{}))
}

func TestSignalGroupRefusesOwnGroup(t *testing.T) {
	require.Error(t, SignalGroup(OwnPgid(), syscall.Signal(0)))
	require.Error(t, SignalGroup(1, syscall.Signal(0)))
	require.Error(t, SignalGroup(0, syscall.Signal(0)))
}

// runWatcher starts the guard script with a pipe the test holds.
func runWatcher(t *testing.T) (*exec.Cmd, io.WriteCloser) {
	cmd := exec.Command("/bin/sh", "-c", guardScript)
	w, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	return cmd, w
}

func groupOf(t *testing.T, script string) *exec.Cmd {
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	return cmd
}

func TestGuardScriptKillsOnEOF(t *testing.T) {
	kept := groupOf(t, "sleep 300 & wait")
	removed := groupOf(t, "sleep 300 & wait")
	watcher, w := runWatcher(t)
	_, err := fmt.Fprintf(w, "+ %d\n+ %d\n- %d\n", kept.Process.Pid, removed.Process.Pid, removed.Process.Pid)
	require.NoError(t, err)
	require.NoError(t, w.Close()) // the host "dies"
	require.NoError(t, watcher.Wait())
	require.True(t, WaitGroupEmpty(kept.Process.Pid, Stamp{}, At(time.Now().Add(5*time.Second))), "the recorded group is killed")
	require.False(t, GroupEmpty(removed.Process.Pid, Stamp{}), "a withdrawn group is left alone")
}

func TestGuardScriptQuits(t *testing.T) {
	g := groupOf(t, "sleep 300 & wait")
	watcher, w := runWatcher(t)
	_, err := fmt.Fprintf(w, "+ %d\nq\n", g.Process.Pid)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, watcher.Wait())
	require.False(t, GroupEmpty(g.Process.Pid, Stamp{}), "a clean quit kills nothing")
}

func TestGuardAddStartsTheWatcherBeforeItReturns(t *testing.T) {
	// A host killed right after it started a process must find the
	// watcher running already, not about to be started by the queue.
	g := NewGuard(slog.New(slog.DiscardHandler))
	defer func() { g.Close(); <-g.Done() }()
	g.AddGroup(123456)
	require.NotNil(t, g.cmd, "the first Add started the watcher")
	require.NoError(t, g.cmd.Process.Signal(syscall.Signal(0)), "and it is running")
}

func TestGuardAddRemoveClose(t *testing.T) {
	g := NewGuard(slog.New(slog.DiscardHandler))
	for i := range 2000 {
		g.AddGroup(100000 + i)
		g.RemoveGroup(100000 + i)
	}
	g.Close()
	select {
	case <-g.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not finish 4,000 lines and quit in time")
	}
}

// testCgroupRoot opens a cgroup root for the test, removed at its end.
func testCgroupRoot(t *testing.T) *CgroupRoot {
	t.Helper()
	var fs syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup/unified", &fs); err != nil || fs.Type != 0x63677270 {
		t.Skip("no cgroup v2 hierarchy at /sys/fs/cgroup/unified on this machine")
	}
	root, err := OpenCgroupRoot(fmt.Sprintf("/sys/fs/cgroup/unified/resman-proc-test-%d", os.Getpid()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.Remove(root.Dir()) })
	return root
}

func TestGuardScriptKillsCgroupOnEOF(t *testing.T) {
	root := testCgroupRoot(t)
	cg, err := root.New()
	require.NoError(t, err)
	cmd := exec.Command("/bin/sh", "-c", "setsid sleep 300 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD()}
	require.NoError(t, cmd.Start())
	cg.Close()
	defer func() {
		_ = cg.Kill()
		cg.WaitEmpty(At(time.Now().Add(5 * time.Second)))
		_ = cmd.Wait()
		_ = cg.Remove()
	}()
	require.Eventually(t, func() bool { return len(cg.Procs()) == 2 }, 5*time.Second, time.Millisecond)

	watcher, w := runWatcher(t)
	_, err = fmt.Fprintf(w, "+ %s\n", cg.Dir())
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, watcher.Wait())
	require.True(t, cg.WaitEmpty(At(time.Now().Add(5*time.Second))), "cgroup.kill was written")
}

// TestCgroupNamesSurviveALeftover: an empty cgroup left by a host that died
// (same pid, as a restarted container's PID 1 has) is removed and its name
// reused; a populated one is skipped.
func TestCgroupNamesSurviveALeftover(t *testing.T) {
	root := testCgroupRoot(t)
	first, err := root.New()
	require.NoError(t, err)
	first.Close()
	// The next names this host will try, made beforehand as a dead host would have.
	next := root.next.Load()
	stale := filepath.Join(root.Dir(), fmt.Sprintf("p%d-%d", os.Getpid(), next+1))
	require.NoError(t, os.Mkdir(stale, 0o755))
	cg, err := root.New()
	require.NoError(t, err, "the empty leftover is no obstacle")
	require.Equal(t, stale, cg.Dir())
	cg.Close()
	require.NoError(t, cg.Remove())
	require.NoError(t, first.Remove())
}

func TestUsageOf(t *testing.T) {
	// A busy loop, so its CPU time grows.
	cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var u Usage
	require.Eventually(t, func() bool {
		var err error
		u, err = UsageOf(cmd.Process.Pid, "")
		require.NoError(t, err)
		return u.CPU >= 20*time.Millisecond
	}, 10*time.Second, 5*time.Millisecond)
	require.Positive(t, u.Memory, "resident memory")
	require.Less(t, u.Memory, int64(1<<30))

	root := testCgroupRoot(t)
	cg, err := root.New()
	require.NoError(t, err)
	in := exec.Command("/bin/sh", "-c", "while :; do :; done")
	in.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD()}
	require.NoError(t, in.Start())
	cg.Close()
	defer func() {
		_ = cg.Kill()
		cg.WaitEmpty(At(time.Now().Add(5 * time.Second)))
		_ = in.Wait()
		_ = cg.Remove()
	}()
	require.Equal(t, cg.Dir(), cgroupDir(in.Process.Pid, root.Dir()))
	require.Eventually(t, func() bool {
		u, err := UsageOf(in.Process.Pid, root.Dir())
		require.NoError(t, err)
		return u.CPU >= 20*time.Millisecond && u.Memory > 0
	}, 10*time.Second, 5*time.Millisecond, "summed over its cgroup")
	_, err = UsageOf(1<<30, "")
	require.Error(t, err, "no such process")
}

func TestCPUClockMatchesStat(t *testing.T) {
	// The clock covers the whole thread group, as stat's utime+stime do:
	// this test binary has many threads, some of them busy.
	var done atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { // owned by the test: spins until done
			defer wg.Done()
			for !done.Load() {
			}
		}()
	}
	defer func() { done.Store(true); wg.Wait() }()
	pid := os.Getpid()
	require.Eventually(t, func() bool {
		st, err := statCPU(pid)
		require.NoError(t, err)
		return st >= 200*time.Millisecond
	}, 10*time.Second, 5*time.Millisecond)
	st, err := statCPU(pid)
	require.NoError(t, err)
	clock, ok := cpuClock(pid)
	require.True(t, ok)
	require.GreaterOrEqual(t, clock, st-20*time.Millisecond, "stat counts in 10 ms ticks")
	require.Less(t, clock, st+200*time.Millisecond)
}

func TestStatmKeptForTrackedLeadersOnly(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	kept := func() bool {
		statms.mu.RLock()
		defer statms.mu.RUnlock()
		_, ok := statms.fds[pid]
		return ok
	}
	plain, err := rss(pid)
	require.NoError(t, err)
	require.Positive(t, plain)
	require.False(t, kept(), "an untracked pid's statm is opened each time")
	before := statms.n.Load()

	TrackLeader(pid)
	// A process that has just started may still grow, so the kept reading
	// and a fresh one must agree once it has settled.
	require.Eventually(t, func() bool {
		m, err := rss(pid)
		require.NoError(t, err)
		b, err := readSmall(statmPath(pid))
		require.NoError(t, err)
		f := strings.Fields(string(b))
		return strconv.FormatInt(m/int64(os.Getpagesize()), 10) == f[1]
	}, 10*time.Second, time.Millisecond, "the kept descriptor reads the same file again")
	require.True(t, kept())
	require.Equal(t, before+1, statms.n.Load())
	UntrackLeader(pid)
	require.False(t, kept(), "UntrackLeader closes it before the reap")
	require.Equal(t, before, statms.n.Load())
}

func TestUsagesOfSplitsTheWorkAndKeepsTheOrder(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	pids := make([]int, 3*usageChunk+7) // more than one goroutine's share
	for i := range pids {
		switch i % 3 {
		case 0:
			pids[i] = pid
		case 1:
			pids[i] = 0 // skipped
		case 2:
			pids[i] = 1 << 30 // no such process
		}
	}
	us, ok := UsagesOf(pids, "")
	require.Len(t, us, len(pids))
	for i := range pids {
		require.Equal(t, i%3 == 0, ok[i], "entry %d", i)
		if ok[i] {
			require.Positive(t, us[i].Memory, "entry %d", i)
		}
	}
}

func TestProbesAskedTogetherShareAWalkAndEachGetsItsOwnAnswer(t *testing.T) {
	// Twenty leaders exit at once; in every other group a child lives on.
	// Their probes, asked concurrently, are answered by shared walks of the
	// pid range: each must still find its own group's orphan, or none.
	const n = 20
	type leader struct {
		cmd    *exec.Cmd
		st     Stamp
		orphan bool
	}
	leaders := make([]leader, n)
	for i := range leaders {
		script := "exit 0"
		if i%2 == 0 {
			script = "sleep 300 & exit 0"
		}
		cmd := exec.Command("sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		st := NewStamp()
		require.NoError(t, cmd.Start())
		leaders[i] = leader{cmd: cmd, st: st.Leader(cmd.Process.Pid), orphan: i%2 == 0}
	}
	defer func() {
		for _, l := range leaders {
			_ = SignalGroup(l.cmd.Process.Pid, syscall.SIGKILL)
			_ = l.cmd.Wait()
		}
	}()
	for _, l := range leaders {
		w, err := OpenExitWatch(l.cmd.Process.Pid)
		require.NoError(t, err)
		w.Start(func() {})
		<-w.Exited()
		w.Close()
	}
	type answer struct{ empty, sure bool }
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i, l := range leaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			empty, sure := l.st.probe(l.cmd.Process.Pid)
			answers[i] = answer{empty, sure}
		}()
	}
	wg.Wait()
	for i, l := range leaders {
		require.True(t, answers[i].sure, "leader %d: a few pids since the stamps: probed", i)
		require.Equal(t, !l.orphan, answers[i].empty, "leader %d", i)
	}
}
