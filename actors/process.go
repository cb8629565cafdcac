package actors

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/internal/proc"
	"github.com/resman-dev/resman/messages"
)

// KillWait bounds how long a stop waits, after SIGKILL, for the process and
// its group to be gone. Past it the stop reports ErrTimeout.
const KillWait = 5 * time.Second

// process is the resource of a process child.
type process struct {
	cmd    *exec.Cmd
	launch bool // StartProcess: the child starts cmd
	watch  *proc.ExitWatch
	pgid   int              // the group to signal; 0: signal the process alone
	cgs    *proc.CgroupRoot // WithCgroup: StartProcess puts the process in a cgroup of its own
	cg     *proc.Cgroup     // that cgroup; a stop signals and kills it whole

	mu       sync.Mutex // guards the flags below, and makes a reap and a signal mutually exclusive
	reaped   bool       // cmd.Wait has returned: the PID may be reused, never signal it again
	stopping bool       // a stop owns the process: only the stop goroutine reaps
	released bool       // handed back: nobody here reaps
}

// ProcessProps returns the props of the child that owns cmd. If start is
// true, the child starts cmd (StartProcess) and reports Started, in a cgroup
// of its own below cgroups if that is not nil; otherwise cmd must already be
// started and watch must watch it.
func ProcessProps(h *Handle, cmd *exec.Cmd, start bool, watch *proc.ExitWatch, cgroups *proc.CgroupRoot, opts Options) *actor.Props {
	return newProps(h, &process{cmd: cmd, launch: start, watch: watch, cgs: cgroups}, opts)
}

// startCmd starts cmd, inside a fresh cgroup when configured: placed there
// at clone time, so not even its first instruction runs outside.
func (p *process) startCmd() error {
	if p.cgs == nil {
		return p.cmd.Start()
	}
	cg, err := p.cgs.New()
	if err != nil {
		return err
	}
	if p.cmd.SysProcAttr == nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	p.cmd.SysProcAttr.UseCgroupFD = true
	p.cmd.SysProcAttr.CgroupFD = cg.FD()
	err = p.cmd.Start()
	cg.Close()
	if err != nil {
		_ = cg.Remove()
		return err
	}
	p.cg = cg
	return nil
}

// WatchProcess validates a started cmd and starts watching its exit: it is
// the part of RegisterProcess that can fail, done before anything is tracked.
func WatchProcess(cmd *exec.Cmd) (*proc.ExitWatch, error) {
	if cmd.Process == nil {
		return nil, fmt.Errorf("%w: cmd not started", messages.ErrInvalid)
	}
	if cmd.ProcessState != nil {
		return nil, fmt.Errorf("%w: cmd already waited", messages.ErrInvalid)
	}
	w, err := proc.OpenExitWatch(cmd.Process.Pid)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", messages.ErrInvalid, err)
	}
	return w, nil
}

func (p *process) start(c *child) {
	if p.launch {
		if err := p.startCmd(); err != nil {
			c.report(&Started{Gen: c.h.Gen, Err: err})
			c.abandon()
			return
		}
	}
	if p.cmd.WaitDelay == 0 {
		// A grandchild holding an output pipe must not hang the reap.
		p.cmd.WaitDelay = c.opts.DefaultTimeout
	}
	pid := p.cmd.Process.Pid
	if pg, err := proc.Getpgid(pid); err == nil && pg == pid && pg != proc.OwnPgid() {
		p.pgid = pg // it leads its own group: signal the group
	}
	if p.watch == nil {
		w, err := proc.OpenExitWatch(pid)
		if err != nil { // cannot happen for a child we just started; do not leak it
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
			c.report(&Started{Gen: c.h.Gen, Err: err})
			c.abandon()
			return
		}
		p.watch = w
	}
	p.watch.Start(func() { p.exited(c) })
	if p.launch {
		c.report(&Started{Gen: c.h.Gen, PID: pid})
	}
}

// exited runs once the process has exited on its own: reap it (no zombie)
// unless a stop or a release owns it.
func (p *process) exited(c *child) {
	p.mu.Lock()
	if p.stopping || p.released || p.reaped {
		p.mu.Unlock()
		return
	}
	p.reap()
	state := p.cmd.ProcessState
	p.mu.Unlock()
	c.report(&Exited{Gen: c.h.Gen, State: state, ExitCode: exitCode(state)})
}

// reap waits for the exited process; p.mu is held.
func (p *process) reap() {
	_ = p.cmd.Wait() // the exit status is in cmd.ProcessState
	p.reaped = true
}

func (p *process) end(c *child, e *End) {
	switch e.Mode {
	case EndRelease:
		go p.release(c)
	default:
		go p.stop(c, c.opts.timeout(e.Timeout), e.Signal)
	}
}

func (p *process) release(c *child) {
	p.mu.Lock()
	if !p.reaped {
		p.released = true
	}
	p.mu.Unlock()
	p.watch.Close()
	if p.watch.HasExited() && p.cmd.ProcessState == nil {
		_ = p.cmd.Wait() // it exited: hand it back reaped, ProcessState set
	}
	if p.cg != nil && !p.cg.Populated() {
		_ = p.cg.Remove() // a populated one is the caller's now, with the process
	}
	c.finish(&Ended{Mode: EndRelease, Cmd: p.cmd, State: p.cmd.ProcessState})
}

func (p *process) stop(c *child, grace time.Duration, sig syscall.Signal) {
	p.mu.Lock()
	if p.reaped {
		p.mu.Unlock()
		// It exited on its own; with a cgroup, what it left behind goes too.
		c.finish(&Ended{Mode: EndStop, Err: p.killCgroup(), State: p.cmd.ProcessState})
		return
	}
	p.stopping = true // from here only this goroutine signals and reaps
	p.mu.Unlock()

	err := p.terminate(grace, sig)
	if err != nil && !p.watch.HasExited() {
		// It survived SIGKILL (uninterruptible sleep): reap it when it goes,
		// so it never stays a zombie. The goroutine ends with the process.
		go func() {
			<-p.watch.Exited()
			_ = p.cmd.Wait()
		}()
		c.finish(&Ended{Mode: EndStop, Err: err})
		return
	}
	p.watch.Close()
	p.mu.Lock()
	p.reap()
	p.mu.Unlock()
	if p.cg != nil {
		if rmErr := p.cg.Remove(); err == nil {
			err = rmErr
		}
	}
	c.finish(&Ended{Mode: EndStop, Err: err, State: p.cmd.ProcessState})
}

// killCgroup empties and removes the cgroup of a process already reaped.
func (p *process) killCgroup() error {
	if p.cg == nil {
		return nil
	}
	if p.cg.Populated() {
		_ = p.cg.Kill()
		if !p.cg.WaitEmpty(time.Now().Add(KillWait)) {
			return fmt.Errorf("%w: cgroup %s survived cgroup.kill", messages.ErrTimeout, p.cg.Dir())
		}
	}
	return p.cg.Remove()
}

// terminate signals, waits out the grace period, kills and waits until
// nothing of the group is left. The leader is not reaped yet, so its PID and
// group id stay reserved throughout and no signal can reach a stranger.
func (p *process) terminate(grace time.Duration, sig syscall.Signal) error {
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	deadline := time.Now().Add(grace)
	p.signal(sig)
	if sig != syscall.SIGKILL {
		t := time.NewTimer(grace)
		select {
		case <-p.watch.Exited():
		case <-t.C:
		}
		t.Stop()
	}
	if p.cg != nil {
		// The leader is gone (or the grace period is over); the rest of the
		// cgroup gets what is left of it, then cgroup.kill.
		if p.watch.HasExited() && p.cg.WaitEmpty(deadline) {
			return nil
		}
		_ = p.cg.Kill()
		if !waitClosed(p.watch.Exited(), KillWait) {
			return messages.ErrTimeout
		}
		if !p.cg.WaitEmpty(time.Now().Add(KillWait)) {
			return fmt.Errorf("%w: cgroup %s survived cgroup.kill", messages.ErrTimeout, p.cg.Dir())
		}
		return nil
	}
	if p.pgid == 0 {
		if !p.watch.HasExited() {
			p.signal(syscall.SIGKILL)
			if !waitClosed(p.watch.Exited(), KillWait) {
				return messages.ErrTimeout
			}
		}
		return nil
	}
	// The leader is gone (or the grace period is over); the rest of the
	// group gets what is left of the grace period, then SIGKILL.
	if p.watch.HasExited() && proc.WaitGroupEmpty(p.pgid, deadline) {
		return nil
	}
	p.signal(syscall.SIGKILL)
	if !waitClosed(p.watch.Exited(), KillWait) {
		return messages.ErrTimeout
	}
	// A group SIGKILL only queues the signals: wait until they are gone.
	if !proc.WaitGroupEmpty(p.pgid, time.Now().Add(KillWait)) {
		return fmt.Errorf("%w: process group %d survived SIGKILL", messages.ErrTimeout, p.pgid)
	}
	return nil
}

// signal sends sig to the group or to the process alone. Only called while
// the leader is unreaped.
func (p *process) signal(sig syscall.Signal) {
	if p.cg != nil {
		p.cg.Signal(sig) // every member, whatever group or session it moved to
		return
	}
	if p.pgid != 0 {
		_ = proc.SignalGroup(p.pgid, sig)
		return
	}
	_ = p.cmd.Process.Signal(sig) // through a pidfd: never a reused PID
}

func (p *process) stopped(*child) {}

func waitClosed(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// exitCode is the exit code, -1 if a signal ended the process.
func exitCode(s *os.ProcessState) int {
	if s == nil {
		return -1
	}
	return s.ExitCode()
}

// ExitCode is exported for the supervisor.
func ExitCode(s *os.ProcessState) int { return exitCode(s) }
