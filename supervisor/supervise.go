package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/actors"
	"github.com/resman-dev/resman/internal/output"
	"github.com/resman-dev/resman/internal/ready"
	"github.com/resman-dev/resman/messages"
)

// What each registration accepts of a Lifecycle.
type allows struct {
	restart, ready, output, signal bool
}

var (
	allowRegisterProcess = allows{signal: true}
	allowStartProcess    = allows{signal: true, ready: true}
	allowSupervise       = allows{signal: true, ready: true, output: true, restart: true}
	allowRegisterTask    = allows{}
	allowGo              = allows{ready: true, restart: true}
	allowCustom          = allows{}
)

// checkLifecycle returns why lc does not fit a registration of kind, or "".
func (s *supervisor) checkLifecycle(kind messages.Kind, lc messages.Lifecycle, a allows) string {
	switch {
	case lc.Restart != nil && !a.restart:
		return "a restart policy needs Supervise or Go (a cmd or a Task cannot run twice)"
	case lc.Restart != nil:
		if why := actors.ValidatePolicy(*lc.Restart); why != "" {
			return "restart policy: " + why
		}
	}
	switch {
	case lc.StopSignal != 0 && !a.signal:
		return fmt.Sprintf("a stop signal applies to processes, not to a %v", kind)
	case lc.StopSignal < 0 || lc.StopSignal > maxSignal:
		return fmt.Sprintf("stop signal %d", int(lc.StopSignal))
	case lc.Grace < 0:
		return fmt.Sprintf("negative grace period %v", lc.Grace)
	case lc.Ready != nil && !a.ready:
		return "a ready check needs Supervise, StartProcess or Go"
	case lc.Ready != nil:
		if err := ready.Validate(*lc.Ready, a.output); err != nil {
			return err.Error()
		}
	}
	for _, ref := range lc.DependsOn {
		if d := s.reg.get(ref.Kind, ref.Key); d == nil || d.ending {
			return fmt.Sprintf("it depends on %v %q, which is not registered", ref.Kind, ref.Key)
		}
	}
	return ""
}

func (s *supervisor) supervise(ctx actor.Context, msg *messages.Supervise) {
	const op = "supervise"
	if s.waitForDeps(ctx, msg, msg.Lifecycle) {
		return
	}
	argErr := ""
	if len(msg.Spec.Command) == 0 || msg.Spec.Command[0] == "" {
		argErr = "empty Command"
	}
	if argErr == "" {
		argErr = s.checkLifecycle(messages.KindProcess, msg.Lifecycle, allowSupervise)
	}
	if err := s.admit(messages.KindProcess, msg.Key, op, argErr); err != nil {
		respond(ctx, &messages.SuperviseResponse{Err: err})
		return
	}
	to := ctx.Sender()
	reg := actors.SupervisedReg(msg.Key, msg.Spec,
		actors.ProcessConfig{Cgroups: s.cfg.Cgroup, Guard: s.guard, Reaper: s.reaper, Output: s.output}, msg.Lifecycle.Restart)
	s.track(ctx, msg, reg.WithLifecycle(msg.Lifecycle), true, func(e *entry) {
		e.op, e.supervised = op, true
		e.started = func(_ *actors.Started, err error) { send(s.system, to, &messages.SuperviseResponse{Err: err}) }
	})
}

// restartProcess forwards a RestartProcess to the child of a supervised process.
func (s *supervisor) restartProcess(ctx actor.Context, msg *messages.RestartProcess) {
	const op = "restart"
	fail := func(err error) { respond(ctx, &messages.RestartProcessResponse{Err: err}) }
	e := s.reg.get(messages.KindProcess, msg.Key)
	switch {
	case msg.Key == "":
		fail(messages.Invalid(messages.KindProcess, msg.Key, op, "empty key"))
	case s.closing:
		fail(messages.NewError(messages.KindProcess, msg.Key, op, messages.ErrClosed))
	case e == nil || e.pending:
		fail(messages.NewError(messages.KindProcess, msg.Key, op, messages.ErrNotRegistered))
	case !e.supervised:
		fail(messages.Invalid(messages.KindProcess, msg.Key, op, "not started by Supervise"))
	case e.ending:
		fail(messages.NewError(messages.KindProcess, msg.Key, op, fmt.Errorf("%w: it is being stopped", messages.ErrNotRegistered)))
	default:
		to := ctx.Sender()
		e.restartWait = append(e.restartWait, func(err error) { send(s.system, to, &messages.RestartProcessResponse{Err: err}) })
		if len(e.restartWait) == 1 {
			ctx.Send(e.child.PID, &actors.Restart{H: e.h})
		}
	}
}

func (s *supervisor) onRestartDone(msg *actors.RestartDone) {
	e := s.reg.of(msg.H)
	if e == nil {
		return
	}
	var err error
	if msg.Err != nil {
		err = messages.NewError(e.h.Kind, e.h.Key, "restart", msg.Err)
	}
	for _, w := range e.restartWait {
		w(err)
	}
	e.restartWait = nil
}

func (s *supervisor) onRestarting(msg *actors.Restarting) {
	e := s.reg.of(msg.H)
	if e == nil || e.ending {
		return
	}
	e.state, e.pid, e.restarts = messages.StateRestarting, 0, msg.Restarts
	s.publishWith(e, messages.Event{Type: messages.EventRestarting, Delay: msg.Delay})
}

func (s *supervisor) onRestarted(msg *actors.Restarted) {
	e := s.reg.of(msg.H)
	if e == nil || e.ending {
		return
	}
	e.state, e.pid, e.restarts, e.exited, e.gaveUp = messages.StateRunning, msg.PID, msg.Restarts, false, nil
	if msg.Starting {
		e.state = messages.StateStarting
	}
	s.publishWith(e, messages.Event{Type: messages.EventRestarted})
}

func (s *supervisor) onReady(msg *actors.Ready) {
	e := s.reg.of(msg.H)
	if e == nil || e.ending {
		return
	}
	e.state = messages.StateRunning
	s.publishWith(e, messages.Event{Type: messages.EventReady})
	s.unblock()
}

func (s *supervisor) onGaveUp(msg *actors.GaveUp) {
	e := s.reg.of(msg.H)
	if e == nil {
		return
	}
	e.restarts, e.gaveUp = msg.Restarts, msg.Err
	if msg.State != nil {
		e.exit = msg.State
	}
	if !e.ending {
		e.state, e.pid = messages.StateFailed, 0
	}
	err := messages.NewError(e.h.Kind, e.h.Key, "wait", msg.Err)
	for _, to := range e.exitWait {
		send(s.system, to, &messages.WaitProcessResponse{State: e.exit, Err: err})
	}
	e.exitWait = nil
	s.publishWith(e, messages.Event{Type: messages.EventGaveUp, Err: msg.Err})
}

// publishWith publishes ev, filled in with e's kind, key, pid and restarts.
func (s *supervisor) publishWith(e *entry, ev messages.Event) {
	if !s.rt.bus.active() || e.released {
		return
	}
	ev.Kind, ev.Key, ev.PID, ev.Restarts, ev.At = e.h.Kind, e.h.Key, e.pid, e.restarts, time.Now()
	s.rt.bus.publish(ev)
}

// outputSink is where supervised processes' output lines go besides their
// tails: the output hook, the logger (one record per line at Info, only
// when it is enabled: the default logger is silent), and the subscribers
// that asked for output. It runs on the capture goroutines, so a slow hook
// only makes the capture drop the oldest lines of that process. A line
// becomes a string only for those that take one (OutputBytes does not).
func (s *supervisor) outputSink() func(*output.Batch) {
	raw, hook, logger, bus := s.cfg.OutputBytes, s.cfg.OutputHook, s.cfg.Logger, s.rt.bus
	logging := logger.Enabled(context.Background(), slog.LevelInfo)
	line := func(l *output.Line) {
		ol := l.OutputLine()
		if hook != nil {
			s.callOutputHook(hook, ol)
		}
		if logging {
			logger.Info(ol.Text, "key", ol.Key, "pid", ol.PID, "stream", ol.Stream)
		}
		bus.sendOutput(ol)
	}
	return func(b *output.Batch) {
		if raw != nil {
			s.callOutputBytes(raw, b)
		}
		if hook != nil || logging || bus.wantsOutput() {
			b.Each(line)
		}
	}
}

func (s *supervisor) callOutputHook(hook func(messages.OutputLine), l messages.OutputLine) {
	defer s.recoverOutput(l.Key)
	hook(l)
}

func (s *supervisor) callOutputBytes(hook func(*output.Batch), b *output.Batch) {
	defer s.recoverOutput(b.Key())
	hook(b)
}

// recoverOutput logs an output hook's panic (deferred: the line is lost,
// the capture goes on).
func (s *supervisor) recoverOutput(key string) {
	if r := recover(); r != nil {
		s.cfg.Logger.Error("resman: output hook panicked", "key", key, "panic", fmt.Sprint(r))
	}
}

// tail answers a Tail from the process's tail, which its capture
// goroutines fill and which is safe to read from here.
func (s *supervisor) tail(ctx actor.Context, msg *messages.Tail) {
	const op = "tail"
	e := s.reg.get(messages.KindProcess, msg.Key)
	var err error
	switch {
	case msg.Key == "":
		err = messages.Invalid(messages.KindProcess, msg.Key, op, "empty key")
	case msg.N <= 0:
		err = messages.Invalid(messages.KindProcess, msg.Key, op, fmt.Sprintf("n = %d: ask for at least one line", msg.N))
	case s.closing:
		err = messages.NewError(messages.KindProcess, msg.Key, op, messages.ErrClosed)
	case e == nil || e.pending:
		err = messages.NewError(messages.KindProcess, msg.Key, op, messages.ErrNotRegistered)
	}
	if err != nil {
		respond(ctx, &messages.TailResponse{Err: err})
		return
	}
	lines, ok := e.reg.Tail(msg.N)
	if !ok {
		err = messages.Invalid(messages.KindProcess, msg.Key, op, "not started by Supervise: its output is not captured")
	}
	respond(ctx, &messages.TailResponse{Lines: lines, Err: err})
}
