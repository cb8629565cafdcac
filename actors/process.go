package actors

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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

// owner says which path has taken charge of the process's end. Only the
// owner signals and reaps, and the leader is reaped last: while signals fly
// its PID and group id stay reserved, so none can reach a stranger. The
// child's Receive decides (claim): the exit watch reports the exit to the
// child (leaderExited) instead of acting on it, so no lock is needed.
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

	// Owned by the child's Receive:
	owner  owner     // who ends it; set once
	cutAt  time.Time // the soonest deadline a stop or KillNow asked of the exit path
	killed bool      // now is closed

	cut    chan time.Time // cutAt, for the owner's deadline (until); the child is the one sender
	now    chan struct{}  // closed by KillNow (killnow.go)
	reaped chan struct{}  // closed when the owner is done with it (reaped, or handed back)
	after  func()         // called once it is reaped or handed back; nil: nothing
	onRun  func(pid int)  // called once it started, before its exit is watched; nil: nothing
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
	return newReg(messages.KindProcess, key, newProcess(process{cmd: cmd, launch: cfg.Start, watch: cfg.Watch, cgs: cfg.Cgroups, guard: cfg.Guard,
		reaper: cfg.Reaper}))
}

// newProcess returns p with its channels made.
func newProcess(p process) *process {
	p.cut, p.now, p.reaped = make(chan time.Time, 1), make(chan struct{}), make(chan struct{})
	return &p
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
	if err := p.begin(r.H, r.opts(), r.c.tell, r.c.relay); err != nil {
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
	r.relayStart(&Started{H: r.H, PID: p.cmd.Process.Pid, Ready: true})
}

// begin starts cmd (when it is to be launched) and watches it: the watch
// tells the child (tell) that the leader exited, and if the exit path takes
// charge, the exit is reported with notify once the process is reaped.
func (p *process) begin(h *Handle, o *Options, tell, notify func(msg any)) error {
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
	p.watch.Start(func() { tell(&leaderExited{p: p, h: h, o: o, notify: notify}) })
	return nil
}

// leaderExited tells the child that a process's leader exited (it is not
// reaped yet). Unless a stop or an unregister has taken charge, the exit
// path does (exited).
type leaderExited struct {
	p      *process
	h      *Handle
	o      *Options
	notify func(msg any)
}

// claim makes o the owner of the process's end if nobody is, and reports
// whether it did. Only the child's Receive calls it.
func (p *process) claim(o owner) bool {
	if p.owner != ownerNone {
		return false
	}
	p.owner = o
	return true
}

// handle runs in the child's Receive.
func (m *leaderExited) handle() {
	if m.p.claim(ownerExit) {
		go m.p.exited(m.h, m.o, m.notify) // owned by the child: ends once the process is reaped
	}
}

// exited runs once the process has exited on its own, in a goroutine of
// the child's. What is left of its group (or cgroup) is stopped too, as systemd's
// KillMode=control-group does when a main process exits: it gets the stop
// signal (SIGTERM unless set), what is left of the grace period, then SIGKILL. Then the leader is reaped:
// no zombie, and its exit status is reported.
func (p *process) exited(h *Handle, o *Options, notify func(msg any)) {
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

// until is the owner's deadline: its own, or a sooner one that a stop or
// KillNow sent since (hurry). Only the owner's goroutine reads it.
func (p *process) until(deadline time.Time) proc.Until {
	return func() time.Time {
		select {
		case t := <-p.cut:
			if t.Before(deadline) {
				deadline = t
			}
		default:
		}
		return deadline
	}
}

// hurry brings the owner's deadline forward; the child's Receive calls it.
// The child is cut's one sender, and what it sends is the soonest deadline
// yet, so it may drop an unread one.
func (p *process) hurry(deadline time.Time) {
	if !p.cutAt.IsZero() && !deadline.Before(p.cutAt) {
		return
	}
	p.cutAt = deadline
	select {
	case <-p.cut:
	default:
	}
	p.cut <- deadline
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
		own := p.claim(ownerRelease)
		go p.release(r, own) // owned by the child; ends once the process is handed back
	default:
		grace := r.opts().timeout(e.grace(r.lc))
		own := p.claimStop(grace)
		go p.stop(r, own, grace, e.signal(r.lc)) // owned by the child; ends within grace + KillWait
	}
}

// claimStop takes charge of the process's end for a stop, in the child's
// Receive. If the exit path has it, its deadline comes forward to the
// stop's (the stop then waits for it).
func (p *process) claimStop(grace time.Duration) bool {
	if p.claim(ownerStop) {
		return true
	}
	if p.owner == ownerExit {
		p.hurry(time.Now().Add(grace))
	}
	return false
}

// release hands the process back; own: the unregister took charge of its
// end (claim), else the exit path has it.
func (p *process) release(r *Reg, own bool) {
	if own {
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

func (p *process) stop(r *Reg, own bool, grace time.Duration, sig syscall.Signal) {
	state, err := p.halt(own, grace, sig)
	r.finish(&Ended{Mode: EndStop, Err: err, State: state})
}

// halt stops the process and its group (or cgroup), reaps it and removes
// its cgroup; it returns the reaped state (nil if the leader survived even
// SIGKILL: it is then reaped when it goes). own: the result of claimStop.
func (p *process) halt(own bool, grace time.Duration, sig syscall.Signal) (*os.ProcessState, error) {
	if !own {
		// It exited on its own: its group is being cleared up, by this
		// stop's deadline if that is sooner (claimStop); wait for that.
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
