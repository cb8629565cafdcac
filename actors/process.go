package actors

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/resman-dev/resman/internal/output"
	"github.com/resman-dev/resman/internal/proc"
	"github.com/resman-dev/resman/internal/ready"
	"github.com/resman-dev/resman/messages"
)

// KillWait bounds how long a stop waits, after SIGKILL, for the process and
// its group (or cgroup) to be gone. Past it the stop reports ErrTimeout.
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
	Start   bool                // StartProcess: the child starts cmd
	Watch   *proc.ExitWatch     // RegisterProcess: the watch opened while validating
	Cgroups *proc.CgroupRoot    // WithCgroup: a process the child starts goes in a cgroup of its own below it
	Guard   *proc.Guard         // the host-death watcher; nil: none
	Reaper  *proc.Subreaper     // WithSubreaper: reaps the orphans of the process's tree; nil: none
	Output  func(*output.Batch) // Supervise: where its output lines go besides its tail, a read's per call; nil: nowhere
}

// process is the resource of a process child.
type process struct {
	cmd    *exec.Cmd
	launch bool               // the child starts cmd (else it was started by the caller)
	watch  *proc.ExitWatch    // its exit, seen without reaping it
	cgs    *proc.CgroupRoot   // where its cgroup goes (WithCgroup); nil: none
	guard  *proc.Guard        // the host-death watcher; nil: none
	reaper *proc.Subreaper    // reaps the orphans of its tree (WithSubreaper); nil: none
	lc     messages.Lifecycle // the registration's stop signal and grace period
	scope  scope              // what a stop reaches besides it: chosen once it has started

	mu     sync.Mutex    // guards owner, cutAt, now and killed
	owner  owner         // who ends it; set once
	cutAt  time.Time     // a stop's deadline, when one comes while the exit path clears the group
	now    chan struct{} // closed by KillNow (killnow.go); made when first needed
	killed bool          // now is closed
	reaped chan struct{} // closed when the owner is done with it (reaped, or handed back)
	after  func()        // called once it is reaped or handed back; nil: nothing
	onRun  func(pid int) // called once it started, before its exit is watched; nil: nothing
}

// done closes reaped and runs after: the process is reaped or handed back.
func (p *process) done() {
	close(p.reaped)
	if p.after != nil {
		p.after()
	}
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

// startCmd starts cmd, inside a fresh cgroup when configured (returned;
// nil: none): placed there at clone time, so not even its first
// instruction runs outside.
func (p *process) startCmd() (*proc.Cgroup, error) {
	if p.cgs == nil {
		return nil, p.cmd.Start()
	}
	cg, err := p.cgs.New()
	if err != nil {
		return nil, err
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
		return nil, err
	}
	return cg, nil
}

func (p *process) start(r *Reg, closing bool) {
	if p.launch && closing {
		// The tree is stopping: start nothing new.
		r.reportStart(&Started{H: r.H, Err: messages.ErrClosed})
		r.abandon()
		return
	}
	p.lc = r.lc
	if err := p.begin(r.H, r.opts(), r.c.report); err != nil {
		r.reportStart(&Started{H: r.H, Err: err})
		r.abandon()
		return
	}
	switch {
	case p.launch && r.lc.Ready != nil:
		go p.checkReady(r) // owned by the child: ends when the check passes or fails
	case p.launch:
		r.reportStart(&Started{H: r.H, PID: p.cmd.Process.Pid})
	}
}

// checkReady runs a StartProcess's ready check: StartProcess returns once it
// passes. If it does not, the start's outcome is the failure, and the child
// is asked to stop the process as for any stop: nothing stays tracked.
func (p *process) checkReady(r *Reg) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // owned by checkReady: ends with it, or when the process exits
		select {
		case <-p.watch.Exited():
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := ready.Wait(ctx, *r.lc.Ready, nil); err != nil {
		if p.watch.HasExited() {
			err = fmt.Errorf("exited before its ready check passed: %w", err)
		}
		r.H.start.Store(&Started{H: r.H, Err: fmt.Errorf("%w: %v", messages.ErrTimeout, err)})
		r.c.tell(&End{H: r.H})
		return
	}
	r.reportStart(&Started{H: r.H, PID: p.cmd.Process.Pid, Ready: true})
}

// begin starts cmd (when it is to be launched) and watches it: its exit is
// reported with notify, from the watch goroutine, once it is reaped.
func (p *process) begin(h *Handle, o *Options, notify func(msg any)) error {
	var (
		st proc.Stamp
		cg *proc.Cgroup
	)
	if p.launch {
		st = proc.NewStamp()
		var err error
		if cg, err = p.startCmd(); err != nil {
			return err
		}
	}
	if p.cmd.WaitDelay == 0 {
		// A grandchild holding an output pipe must not hang the reap.
		p.cmd.WaitDelay = o.timeout(p.lc.Grace)
	}
	p.scope = newScope(p.cmd, cg, p.launch, st, p.guard, p.reaper)
	pid := p.cmd.Process.Pid
	if p.watch == nil {
		w, err := proc.OpenExitWatch(pid)
		if err != nil { // cannot happen for a child we just started; do not leak it
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
			p.scope.release()
			return err
		}
		p.watch = w
	}
	p.scope.watch()
	if p.onRun != nil {
		p.onRun(pid)
	}
	p.watch.Start(func() { p.exited(h, o, notify) })
	return nil
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
// KillMode=control-group does when a main process exits: it gets the stop
// signal (SIGTERM unless set), what is left of the grace period, then SIGKILL. Then the leader is reaped:
// no zombie, and its exit status is reported.
func (p *process) exited(h *Handle, o *Options, notify func(msg any)) {
	if p.take(ownerExit) != ownerExit {
		return
	}
	if p.scope.restLeft() {
		// The exit is news at once (Status, events); the reap waits until
		// the rest of the group is gone.
		notify(&Exited{H: h, ExitCode: p.watch.ExitCode()})
		if err := p.clearRest(p.until(time.Now().Add(o.timeout(p.lc.Grace)))); err != nil {
			o.Logger.Warn("resman: processes left behind by an exited process survived SIGKILL", "key", h.Key, "err", err)
		}
	}
	p.scope.unwatch()
	_ = p.cmd.Wait() // the status lands in cmd.ProcessState
	p.done()
	state := p.cmd.ProcessState
	notify(&Exited{H: h, State: state, ExitCode: ExitCode(state)})
}

// clearRest stops the rest of the group or cgroup once the leader has
// exited (and is not reaped).
func (p *process) clearRest(until proc.Until) error {
	p.scope.signal(stopSignal(p.lc.StopSignal))
	return p.killRest(until)
}

// stopSignal is the first signal of a stop: sig, or SIGTERM.
func stopSignal(sig syscall.Signal) syscall.Signal {
	if sig == 0 {
		return syscall.SIGTERM
	}
	return sig
}

// until is the exit path's deadline: its own, or a stop's that came since,
// whichever is sooner.
func (p *process) until(deadline time.Time) proc.Until {
	return func() time.Time {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.cutAt.IsZero() && p.cutAt.Before(deadline) {
			return p.cutAt
		}
		return deadline
	}
}

// hurry brings the exit path's deadline forward to a stop's.
func (p *process) hurry(deadline time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cutAt.IsZero() || deadline.Before(p.cutAt) {
		p.cutAt = deadline
	}
}

// killRest waits until the group (or cgroup) is empty or the deadline
// passes, then SIGKILLs what is left and waits, bounded, until it is gone.
func (p *process) killRest(until proc.Until) error {
	if p.scope.waitEmpty(until) {
		return nil
	}
	return p.scope.kill()
}

func (p *process) end(r *Reg, e *End) {
	switch e.Mode {
	case EndRelease:
		go p.release(r) // owned by the child; ends once the process is handed back
	default:
		go p.stop(r, r.opts().timeout(e.grace(r.lc)), e.signal(r.lc)) // owned by the child; ends within grace + KillWait
	}
}

func (p *process) release(r *Reg) {
	if p.take(ownerRelease) == ownerRelease {
		p.watch.Close()
		p.scope.unwatch()
		if p.watch.HasExited() {
			_ = p.cmd.Wait() // it exited: hand it back reaped, ProcessState set
		}
		p.done()
	} else {
		<-p.reaped // it exited on its own and is being cleared up: hand it back reaped
	}
	p.scope.release() // a populated cgroup goes with the process, to the caller
	r.finish(&Ended{Mode: EndRelease, Cmd: p.cmd, State: p.cmd.ProcessState})
}

func (p *process) stop(r *Reg, grace time.Duration, sig syscall.Signal) {
	state, err := p.halt(grace, sig)
	r.finish(&Ended{Mode: EndStop, Err: err, State: state})
}

// halt stops the process and its group (or cgroup), reaps it and removes
// its cgroup; it returns the reaped state (nil if the leader survived even
// SIGKILL: it is then reaped when it goes).
func (p *process) halt(grace time.Duration, sig syscall.Signal) (*os.ProcessState, error) {
	if p.take(ownerStop) != ownerStop {
		// It exited on its own: its group is being cleared up, by this
		// stop's deadline if that is sooner; wait for that.
		p.hurry(time.Now().Add(grace))
		<-p.reaped
		p.scope.release()
		return p.cmd.ProcessState, nil
	}
	err := p.terminate(grace, sig)
	if err != nil && !p.watch.HasExited() {
		// The leader survived SIGKILL (uninterruptible sleep): reap it when it
		// goes, so it never stays a zombie. The goroutine ends with the process.
		go func() {
			<-p.watch.Exited()
			p.scope.unwatch()
			_ = p.cmd.Wait()
			p.done()
		}()
		return nil, err
	}
	p.watch.Close()
	p.scope.unwatch()
	_ = p.cmd.Wait()
	p.done()
	p.scope.release()
	return p.cmd.ProcessState, err
}

// terminate signals, waits out the grace period, kills and waits until
// nothing of the group (or cgroup) is left. The leader is not reaped yet.
func (p *process) terminate(grace time.Duration, sig syscall.Signal) error {
	sig = stopSignal(sig)
	deadline := time.Now().Add(grace)
	p.scope.signal(sig)
	p.waitGrace(sig, grace)
	if !p.watch.HasExited() {
		// The grace period is over: everything goes at once.
		deadline = time.Now()
	}
	// The rest of the group (or cgroup) gets what is left of the grace
	// period, unless KillNow brings it forward.
	err := p.killRest(p.until(deadline))
	if !p.watch.HasExited() {
		p.scope.signal(syscall.SIGKILL)
		if !waitClosed(p.watch.Exited(), KillWait) {
			return fmt.Errorf("%w: process %d survived SIGKILL", messages.ErrTimeout, p.cmd.Process.Pid)
		}
	}
	return err
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
