package actors

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/resman-dev/resman/internal/ready"
	"github.com/resman-dev/resman/messages"
)

// supervised is the resource of a Supervise registration: one run after
// another. Its child actor owns it whole: it starts each run, hears of its
// end (the run's watch goroutine sends the child a message), decides with
// the restart policy, waits out the backoff (a timer sends a message), and
// ends it. Every field is owned by the child's Receive; the goroutines and
// timers it starts only send messages to the child (tell); a stopping
// child goes on reading them until its registration has ended.
type supervised struct {
	spec    messages.ProcessSpec
	cfg     ProcessConfig
	rs      *restarter
	run     *process  // the current run; nil between runs
	began   time.Time // when run started
	phase   phase
	gen     int                // the backoff timer's generation: a stale timer's message is ignored
	timer   *time.Timer        // the backoff wait, if any
	check   context.CancelFunc // cancels the current run's ready check, if one runs
	last    *os.ProcessState   // the last run's reaped state
	lastCmd *exec.Cmd          // the last run's cmd, once reaped: what an unregister between runs hands back
	out     *outputs           // its output across runs

	halting  *halt      // a goroutine is stopping the current run (a restart, a failed ready check)
	restarts []*Restart // RestartProcess requests waiting for the new run
	ended    bool       // an End was accepted, or the first start failed: nothing more is started
}

type phase int

const (
	phaseFirst    phase = iota // the first run is starting: Supervise waits for it
	phaseStarting              // a later run is starting: its ready check runs
	phaseRunning               // the run is up
	phaseBackoff               // waiting to restart
	phaseDone                  // exited for good, or gave up
)

// halt is a stop of the current run that the registration outlives (a
// restart, a failed ready check). A stop of the whole registration that
// comes meanwhile waits for it on done, not for a message.
type halt struct {
	run      *process
	notReady error         // the ready check's failure, if that is why
	done     chan struct{} // closed when the run is stopped and reaped
	state    *os.ProcessState
	err      error
}

// SupervisedReg returns the registration of a supervised process.
func SupervisedReg(key string, spec messages.ProcessSpec, cfg ProcessConfig, policy *messages.RestartPolicy) *Reg {
	return newReg(messages.KindProcess, key, &supervised{spec: spec, cfg: cfg, rs: newRestarter(policy), out: &outputs{sink: cfg.Output}})
}

// Restart asks a supervised process's child to stop the current run and
// start a new one at once (RestartProcess). The child answers RestartDone.
type Restart struct {
	H *Handle
}

// The child's own messages, from the goroutines and timers it starts; each
// names the resource it is about, since a child serves one registration
// after another.
type (
	runEnded struct {
		s   *supervised
		run *process
		ex  *Exited
	}
	backoffOver struct {
		s   *supervised
		gen int
	}
	readyDone struct {
		s   *supervised
		run *process
		err error
	}
	halted struct {
		s *supervised
		h *halt
	}
)

func (s *supervised) eager() bool { return true }

func (s *supervised) start(r *Reg, closing bool) {
	if closing {
		r.reportStart(&Started{H: r.H, Err: messages.ErrClosed})
		r.abandon()
		return
	}
	if err := s.startRun(r); err != nil {
		s.ended = true
		r.reportStart(&Started{H: r.H, Err: err})
		r.abandon()
		return
	}
	if r.lc.Ready == nil {
		s.up(r)
	}
}

// Isolate gives a cmd that resman starts its own process group, so a stop
// can reach its whole tree, and a parent-death signal, so it dies with the
// host. A cmd whose SysProcAttr the caller set is left alone.
func Isolate(cmd *exec.Cmd) {
	if cmd.SysProcAttr != nil {
		return
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// command makes the cmd of one run.
func (s *supervised) command() *exec.Cmd {
	cmd := exec.Command(s.spec.Command[0], s.spec.Command[1:]...)
	if len(s.spec.Env) > 0 {
		cmd.Env = append(os.Environ(), s.spec.Env...)
	}
	cmd.Dir = s.spec.Dir
	Isolate(cmd)
	return cmd
}

// startRun starts a run and, with a ready check, checks it in a goroutine.
// Without one the caller marks the run up (up) once it has reported it, so
// the supervisor learns of a new run before a RestartProcess is answered.
func (s *supervised) startRun(r *Reg) error {
	cmd := s.command()
	ro, err := s.out.pipes(r.lc.Ready != nil && r.lc.Ready.Output != "")
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = ro.outW, ro.errW
	p := newProcess(process{cmd: cmd, launch: true, cgs: s.cfg.Cgroups, guard: s.cfg.Guard, reaper: s.cfg.Reaper, lc: r.lc,
		onRun: func(pid int) { s.out.started(ro, r.H.Key, pid) },
		// The run's end waits until its last lines are delivered (for up to
		// captureGrace): whoever learns of the end (WaitProcess, events, a
		// program that exits when its processes have) has had them. after
		// runs on the goroutine that reaped the run, never in Receive.
		after: func() { s.out.ended(ro) }})
	c := r.c
	if err := p.begin(r.H, r.opts(), c.tell, func(msg any) { c.tell(&runEnded{s: s, run: p, ex: msg.(*Exited)}) }); err != nil {
		ro.failed()
		return err
	}
	s.run, s.began = p, time.Now()
	if r.lc.Ready == nil {
		return nil
	}
	if s.phase != phaseFirst {
		s.phase = phaseStarting
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.check = cancel
	check := *r.lc.Ready
	go func() { // owned by the child: ends when the check passes, fails or is cancelled
		err := ready.Wait(ctx, check, ro.feed.lines())
		ro.feed.stop()
		cancel()
		c.tell(&readyDone{s: s, run: p, err: err})
	}()
	return nil
}

// up records that the current run is up: started, and ready if checked.
func (s *supervised) up(r *Reg) {
	if s.phase == phaseFirst {
		r.reportStart(&Started{H: r.H, PID: s.run.cmd.Process.Pid, Ready: r.lc.Ready != nil})
	} else if s.phase == phaseStarting {
		r.c.report(&Ready{H: r.H})
	}
	s.phase = phaseRunning
	s.answerRestarts(r, nil)
}

func (s *supervised) answerRestarts(r *Reg, err error) {
	for _, q := range s.restarts {
		r.c.report(&RestartDone{H: q.H, Err: err})
	}
	s.restarts = nil
}

// receive handles the child's own messages and Restart.
func (s *supervised) receive(r *Reg, msg any) {
	switch msg := msg.(type) {
	case *runEnded:
		if msg.s == s {
			s.runEnded(r, msg)
		}
	case *backoffOver:
		if msg.s == s && msg.gen == s.gen && s.phase == phaseBackoff && !s.ended {
			s.timer = nil
			s.rs.restarts++
			s.next(r)
		}
	case *readyDone:
		if msg.s == s {
			s.readyDone(r, msg)
		}
	case *halted:
		if msg.s == s {
			s.halted(r, msg.h)
		}
	case *Restart:
		if msg.H == r.H {
			s.restart(r, msg)
		}
	}
}

// next starts the next run; a run that cannot start is a failed run.
func (s *supervised) next(r *Reg) {
	if err := s.startRun(r); err != nil {
		r.opts().Logger.Warn("resman: a run of a supervised process could not start", "key", r.H.Key, "err", err)
		s.answerRestarts(r, err)
		s.decide(r, 0, false, &Exited{H: r.H, ExitCode: -1, Err: err})
		return
	}
	r.c.report(&Restarted{H: r.H, PID: s.run.cmd.Process.Pid, Restarts: s.rs.restarts, Starting: s.phase == phaseStarting})
	if r.lc.Ready == nil {
		s.up(r) // after Restarted: a RestartProcess answered sees the new run in Status
	}
}

func (s *supervised) runEnded(r *Reg, msg *runEnded) {
	if msg.run != s.run || s.ended || s.halting != nil {
		return // an old run, or one that a stop or restart is ending
	}
	if msg.ex.State == nil {
		// The leader exited; the rest of its group is being cleared.
		r.c.report(msg.ex)
		return
	}
	lasted := time.Since(s.began)
	s.run, s.last, s.lastCmd = nil, msg.ex.State, msg.run.cmd
	if s.check != nil {
		s.check()
		s.check = nil
	}
	if s.phase == phaseFirst {
		// It exited before it was ready: the first start failed.
		s.ended = true
		r.reportStart(&Started{H: r.H, Err: fmt.Errorf("exited (code %d) before its ready check passed", msg.ex.ExitCode)})
		r.abandon()
		return
	}
	s.decide(r, lasted, msg.ex.ExitCode == 0, msg.ex)
	// After the exit is reported: a RestartProcess answered sees it in Status.
	s.answerRestarts(r, fmt.Errorf("the new run exited (code %d) before its ready check passed", msg.ex.ExitCode))
}

// decide reports the end of a run that ended on its own (or could not
// start) and applies the policy to it.
func (s *supervised) decide(r *Reg, lasted time.Duration, ok bool, ex *Exited) {
	d, delay := s.rs.next(time.Now(), lasted, ok)
	ex.More = d != stopHere
	ex.Restarts = s.rs.restarts
	r.c.report(ex)
	switch d {
	case stopHere:
		s.phase = phaseDone
	case giveUp:
		s.phase = phaseDone
		r.c.report(&GaveUp{H: r.H, State: s.last, Restarts: s.rs.restarts,
			Err: fmt.Errorf("%w: more than %d restarts within %v", messages.ErrRestartLimit, s.rs.p.MaxRestarts, s.rs.p.Window)})
	default:
		s.phase = phaseBackoff
		s.gen++
		gen, c := s.gen, r.c
		s.timer = time.AfterFunc(delay, func() { c.tell(&backoffOver{s: s, gen: gen}) })
		r.c.report(&Restarting{H: r.H, Delay: delay, Restarts: s.rs.restarts})
	}
}

func (s *supervised) readyDone(r *Reg, msg *readyDone) {
	if msg.run != s.run || s.ended || s.halting != nil {
		return
	}
	s.check = nil
	if msg.err == nil {
		s.up(r)
		return
	}
	// Not ready in time: the run is stopped, and is a failed run (a
	// RestartProcess waiting for it fails, and is not made again).
	s.answerRestarts(r, fmt.Errorf("%w: %v", messages.ErrTimeout, msg.err))
	s.haltRun(r, msg.err)
}

// haltRun stops the current run in a goroutine; halted follows.
func (s *supervised) haltRun(r *Reg, notReady error) {
	h := &halt{run: s.run, notReady: notReady, done: make(chan struct{})}
	s.halting = h
	if s.check != nil {
		s.check()
		s.check = nil
	}
	grace, sig, c := r.opts().timeout(r.lc.Grace), r.lc.StopSignal, r.c
	own := h.run.claimStop(grace)
	go func() { // owned by the child: ends once the run is stopped and reaped
		h.state, h.err = h.run.halt(own, grace, sig)
		close(h.done)
		c.tell(&halted{s: s, h: h})
	}()
}

func (s *supervised) halted(r *Reg, h *halt) {
	if h != s.halting || s.ended {
		return // the registration's end took over
	}
	s.halting, s.run, s.last, s.lastCmd = nil, nil, h.state, h.run.cmd
	code := ExitCode(h.state)
	switch {
	case s.phase == phaseFirst:
		s.ended = true
		r.reportStart(&Started{H: r.H, Err: fmt.Errorf("%w: %v", messages.ErrTimeout, h.notReady)})
		r.abandon()
	case len(s.restarts) > 0:
		// RestartProcess: a new run at once, the backoff reset, not counted.
		r.c.report(&Exited{H: r.H, State: h.state, ExitCode: code, More: true, Restarts: s.rs.restarts})
		s.rs.manual()
		s.next(r)
	default:
		// A later run that failed its ready check is a failed run.
		s.decide(r, time.Since(s.began), false, &Exited{H: r.H, State: h.state, ExitCode: code, Err: h.notReady})
	}
}

func (s *supervised) restart(r *Reg, q *Restart) {
	if s.ended {
		r.c.report(&RestartDone{H: q.H, Err: fmt.Errorf("%w: it is being stopped", messages.ErrNotRegistered)})
		return
	}
	s.restarts = append(s.restarts, q)
	switch {
	case s.halting != nil:
		// A stop of the current run is under way; the new run follows it.
	case s.run != nil:
		s.haltRun(r, nil)
	default:
		// Waiting out a backoff, exited for good, or given up: start now.
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
		s.gen++
		if s.phase == phaseDone {
			s.rs.recent = nil // revived: the limit counts from here
		}
		s.rs.manual()
		s.next(r)
	}
}

func (s *supervised) end(r *Reg, e *End) {
	s.ended = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.check != nil {
		s.check()
		s.check = nil
	}
	switch {
	case s.halting != nil:
		h := s.halting
		go func() { // owned by the child: ends when the halt under way does
			<-h.done
			r.finish(&Ended{Mode: e.Mode, Err: h.err, State: h.state, Cmd: h.run.cmd})
		}()
	case s.run != nil && e.Mode == EndRelease:
		own := s.run.claim(ownerRelease)
		go s.run.release(r, own) // owned by the child; ends once the run is handed back
	case s.run != nil:
		run, grace, sig := s.run, r.opts().timeout(e.grace(r.lc)), e.signal(r.lc)
		own := run.claimStop(grace)
		go run.stop(r, own, grace, sig) // owned by the child; ends within grace + KillWait
	default:
		// Between runs: a stop during a backoff wait cancels the restart; an
		// unregister hands back the last run's cmd, reaped.
		r.conclude(&Ended{Mode: e.Mode, State: s.last, Cmd: s.lastCmd})
	}
}

// Tail returns up to the last n lines of a supervised process's output,
// oldest first, across its runs.
func (r *Reg) Tail(n int) ([]messages.OutputLine, bool) {
	s, ok := r.res.(*supervised)
	if !ok {
		return nil, false
	}
	return s.out.tail.Last(n), true
}

// DroppedLines counts a supervised process's output lines that never
// reached a consumer. It is read by the supervisor for Status, the one
// value of a child's that it reads: an atomic the capture goroutines add to.
func (r *Reg) DroppedLines() int {
	if s, ok := r.res.(*supervised); ok {
		return int(s.out.dropped.Load())
	}
	return 0
}
