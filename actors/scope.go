package actors

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/resman-dev/resman/internal/proc"
	"github.com/resman-dev/resman/messages"
)

// scope is what a stop of a process reaches besides the process itself, and
// what an exit waits for once it has gone: nothing (the process alone), the
// process group it leads, or its cgroup. It is chosen once, when the process
// starts (newScope); the rest of the process's code never asks which it is.
//
// The owner calls signal, restLeft, waitEmpty, kill and unwatch only while
// the process is unreaped: its pid and group id stay reserved, so no signal
// reaches a stranger.
type scope interface {
	// signal sends sig to the process and to the rest of the scope.
	signal(sig syscall.Signal)
	// restLeft reports whether anything of the scope outlives the exited
	// process.
	restLeft() bool
	// waitEmpty waits until nothing else of the scope is left alive (a
	// cgroup counts the process too, a group does not), or until the
	// deadline passes, and reports whether that happened.
	waitEmpty(until proc.Until) bool
	// kill SIGKILLs what is left and waits, at most KillWait, until it is
	// gone; it returns ErrTimeout if it is not.
	kill() error
	// watch puts the scope under the host-death watcher and the subreaper,
	// and a group leader among the tracked leaders, once its exit is
	// watched. unwatch withdraws all that, and reaps the orphans of its tree
	// that have died, before the process is reaped or handed back.
	watch()
	unwatch()
	// release removes what was made for the process (its cgroup), unless a
	// live process is still in it.
	release()
}

// newScope chooses the scope of cmd, which was just started (launched: st
// was taken just before) or registered. guard and reaper are the host-death
// watcher and the subreaper, each nil if not configured.
func newScope(cmd *exec.Cmd, cg *proc.Cgroup, launched bool, st proc.Stamp, guard *proc.Guard, reaper *proc.Subreaper) scope {
	pid := cmd.Process.Pid
	leader := 0 // the group it leads, if not ours
	if pg, err := proc.Getpgid(pid); err == nil && pg == pid && pg != proc.OwnPgid() {
		leader = pid
	}
	switch {
	case cg != nil:
		return cgroup{cg: cg, pid: pid, pgid: leader, guard: guard, reaper: reaper}
	case leader != 0:
		if launched {
			st = st.Leader(pid)
		} else {
			st = proc.StampRegistered(pid)
		}
		return group{pgid: leader, stamp: st, guard: guard, reaper: reaper}
	default:
		return alone{p: cmd.Process, reaper: reaper}
	}
}

// alone is the scope of a process that does not lead a group of its own (it
// is in ours, or in one it joined): a stop reaches it alone, and nothing
// outlives it that resman knows of.
type alone struct {
	p      *os.Process
	reaper *proc.Subreaper
}

func (s alone) signal(sig syscall.Signal) { _ = s.p.Signal(sig) } // through a pidfd: never a reused PID
func (alone) restLeft() bool              { return false }
func (alone) waitEmpty(proc.Until) bool   { return true }
func (alone) kill() error                 { return nil }
func (alone) release()                    {}

// watch tells the subreaper that the process is tracked: it may sit in a
// tracked tree's group, and its reap (for its status) is its owner's.
func (s alone) watch() {
	if s.reaper != nil {
		s.reaper.Track(s.p.Pid, 0, false)
	}
}

func (s alone) unwatch() {
	if s.reaper != nil {
		s.reaper.Release(s.p.Pid)
	}
}

// group is the scope of a process that leads its own process group (not
// ours): a stop reaches the whole group.
type group struct {
	pgid   int        // the group's id: the leader's pid
	stamp  proc.Stamp // the pid counter before the leader started: makes emptiness checks cheap
	guard  *proc.Guard
	reaper *proc.Subreaper
}

func (g group) signal(sig syscall.Signal) { _ = proc.SignalGroup(g.pgid, sig) }

func (g group) restLeft() bool { return !proc.GroupEmpty(g.pgid, g.stamp) }

func (g group) waitEmpty(until proc.Until) bool { return proc.WaitGroupEmpty(g.pgid, g.stamp, until) }

func (g group) kill() error {
	// A group SIGKILL only queues the signals: wait until they are gone.
	_ = proc.SignalGroup(g.pgid, syscall.SIGKILL)
	if !g.waitEmpty(proc.At(time.Now().Add(KillWait))) {
		return fmt.Errorf("%w: process group %d survived SIGKILL", messages.ErrTimeout, g.pgid)
	}
	return nil
}

func (g group) watch() {
	proc.TrackLeader(g.pgid) // group checks skip it: its group is its own
	if g.reaper != nil {
		g.reaper.Track(g.pgid, g.pgid, false)
	}
	if g.guard != nil {
		g.guard.AddGroup(g.pgid)
	}
}

func (g group) unwatch() {
	if g.reaper != nil {
		g.reaper.Release(g.pgid)
	}
	proc.UntrackLeader(g.pgid) // before the reap: after, its pid may be reused
	if g.guard != nil {
		g.guard.RemoveGroup(g.pgid)
	}
}

func (group) release() {}

// cgroup is the scope of a process started in a cgroup of its own
// (WithCgroup): a stop reaches every member, whatever group or session it
// moved to.
type cgroup struct {
	cg     *proc.Cgroup
	pid    int
	pgid   int // the group the process leads as well, 0: none
	guard  *proc.Guard
	reaper *proc.Subreaper
}

// signal needs no reserved id: members are live (zombies leave the
// cgroup), so their pids cannot have been reused.
func (c cgroup) signal(sig syscall.Signal) { c.cg.Signal(sig) }

func (c cgroup) restLeft() bool { return c.cg.Populated() }

func (c cgroup) waitEmpty(until proc.Until) bool { return c.cg.WaitEmpty(until) }

func (c cgroup) kill() error {
	// cgroup.kill reaches members forked meanwhile too, but only queues
	// the signals: wait until they are gone.
	_ = c.cg.Kill()
	if !c.cg.WaitEmpty(proc.At(time.Now().Add(KillWait))) {
		return fmt.Errorf("%w: cgroup %s survived cgroup.kill", messages.ErrTimeout, c.cg.Dir())
	}
	return nil
}

func (c cgroup) watch() {
	if c.pgid != 0 {
		proc.TrackLeader(c.pgid) // a group leader all the same: group checks skip it
	}
	if c.reaper != nil {
		c.reaper.Track(c.pid, c.pgid, true)
	}
	if c.guard != nil {
		c.guard.AddCgroup(c.cg.Dir())
	}
}

func (c cgroup) unwatch() {
	if c.reaper != nil {
		c.reaper.Release(c.pid)
	}
	if c.pgid != 0 {
		proc.UntrackLeader(c.pgid)
	}
	if c.guard != nil {
		c.guard.RemoveCgroup(c.cg.Dir())
	}
}

// release removes the cgroup. The kernel refuses to remove one that a live
// process is in: a populated cgroup goes with the process, to the caller
// (an unregister), or stays after a stop that failed.
func (c cgroup) release() { _ = c.cg.Remove() }
