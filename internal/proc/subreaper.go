package proc

import (
	"bytes"
	"os"
	"os/signal"
	"path"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Subreaping (resman.WithSubreaper). A child subreaper is where the orphans
// of its descendants go when their parent dies, instead of PID 1. So when
// a tracked tree's shell dies before its background children, they become
// the program's children, and when they die, its zombies: the Subreaper
// reaps them, and only them. It never waits for "any child" (wait(-1),
// waitid(P_ALL)): other code in the program starts processes and waits for
// them, and must get their status. A zombie child is reaped only if
//
//   - it is not a process resman tracks (those are reaped by their own
//     child actor's cmd.Wait, for their exit status), and
//   - its process group, or its cgroup (an orphan that left the group with
//     setsid is still in it), is a tracked tree's.
//
// Only code that put a process of its own into a tracked process's group
// or cgroup on purpose could have a child matching that. A tree is tracked
// while its leader is unreaped, so its group id and cgroup cannot have been
// reused. Each zombie is reaped through a pidfd opened before it is checked
// a last time, so a check and the reap always concern the same process.
//
// When: as part of a stop or exit, once the tree is dead and before its
// leader is reaped (Release), and whenever SIGCHLD says a child died while
// its tree still runs (a goroutine owned by the Subreaper).
//
// Our children are listed by /proc/<pid>/task/<tid>/children (orphans join
// the list of the thread that forked the leader), or, on a kernel built
// without it, by a pass over /proc. The kernel lists children one at a
// time, and a child reaped (by its owner) between two entries can hide the
// next one; so a list in which a child has vanished by the end is read
// again.

// BecomeSubreaper makes the program a child subreaper
// (PR_SET_CHILD_SUBREAPER). It is process-wide and stays set; calling it
// again does nothing more.
func BecomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
	}
	return nil
}

// Subreaper reaps the orphans of the process trees tracked with it. The
// program must be a child subreaper (BecomeSubreaper) for orphans to reach
// it. Its SIGCHLD goroutine starts with the first tree and ends at Close.
type Subreaper struct {
	self int // our pid

	mu      sync.Mutex     // guards the fields below
	trees   map[int]tree   // by tracked pid: resman reaps these itself
	groups  map[int]int    // process group → trees with it
	cgroups map[string]int // cgroup, as /proc/<pid>/cgroup names it → trees in it
	sigs    chan os.Signal // SIGCHLD, while the goroutine runs
	running bool           // the goroutine was started
	closed  bool           // Close was called
	stop    chan struct{}  // closed by Close: the goroutine ends
	done    chan struct{}  // closed when the goroutine has ended, or at Close if it never ran
}

// tree is what identifies the members of a tracked process's tree.
type tree struct {
	pgid   int    // its process group; 0: none of its own
	cgroup string // its cgroup; "": none of its own
}

// NewSubreaper returns a Subreaper; nothing runs until the first Track.
func NewSubreaper() *Subreaper {
	return &Subreaper{
		trees:   map[int]tree{},
		groups:  map[int]int{},
		cgroups: map[string]int{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		self:    os.Getpid(),
	}
}

// Track records the tracked process pid, whose reap is its owner's: pgid is
// the group it leads (0: none), and inCgroup says it has a cgroup of its
// own. Call it once pid has started, before it can be reaped; Release
// undoes it.
func (s *Subreaper) Track(pid, pgid int, inCgroup bool) {
	t := tree{pgid: pgid}
	if inCgroup {
		t.cgroup = cgroupOf(pid) // placed there at clone time: its tree's cgroup
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trees[pid] = t
	if t.pgid != 0 {
		s.groups[t.pgid]++
	}
	if t.cgroup != "" {
		s.cgroups[t.cgroup]++
	}
	if !s.running && !s.closed && (t.pgid != 0 || t.cgroup != "") {
		s.running = true
		s.sigs = make(chan os.Signal, 1)
		// Before the goroutine starts, so that no SIGCHLD from now on is missed.
		signal.Notify(s.sigs, syscall.SIGCHLD)
		go s.run() // owned by the Subreaper; ends at Close
	}
}

// Release reaps what has died of pid's tree (not pid itself) and stops
// tracking it. Call it before pid is reaped or handed back: while pid is
// unreaped, its group id and cgroup are still its tree's.
func (s *Subreaper) Release(pid int) {
	s.mu.Lock()
	t, ok := s.trees[pid]
	s.mu.Unlock()
	if !ok {
		return
	}
	if t.pgid != 0 || t.cgroup != "" {
		s.reap(&t)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.trees, pid)
	if t.pgid != 0 {
		if s.groups[t.pgid]--; s.groups[t.pgid] <= 0 {
			delete(s.groups, t.pgid)
		}
	}
	if t.cgroup != "" {
		if s.cgroups[t.cgroup]--; s.cgroups[t.cgroup] <= 0 {
			delete(s.cgroups, t.cgroup)
		}
	}
}

// Close ends the SIGCHLD goroutine (see Done). Track and Release still work
// after it; nothing but them reaps then. Safe to call more than once.
func (s *Subreaper) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.running {
		close(s.stop)
	} else {
		close(s.done)
	}
}

// Done is closed once Close has taken effect.
func (s *Subreaper) Done() <-chan struct{} { return s.done }

// run reaps the orphans of every tracked tree whenever a child dies. SIGCHLD
// is not queued (two deaths may raise one signal), so each pass looks at
// every child.
func (s *Subreaper) run() {
	defer close(s.done)
	defer signal.Stop(s.sigs)
	s.reap(nil) // an orphan that died before Notify
	for {
		select {
		case <-s.stop:
			return
		case <-s.sigs:
			s.reap(nil)
		}
	}
}

// reap reaps the zombie children of ours that belong to t, or to any
// tracked tree if t is nil.
func (s *Subreaper) reap(t *tree) {
	buf := make([]byte, 512)
	for _, pid := range children(s.self) {
		if !s.orphan(t, pid, buf) {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone meanwhile
		}
		// The pidfd pins the process: if pid was reaped and reused since the
		// check, this one sees the newcomer, and the reap below can only
		// take the process checked here.
		if s.orphan(t, pid, buf) {
			var info unix.Siginfo
			_ = unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG, nil)
		}
		_ = unix.Close(fd)
	}
}

// orphan reports whether pid is a zombie of t's tree (any tracked tree's if
// t is nil) that resman does not reap elsewhere.
func (s *Subreaper) orphan(t *tree, pid int, buf []byte) bool {
	s.mu.Lock()
	_, tracked := s.trees[pid]
	s.mu.Unlock()
	if tracked {
		return false // its owner reaps it, for its status
	}
	pgid, state, ok := readStat("/proc/"+strconv.Itoa(pid)+"/stat", buf)
	if !ok || state != 'Z' {
		return false
	}
	if t != nil {
		return (t.pgid != 0 && pgid == t.pgid) || (t.cgroup != "" && within(cgroupOf(pid), t.cgroup))
	}
	s.mu.Lock()
	inGroup, cgroups := s.groups[pgid] > 0, len(s.cgroups)
	s.mu.Unlock()
	if inGroup || cgroups == 0 {
		return inGroup
	}
	cg := cgroupOf(pid) // it may have left the group, not the cgroup
	s.mu.Lock()
	defer s.mu.Unlock()
	for ; cg != "" && cg != "/"; cg = path.Dir(cg) {
		if s.cgroups[cg] > 0 {
			return true
		}
	}
	return false
}

// within reports whether cgroup cg is root or below it.
func within(cg, root string) bool {
	return cg == root || (len(cg) > len(root) && cg[:len(root)] == root && cg[len(root)] == '/')
}

// cgroupOf returns pid's cgroup v2 path ("0::<path>" in /proc/<pid>/cgroup),
// "" if it cannot be read. A zombie still shows the cgroup it died in.
func cgroupOf(pid int) string {
	b, err := readSmall("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return ""
	}
	return parseCgroup(b)
}

// parseCgroup finds the cgroup v2 line of a /proc/<pid>/cgroup file.
func parseCgroup(b []byte) string {
	for line := range bytes.Lines(b) {
		if p, ok := bytes.CutPrefix(bytes.TrimRight(line, "\n"), []byte("0::")); ok && len(p) > 0 {
			return string(p)
		}
	}
	return ""
}

// children lists the children of process self: those of each of its
// threads, from /proc/<self>/task/<tid>/children, or from a pass over /proc
// where the kernel has no such file.
func children(self int) []int {
	if !hasChildrenFiles() {
		return childrenByScan(self)
	}
	var pids []int
	for range maxListings {
		pids = listChildren(self, pids[:0])
		if !anyGone(pids) {
			break
		}
	}
	return pids
}

// maxListings bounds how many times children reads the lists while children
// vanish under it.
const maxListings = 8

// listChildren appends to pids the children of every thread of self.
func listChildren(self int, pids []int) []int {
	dir := "/proc/" + strconv.Itoa(self) + "/task/"
	tids, err := readDirNames(dir)
	if err != nil {
		return pids
	}
	for _, tid := range tids {
		b, err := readSmall(dir + tid + "/children")
		if err != nil {
			continue // the thread has exited
		}
		for _, f := range bytes.Fields(b) {
			if pid, err := strconv.Atoi(string(f)); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// anyGone reports whether one of pids no longer exists (kill(pid, 0), 0.3
// µs; a zombie still exists): it was reaped while the list was read.
func anyGone(pids []int) bool {
	for _, pid := range pids {
		if unix.Kill(pid, 0) == unix.ESRCH {
			return true
		}
	}
	return false
}

// hasChildrenFiles reports whether the kernel has /proc/<pid>/task/<tid>/children
// (CONFIG_PROC_CHILDREN).
var hasChildrenFiles = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/children")
	return err == nil
})

// childrenByScan lists the processes whose parent is self.
func childrenByScan(self int) []int {
	names, err := readDirNames("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		b, err := readSmall("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		if f := statFields(b); len(f) > 1 && string(f[1]) == strconv.Itoa(self) {
			if pid, err := strconv.Atoi(name); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// readDirNames lists a directory's entries.
func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}
