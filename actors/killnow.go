package actors

import (
	"syscall"
	"time"
)

// KillNow tells a process child to end its process now: a stop in progress
// that waits out its grace period (or the exit path that clears what an
// exited leader left behind) SIGKILLs what is left at once, and a stop that
// comes later skips the grace period. The supervisor sends it to every
// process child when a shutdown must not wait (a second signal to
// HandleSignals). Only the owner of the process's end signals it, while the
// leader is unreaped, so no reaped PID is ever signalled. Tasks and custom
// resources ignore it.
type KillNow struct{}

// killer is a resource that KillNow applies to.
type killer interface {
	killNow()
}

// killNow brings every deadline of the process's end forward to now; the
// child's Receive calls it.
func (p *process) killNow() {
	p.hurry(time.Now())
	if !p.killed {
		p.killed = true
		close(p.now)
	}
}

// waitGrace waits after the first signal of a stop until the leader has
// exited, the grace period is over or KillNow came.
func (p *process) waitGrace(sig syscall.Signal, grace time.Duration) {
	if sig == syscall.SIGKILL {
		return
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.watch.Exited():
	case <-t.C:
	case <-p.now:
	}
}

// killNow applies to the current run and to a run being halted (a restart,
// a failed ready check); runs to come are not started once the registration
// is ending.
func (s *supervised) killNow() {
	if s.run != nil {
		s.run.killNow()
	}
	if s.halting != nil && s.halting.run != s.run {
		s.halting.run.killNow()
	}
}
