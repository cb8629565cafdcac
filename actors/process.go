package actors

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/resman-dev/resman/internal/proc"
	"github.com/resman-dev/resman/messages"
)

// KillWait bounds how long a stop waits, after SIGKILL, for the process and
// its group to be gone. Past it the stop reports ErrTimeout.
const KillWait = 5 * time.Second

// owner says which goroutine has taken charge of the process's end. Only
// the owner signals and reaps, and the leader is reaped last: while signals
// fly its PID and group id stay reserved, so none can reach a stranger.
type owner int

const (
	ownerNone    owner = iota
	ownerExit          // it exited on its own: the watch goroutine clears up and reaps
	ownerStop          // a stop
	ownerRelease       // an unregister: handed back
)

// ProcessConfig is what a process child needs besides its cmd.
type ProcessConfig struct {
	Start   bool             // StartProcess: the child starts cmd
	Watch   *proc.ExitWatch  // RegisterProcess: the watch opened while validating
	Cgroups *proc.CgroupRoot // WithCgroup: StartProcess puts cmd in a cgroup of its own below it
	Guard   *proc.Guard      // the host-death watcher; nil: none
	Reaper  *proc.Subreaper  // WithSubreaper: reaps the orphans of the process's tree; nil: none
}

// process is the resource of a process child.
type process struct {
	cmd    *exec.Cmd
	launch bool
	watch  *proc.ExitWatch
	cgs    *proc.CgroupRoot
	guard  *proc.Guard
	pgid   int          // the group to signal; 0: signal the process alone
	stamp  proc.Stamp   // the pid counter before it started: makes group checks cheap
	cg     *proc.Cgroup // its cgroup, if any: a stop signals and kills it whole

	reaper *proc.Subreaper // reaps the orphans of its tree (WithSubreaper); nil: none

	mu     sync.Mutex    // guards owner
	owner  owner         // who ends it; set once
	reaped chan struct{} // closed when the owner is done with it (reaped, or handed back)
}

// ProcessReg returns the registration of cmd.
func ProcessReg(key string, cmd *exec.Cmd, cfg ProcessConfig) *Reg {
	return newReg(messages.KindProcess, key, &process{cmd: cmd, launch: cfg.Start, watch: cfg.Watch, cgs: cfg.Cgroups, guard: cfg.Guard,
		reaper: cfg.Reaper, reaped: make(chan struct{})})
}

// eager: a process's exit is watched from the moment it is registered.
func (p *process) eager() bool { return true }

// WatchProcess validates a started cmd and opens its exit watch: the part
// of RegisterProcess that can fail, done before anything is tracked.
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

func (p *process) start(r *Reg, closing bool) {
	if p.launch {
		err := messages.ErrClosed // the tree is stopping: start nothing new
		if !closing {
			p.stamp = proc.NewStamp()
			err = p.startCmd()
		}
		if err != nil {
			r.reportStart(&Started{H: r.H, Err: err})
			r.abandon()
			return
		}
	}
	if p.cmd.WaitDelay == 0 {
		// A grandchild holding an output pipe must not hang the reap.
		p.cmd.WaitDelay = r.opts().DefaultTimeout
	}
	pid := p.cmd.Process.Pid
	if pg, err := proc.Getpgid(pid); err == nil && pg == pid && pg != proc.OwnPgid() {
		p.pgid = pg // it leads its own group: signal the group
		if p.launch {
			p.stamp = p.stamp.Leader(pid)
		} else {
			p.stamp = proc.StampRegistered(pid)
		}
		proc.TrackLeader(pid)
	}
	if p.watch == nil {
		w, err := proc.OpenExitWatch(pid)
		if err != nil { // cannot happen for a child we just started; do not leak it
			proc.UntrackLeader(pid)
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
			p.removeCgroup()
			r.reportStart(&Started{H: r.H, Err: err})
			r.abandon()
			return
		}
		p.watch = w
	}
	p.guardAdd()
	p.watch.Start(func() { p.exited(r) })
	if p.launch {
		r.reportStart(&Started{H: r.H, PID: pid})
	}
}

func (p *process) guardAdd() {
	if p.reaper != nil {
		p.reaper.Track(p.cmd.Process.Pid, p.pgid, p.cg != nil)
	}
	switch {
	case p.guard == nil:
	case p.cg != nil:
		p.guard.AddCgroup(p.cg.Dir())
	case p.pgid != 0:
		p.guard.AddGroup(p.pgid)
	}
}

// guardRemove withdraws the process from the host-death watcher and from
// the tracked leaders, and reaps the orphans of its tree that have died:
// called before it is reaped or handed back.
func (p *process) guardRemove() {
	if p.reaper != nil {
		p.reaper.Release(p.cmd.Process.Pid)
	}
	if p.pgid != 0 {
		proc.UntrackLeader(p.pgid)
	}
	switch {
	case p.guard == nil:
	case p.cg != nil:
		p.guard.RemoveCgroup(p.cg.Dir())
	case p.pgid != 0:
		p.guard.RemoveGroup(p.pgid)
	}
}

// take makes o the owner if nobody is; it reports who owns the process.
func (p *process) take(o owner) owner {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owner == ownerNone {
		p.owner = o
	}
	return p.owner
}

// exited runs on the watch goroutine once the process has exited on its
// own. What is left of its group (or cgroup) is stopped too, as systemd's
// KillMode=control-group does when a main process exits: it gets SIGTERM,
// what is left of the grace period, then SIGKILL. Then the leader is reaped:
// no zombie, and its exit status is reported.
func (p *process) exited(r *Reg) {
	if p.take(ownerExit) != ownerExit {
		return
	}
	deadline := time.Now().Add(r.opts().DefaultTimeout)
	if err := p.clearRest(deadline); err != nil {
		r.opts().Logger.Warn("resman: processes left behind by an exited process survived SIGKILL", "key", r.H.Key, "err", err)
	}
	p.guardRemove()
	_ = p.cmd.Wait() // the status lands in cmd.ProcessState
	close(p.reaped)
	state := p.cmd.ProcessState
	r.c.report(&Exited{H: r.H, State: state, ExitCode: ExitCode(state)})
}

// clearRest stops the rest of the group or cgroup once the leader has
// exited (and is not reaped).
func (p *process) clearRest(deadline time.Time) error {
	switch {
	case p.cg != nil:
		if !p.cg.Populated() {
			return nil
		}
		p.cg.Signal(syscall.SIGTERM)
	case p.pgid != 0:
		if proc.GroupEmpty(p.pgid, p.stamp) {
			return nil
		}
		_ = proc.SignalGroup(p.pgid, syscall.SIGTERM)
	default:
		return nil
	}
	return p.killRest(deadline)
}

// killRest waits until the group (or cgroup) is empty or the deadline
// passes, then SIGKILLs what is left and waits, bounded, until it is gone.
func (p *process) killRest(deadline time.Time) error {
	if p.cg != nil {
		if p.cg.WaitEmpty(deadline) {
			return nil
		}
		_ = p.cg.Kill()
		if !p.cg.WaitEmpty(time.Now().Add(KillWait)) {
			return fmt.Errorf("%w: cgroup %s survived cgroup.kill", messages.ErrTimeout, p.cg.Dir())
		}
		return nil
	}
	if proc.WaitGroupEmpty(p.pgid, p.stamp, deadline) {
		return nil
	}
	// A group SIGKILL only queues the signals: wait until they are gone.
	_ = proc.SignalGroup(p.pgid, syscall.SIGKILL)
	if !proc.WaitGroupEmpty(p.pgid, p.stamp, time.Now().Add(KillWait)) {
		return fmt.Errorf("%w: process group %d survived SIGKILL", messages.ErrTimeout, p.pgid)
	}
	return nil
}

func (p *process) end(r *Reg, e *End) {
	switch e.Mode {
	case EndRelease:
		go p.release(r) // owned by the child; ends once the process is handed back
	default:
		go p.stop(r, r.opts().timeout(e.Timeout), e.Signal) // owned by the child; ends within grace + KillWait
	}
}

func (p *process) release(r *Reg) {
	if p.take(ownerRelease) == ownerRelease {
		p.watch.Close()
		p.guardRemove()
		if p.watch.HasExited() {
			_ = p.cmd.Wait() // it exited: hand it back reaped, ProcessState set
		}
		close(p.reaped)
	} else {
		<-p.reaped // it exited on its own and is being cleared up: hand it back reaped
	}
	if p.cg != nil && !p.cg.Populated() {
		p.removeCgroup() // a populated one goes with the process, to the caller
	}
	r.finish(&Ended{Mode: EndRelease, Cmd: p.cmd, State: p.cmd.ProcessState})
}

func (p *process) stop(r *Reg, grace time.Duration, sig syscall.Signal) {
	if p.take(ownerStop) != ownerStop {
		// It exited on its own: its group is being cleared up; wait for that.
		<-p.reaped
		p.removeCgroup()
		r.finish(&Ended{Mode: EndStop, State: p.cmd.ProcessState})
		return
	}
	err := p.terminate(grace, sig)
	if err != nil && !p.watch.HasExited() {
		// The leader survived SIGKILL (uninterruptible sleep): reap it when it
		// goes, so it never stays a zombie. The goroutine ends with the process.
		go func() {
			<-p.watch.Exited()
			p.guardRemove()
			_ = p.cmd.Wait()
			close(p.reaped)
		}()
		r.finish(&Ended{Mode: EndStop, Err: err})
		return
	}
	p.watch.Close()
	p.guardRemove()
	_ = p.cmd.Wait()
	close(p.reaped)
	p.removeCgroup()
	r.finish(&Ended{Mode: EndStop, Err: err, State: p.cmd.ProcessState})
}

func (p *process) removeCgroup() {
	if p.cg != nil {
		_ = p.cg.Remove()
	}
}

// terminate signals, waits out the grace period, kills and waits until
// nothing of the group is left. The leader is not reaped yet.
func (p *process) terminate(grace time.Duration, sig syscall.Signal) error {
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	deadline := time.Now().Add(grace)
	p.signal(sig)
	if sig != syscall.SIGKILL {
		waitClosed(p.watch.Exited(), grace)
	}
	if p.pgid == 0 && p.cg == nil {
		if !p.watch.HasExited() {
			p.signal(syscall.SIGKILL)
			if !waitClosed(p.watch.Exited(), KillWait) {
				return messages.ErrTimeout
			}
		}
		return nil
	}
	if !p.watch.HasExited() {
		// The grace period is over: everything goes at once.
		deadline = time.Now()
	}
	// The rest of the group (or cgroup) gets what is left of the grace period.
	err := p.killRest(deadline)
	if !p.watch.HasExited() {
		p.signal(syscall.SIGKILL)
		if !waitClosed(p.watch.Exited(), KillWait) {
			return fmt.Errorf("%w: process %d survived SIGKILL", messages.ErrTimeout, p.cmd.Process.Pid)
		}
	}
	return err
}

// signal sends sig to the cgroup, the group or the process alone. Only
// called by the owner, while the leader is unreaped.
func (p *process) signal(sig syscall.Signal) {
	switch {
	case p.cg != nil:
		p.cg.Signal(sig) // every member, whatever group or session it moved to
	case p.pgid != 0:
		_ = proc.SignalGroup(p.pgid, sig)
	default:
		_ = p.cmd.Process.Signal(sig) // through a pidfd: never a reused PID
	}
}

// waitClosed waits until ch is closed or d has passed.
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

// ExitCode is the exit code of s, -1 if a signal ended the process.
func ExitCode(s *os.ProcessState) int {
	if s == nil {
		return -1
	}
	return s.ExitCode()
}
