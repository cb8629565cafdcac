package supervisor

import (
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/actors"
	"github.com/resman-dev/resman/messages"
)

// respond answers the current request; a request sent without a sender
// (Send instead of Request) gets no reply.
func respond(ctx actor.Context, msg any) {
	if ctx.Sender() != nil {
		ctx.Respond(msg)
	}
}

func send(system *actor.ActorSystem, to *actor.PID, msg any) {
	if to != nil {
		system.Root.Send(to, msg)
	}
}

// reply captures the current request's sender and returns a waiter that
// answers it later with the response build makes.
func reply(ctx actor.Context, build func(*actors.Ended, error) any) func(*actors.Ended, error) {
	to, system := ctx.Sender(), ctx.ActorSystem()
	return func(e *actors.Ended, err error) { send(system, to, build(e, err)) }
}

// argErr is the argument error of a registration: its own, else its
// lifecycle's.
func (s *supervisor) argErr(own string, kind messages.Kind, lc messages.Lifecycle, a allows) string {
	if own != "" {
		return own
	}
	return s.checkLifecycle(kind, lc, a)
}

// admit checks what every registration must pass, in the order a caller
// would fix them: closed, key, then the kind's own arguments.
func (s *supervisor) admit(kind messages.Kind, key, op string, argErr string) error {
	switch {
	case s.closing:
		return messages.NewError(kind, key, op, messages.ErrClosed)
	case s.cfg.Refuse != nil:
		return messages.NewError(kind, key, op, s.cfg.Refuse)
	case key == "":
		return messages.Invalid(kind, key, op, "empty key")
	case argErr != "":
		return messages.Invalid(kind, key, op, argErr)
	case s.reg.get(kind, key) != nil:
		return messages.NewError(kind, key, op, messages.ErrAlreadyRegistered)
	}
	return nil
}

// track adds the entry that req makes and hands its registration to a
// child. Unless pending, the resource is registered from here on.
func (s *supervisor) track(ctx actor.Context, req any, r *actors.Reg, pending bool, init func(*entry)) *entry {
	e := &entry{h: r.H, reg: r, req: req, registeredAt: time.Now().UnixNano(), pending: pending, op: "start"}
	if init != nil {
		init(e)
	}
	e.child = s.takeChild(ctx)
	e.child.Assign(r)
	s.reg.add(e)
	s.link(e)
	if !pending {
		s.publish(e, messages.EventRegistered, nil)
	}
	return e
}

func (s *supervisor) registerProcess(ctx actor.Context, msg *messages.RegisterProcess) {
	const op = "register"
	if s.waitForDeps(ctx, msg, msg.Lifecycle) {
		return
	}
	if err := s.admit(messages.KindProcess, msg.Key, op, s.argErr(nilCmd(msg.Cmd), messages.KindProcess, msg.Lifecycle, allowRegisterProcess)); err != nil {
		respond(ctx, &messages.RegisterProcessResponse{Err: err})
		return
	}
	watch, err := actors.WatchProcess(msg.Cmd)
	if err != nil {
		respond(ctx, &messages.RegisterProcessResponse{Err: messages.NewError(messages.KindProcess, msg.Key, op, err)})
		return
	}
	s.track(ctx, msg, actors.ProcessReg(msg.Key, msg.Cmd, actors.ProcessConfig{Watch: watch, Guard: s.guard, Reaper: s.reaper}).WithLifecycle(msg.Lifecycle), false,
		func(e *entry) { e.pid = msg.Cmd.Process.Pid })
	respond(ctx, &messages.RegisterProcessResponse{})
}

func (s *supervisor) startProcess(ctx actor.Context, msg *messages.StartProcess) {
	const op = "start"
	if s.waitForDeps(ctx, msg, msg.Lifecycle) {
		return
	}
	argErr := nilCmd(msg.Cmd)
	if argErr == "" && msg.Cmd.Process != nil {
		argErr = "cmd already started"
	}
	if err := s.admit(messages.KindProcess, msg.Key, op, s.argErr(argErr, messages.KindProcess, msg.Lifecycle, allowStartProcess)); err != nil {
		respond(ctx, &messages.StartProcessResponse{Err: err})
		return
	}
	actors.Isolate(msg.Cmd)
	to := ctx.Sender()
	reg := actors.ProcessReg(msg.Key, msg.Cmd, actors.ProcessConfig{Start: true, Cgroups: s.cfg.Cgroup, Guard: s.guard, Reaper: s.reaper})
	s.track(ctx, msg, reg.WithLifecycle(msg.Lifecycle), true, func(e *entry) {
		e.started = func(_ *actors.Started, err error) { send(s.system, to, &messages.StartProcessResponse{Err: err}) }
	})
}

func nilCmd(cmd *exec.Cmd) string {
	if cmd == nil {
		return "nil cmd"
	}
	return ""
}

func (s *supervisor) registerTask(ctx actor.Context, msg *messages.RegisterTask) {
	if s.waitForDeps(ctx, msg, msg.Lifecycle) {
		return
	}
	argErr := ""
	if msg.Task == nil {
		argErr = "nil task"
	}
	if err := s.admit(messages.KindTask, msg.Key, "register", s.argErr(argErr, messages.KindTask, msg.Lifecycle, allowRegisterTask)); err != nil {
		respond(ctx, &messages.RegisterTaskResponse{Err: err})
		return
	}
	s.trackTask(ctx, msg, msg.Key, msg.Task, msg.Lifecycle)
	respond(ctx, &messages.RegisterTaskResponse{})
}

// trackTask registers t; a return of fn on its own comes back as Exited.
func (s *supervisor) trackTask(ctx actor.Context, req any, key string, t *messages.Task, lc messages.Lifecycle) {
	s.track(ctx, req, actors.TaskReg(key, t, s.tell).WithLifecycle(lc), false, nil)
}

func (s *supervisor) goTask(ctx actor.Context, msg *messages.Go) {
	if s.waitForDeps(ctx, msg, msg.Lifecycle) {
		return
	}
	argErr := ""
	if msg.Fn == nil {
		argErr = "nil function"
	}
	if err := s.admit(messages.KindTask, msg.Key, "start", s.argErr(argErr, messages.KindTask, msg.Lifecycle, allowGo)); err != nil {
		respond(ctx, &messages.GoResponse{Err: err})
		return
	}
	// Starting a goroutine does not block: the task starts here, and is
	// registered before anybody else can take the key.
	if msg.Lifecycle.Restart == nil && msg.Lifecycle.Ready == nil {
		t := messages.StartTask(msg.Context, msg.Fn)
		s.trackTask(ctx, msg, msg.Key, t, msg.Lifecycle)
		respond(ctx, &messages.GoResponse{Task: t})
		return
	}
	r := actors.SupervisedTaskReg(msg.Context, msg.Key, msg.Fn, msg.Lifecycle, s.tell)
	pending := msg.Lifecycle.Ready != nil // Go returns once the first run is ready
	to := ctx.Sender()
	s.track(ctx, msg, r, pending, func(e *entry) {
		e.started = func(_ *actors.Started, err error) {
			if err != nil {
				send(s.system, to, &messages.GoResponse{Err: err})
				return
			}
			send(s.system, to, &messages.GoResponse{Task: r.Task()})
		}
	})
	if !pending {
		respond(ctx, &messages.GoResponse{Task: r.Task()})
	}
}

// registerCustom registers a custom resource; waiting reports that the
// request waits for a dependency (no reply yet).
func (s *supervisor) registerCustom(ctx actor.Context, req any, key string, value any, cleanup messages.CleanupFunc, lc messages.Lifecycle, nilMsg string) (waiting bool, err error) {
	if s.waitForDeps(ctx, req, lc) {
		return true, nil
	}
	argErr := ""
	if cleanup == nil {
		argErr = nilMsg
	}
	if err := s.admit(messages.KindCustomResource, key, "register", s.argErr(argErr, messages.KindCustomResource, lc, allowCustom)); err != nil {
		return false, err
	}
	s.track(ctx, req, actors.CustomReg(key, value, cleanup).WithLifecycle(lc), false,
		func(e *entry) { e.typeName = typeName(value) })
	return false, nil
}

// Undo asks the supervisor to undo the registration that Request (a
// registration request it was sent before) made, if that registration is
// still the one under its key and nothing is ending it yet: a process is
// stopped, a task cancelled, a custom resource dropped without its cleanup.
// The facade sends it, right behind the request, when the caller's context
// ends before the reply: an error from a registration means nothing is
// tracked. It gets no reply.
type Undo struct {
	Request any
}

func (s *supervisor) undo(ctx actor.Context, req any) {
	var kind messages.Kind
	var key string
	switch r := req.(type) {
	case *messages.RegisterProcess:
		kind, key = messages.KindProcess, r.Key
	case *messages.StartProcess:
		kind, key = messages.KindProcess, r.Key
	case *messages.Supervise:
		kind, key = messages.KindProcess, r.Key
	case *messages.RegisterTask:
		kind, key = messages.KindTask, r.Key
	case *messages.Go:
		kind, key = messages.KindTask, r.Key
	case *messages.RegisterCustomResource:
		kind, key = messages.KindCustomResource, r.Key
	case *messages.RegisterCloser:
		kind, key = messages.KindCustomResource, r.Key
	default:
		return
	}
	if s.forget(req) {
		return // it waited for a dependency: never registered
	}
	if _, ok := s.requeued[req]; ok {
		s.requeued[req] = true // on its way back: dropped when it comes
		return
	}
	e := s.reg.get(kind, key)
	if e == nil || e.req != req || e.ending {
		return // refused, or ended since: nothing of it is tracked
	}
	ignore := func(*actors.Ended, error) {}
	if kind == messages.KindCustomResource {
		if len(e.dependents) > 0 {
			// Others came to depend on it since: they end first, then it is
			// dropped without its cleanup, as it would have been alone.
			e.ending, e.endMode, e.endOp = true, actors.EndRelease, "unregister"
			s.stopDependents(ctx, e, &actors.End{Mode: actors.EndRelease, H: e.h}, false)
			return
		}
		s.end(ctx, kind, key, "unregister", &actors.End{Mode: actors.EndRelease}, ignore)
		return
	}
	s.end(ctx, kind, key, stopOp(kind), &actors.End{}, ignore)
}

// onStarted completes a StartProcess or Go.
func (s *supervisor) onStarted(ctx actor.Context, msg *actors.Started) {
	e := s.reg.of(msg.H)
	if e == nil || !e.pending {
		return
	}
	started := e.started
	e.started = nil
	if msg.Err != nil {
		// Nothing was started: the registration never happened, and the
		// child is free again.
		s.drop(e)
		s.recycle(e.child)
		started(msg, messages.NewError(e.h.Kind, e.h.Key, e.op, msg.Err))
		s.neverRegistered(e)
		return
	}
	e.pending = false
	e.pid = msg.PID
	s.publish(e, messages.EventRegistered, nil)
	if msg.Ready {
		s.publishWith(e, messages.Event{Type: messages.EventReady})
	}
	started(msg, nil)
	s.unblock()
}

// neverRegistered answers whoever waits for the end of a start that did
// not succeed: nothing was registered, so nothing failed either (a sweep
// that joined it counts it as done).
func (s *supervisor) neverRegistered(e *entry) {
	for _, w := range e.waiters {
		w(nil, messages.NewError(e.h.Kind, e.h.Key, e.endOp, messages.ErrNotRegistered))
	}
	if e.sweep != nil {
		e.sweep.settle(nil)
	}
}

// onExited records a process exit or a task return: a supervised
// resource's run, if another follows (More).
func (s *supervisor) onExited(msg *actors.Exited) {
	e := s.reg.of(msg.H)
	if e == nil {
		return
	}
	e.lastExit = time.Now().UnixNano()
	if msg.More {
		e.restarts = msg.Restarts
	}
	if !e.ending && !msg.More && e.gaveUp == nil {
		e.state = messages.StateExited
	}
	first := !e.exited
	e.exited = true
	if e.h.Kind == messages.KindProcess {
		// A leader whose group outlives it is reported twice: at its exit
		// (no State yet), and once the rest is gone and it is reaped.
		e.exitCode = msg.ExitCode
		if msg.State != nil {
			e.exit = msg.State
			if !msg.More {
				for _, to := range e.exitWait {
					send(s.system, to, &messages.WaitProcessResponse{State: msg.State})
				}
				e.exitWait = nil
			}
		}
	} else {
		e.taskErr = msg.Err
	}
	if first {
		s.publishExit(e, msg)
	}
}

// maxSignal is the highest Linux signal number (SIGRTMAX).
const maxSignal = 64

func (s *supervisor) waitProcess(ctx actor.Context, msg *messages.WaitProcess) {
	e := s.reg.get(messages.KindProcess, msg.Key)
	switch {
	case msg.Key == "":
		respond(ctx, &messages.WaitProcessResponse{Err: messages.Invalid(messages.KindProcess, msg.Key, "wait", "empty key")})
	case e == nil || e.pending:
		respond(ctx, &messages.WaitProcessResponse{Err: messages.NewError(messages.KindProcess, msg.Key, "wait", messages.ErrNotRegistered)})
	case e.gaveUp != nil:
		respond(ctx, &messages.WaitProcessResponse{State: e.exit, Err: messages.NewError(messages.KindProcess, msg.Key, "wait", e.gaveUp)})
	case e.exit != nil && e.state == messages.StateExited:
		respond(ctx, &messages.WaitProcessResponse{State: e.exit})
	case ctx.Sender() != nil:
		e.exitWait = append(e.exitWait, ctx.Sender())
	}
}

// end starts (or joins) the end of a registration: a stop, cancel or
// cleanup, or a release to the caller (unregister).
func (s *supervisor) end(ctx actor.Context, kind messages.Kind, key, op string, req *actors.End, w func(*actors.Ended, error)) {
	switch {
	case key == "":
		w(nil, messages.Invalid(kind, key, op, "empty key"))
		return
	case req.Timeout < 0:
		w(nil, messages.Invalid(kind, key, op, fmt.Sprintf("negative timeout %v", req.Timeout)))
		return
	case req.Signal < 0 || req.Signal > maxSignal:
		w(nil, messages.Invalid(kind, key, op, fmt.Sprintf("signal %d", int(req.Signal))))
		return
	}
	if s.closing {
		w(nil, messages.NewError(kind, key, op, messages.ErrClosed))
		return
	}
	e := s.reg.get(kind, key)
	if e == nil {
		w(nil, messages.NewError(kind, key, op, messages.ErrNotRegistered))
		return
	}
	if req.Mode == actors.EndRelease && len(e.dependents) > 0 {
		w(nil, messages.Invalid(kind, key, op, "others depend on it: "+dependentsOf(e)))
		return
	}
	if e.ending {
		if e.endMode == actors.EndStop && req.Mode == actors.EndStop {
			// A second stop of a key that is stopping waits for the same stop.
			e.waiters = append(e.waiters, w)
			return
		}
		// A resource is handed back once, to one caller.
		why := "it is being stopped"
		if e.endMode == actors.EndRelease {
			why = "it is being unregistered"
		}
		w(nil, messages.NewError(kind, key, op, fmt.Errorf("%w: %s", messages.ErrNotRegistered, why)))
		return
	}
	req.H = e.h
	s.beginEnd(ctx, e, op, req, true)
	e.waiters = append(e.waiters, w)
	if req.Mode == actors.EndRelease && e.reg.ReleaseFreesKey() && !e.pending {
		// The child hands it back; nothing of it is tracked from here on,
		// so its key is free at once (an Undo's caller may register it
		// again before the child has reported). Its last event is
		// published now, so it comes before any of the key's next
		// registration.
		s.reg.unkey(e)
		s.publish(e, messages.EventUnregistered, nil)
		e.released = true
	}
}

// beginEnd starts ending e: at once, or, for a stop of a resource others
// depend on, once they have ended (collect: their failures join e's).
func (s *supervisor) beginEnd(ctx actor.Context, e *entry, op string, req *actors.End, collect bool) {
	e.ending, e.endMode, e.endOp = true, req.Mode, op
	if req.Mode == actors.EndStop {
		e.state = messages.StateStopping
	}
	if req.Mode == actors.EndStop && len(e.dependents) > 0 {
		s.stopDependents(ctx, e, req, collect)
		return
	}
	e.child.End(e.reg, req)
}

// done finalizes a registration whose child reported its outcome, and
// frees the child for the next one.
func (s *supervisor) done(msg *actors.Done) {
	if e := s.reg.of(msg.H); e != nil {
		s.finalize(e, msg.Out)
		s.recycle(e.child)
	}
}

// finalize removes a registration whose child has terminated and answers
// everybody waiting on it. out is nil when the child is gone without an
// outcome.
func (s *supervisor) finalize(e *entry, out *actors.Ended) {
	s.drop(e)
	if e.pending {
		// Gone before its Started message was processed (protoactor delivers
		// Terminated first): the handle has the start's outcome.
		st := e.h.StartResult()
		if st == nil || st.Err != nil {
			cause := messages.ErrClosed
			if st != nil {
				cause = st.Err
			}
			e.started(st, messages.NewError(e.h.Kind, e.h.Key, e.op, cause))
			s.neverRegistered(e)
			return // never started: never registered
		}
		e.pending, e.pid = false, st.PID
		s.publish(e, messages.EventRegistered, nil)
		e.started(st, nil) // it did start, and has ended since
	}
	if e.endOp == "" {
		e.endOp = stopOp(e.h.Kind)
	}
	var err error
	switch {
	case out == nil:
		err = messages.NewError(e.h.Kind, e.h.Key, e.endOp, messages.ErrClosed)
	case out.Err != nil:
		err = messages.NewError(e.h.Kind, e.h.Key, e.endOp, out.Err)
	}
	if len(e.heldErrs) > 0 {
		err = errors.Join(append(e.heldErrs, err)...)
	}
	if out != nil && out.State != nil {
		e.exit = out.State
	}
	if e.released && err == nil && (out == nil || out.Mode != actors.EndRelease) {
		// Its child was stopping with the tree and ended it instead.
		err = messages.NewError(e.h.Kind, e.h.Key, e.endOp, fmt.Errorf("%w: it was stopped", messages.ErrNotRegistered))
	}
	switch {
	case out != nil && out.Mode == actors.EndRelease:
		s.publish(e, messages.EventUnregistered, nil)
	case err != nil:
		s.publish(e, messages.EventFailed, err)
	default:
		s.publish(e, messages.EventStopped, nil)
	}
	for _, w := range e.waiters {
		w(out, err)
	}
	for _, w := range e.restartWait {
		w(messages.NewError(e.h.Kind, e.h.Key, "restart", fmt.Errorf("%w: it was stopped", messages.ErrNotRegistered)))
	}
	if e.sweep != nil {
		e.sweep.settle(err)
	}
	for _, to := range e.exitWait {
		if e.exit != nil {
			send(s.system, to, &messages.WaitProcessResponse{State: e.exit})
		} else {
			send(s.system, to, &messages.WaitProcessResponse{Err: messages.NewError(e.h.Kind, e.h.Key, "wait", messages.ErrNotRegistered)})
		}
	}
}

func stopOp(kind messages.Kind) string {
	switch kind {
	case messages.KindTask:
		return "cancel"
	case messages.KindCustomResource:
		return "cleanup"
	default:
		return "stop"
	}
}

// terminated handles a child that is gone — one we retired, or one that
// stopped with the tree before its Done was read (the outcome is in its
// handle) — and a subscriber that stopped.
func (s *supervisor) terminated(msg *actor.Terminated) {
	if _, ok := s.dying[msg.Who.Id]; ok {
		delete(s.dying, msg.Who.Id)
		s.whenDrained(nil)
		return
	}
	s.rt.bus.unsubscribe(msg.Who)
}

// whenDrained runs f (if not nil) and whatever waits once no child is still
// stopping. A Shutdown replies only then, so that whoever stops the
// supervisor next finds no child half gone (protoactor would send that child
// a second Stop, to a dead letter).
func (s *supervisor) whenDrained(f func()) {
	if f != nil {
		s.drained = append(s.drained, f)
	}
	if len(s.dying) > 0 {
		return
	}
	for _, f := range s.drained {
		f()
	}
	s.drained = nil
}

// cleanup collects the outcomes of a CleanupAll or Shutdown.
type cleanup struct {
	remaining int
	errs      []error
	done      []func(error)
	finished  bool
}

func (c *cleanup) add() func(*actors.Ended, error) {
	c.remaining++
	return func(_ *actors.Ended, err error) { c.settle(err) }
}

// join makes e's outcome count: through e.sweep, which costs nothing, unless
// an earlier sweep took it.
func (c *cleanup) join(e *entry) {
	if e.sweep == nil {
		c.remaining++
		e.sweep = c
		return
	}
	e.waiters = append(e.waiters, c.add())
}

func (c *cleanup) settle(err error) {
	if err != nil && !errors.Is(err, messages.ErrNotRegistered) {
		c.errs = append(c.errs, err)
	}
	c.remaining--
	c.check()
}

func (c *cleanup) check() {
	if c.remaining > 0 || c.finished {
		return
	}
	c.finished = true
	err := errors.Join(c.errs...)
	for _, d := range c.done {
		d(err)
	}
	c.done = nil
}

// cleanupAll ends everything tracked, concurrently (each child works in its
// own goroutine), with the default grace period; done gets every failure.
func (s *supervisor) cleanupAll(ctx actor.Context, done func(error)) *cleanup {
	c := &cleanup{done: []func(error){done}}
	// One End for all (a child only reads it), with one timer for the tasks'
	// grace period, stopped once everything has ended: when it fires, the
	// children of the tasks still ending are told (lapsed).
	end := &actors.End{Mode: actors.EndStop, Swept: true}
	timer := time.AfterFunc(s.cfg.DefaultTimeout, func() { s.tell(&sweepLapsed{c: c}) })
	c.done = append(c.done, func(error) { timer.Stop() })
	s.reg.each(func(e *entry) {
		switch {
		case !e.ending:
			s.beginEnd(ctx, e, stopOp(e.h.Kind), end, false)
			c.join(e)
		default:
			// Already stopping, or being handed back: CleanupAll and
			// Shutdown still wait for its child to be done with it.
			c.join(e)
		}
	})
	c.check()
	return c
}

// sweepLapsed: the grace period of sweep c is over.
type sweepLapsed struct{ c *cleanup }

// lapsed tells the children of the tasks that sweep c is still ending that
// its grace period is over: each reports its task timed out unless it has
// returned (or has a grace period of its own).
func (s *supervisor) lapsed(c *cleanup) {
	if c.finished {
		return
	}
	s.reg.each(func(e *entry) {
		if e.sweep == c && e.h.Kind == messages.KindTask {
			e.child.Lapse(e.reg)
		}
	})
}

func (s *supervisor) onShutdown(ctx actor.Context) {
	to := ctx.Sender()
	answer := func(err error) {
		s.whenDrained(func() { send(s.system, to, &messages.ShutdownResponse{Err: err}) })
	}
	if s.shutdown != nil {
		if s.shutdown.finished {
			answer(nil)
		} else {
			s.shutdown.done = append(s.shutdown.done, answer)
		}
		return
	}
	s.closing = true
	s.unblock() // refused now
	s.shutdown = s.cleanupAll(ctx, answer)
}

func (s *supervisor) onSubscribe(ctx actor.Context, msg *messages.Subscribe) {
	switch {
	case msg.Subscriber == nil:
		respond(ctx, &messages.SubscribeResponse{Err: fmt.Errorf("resman: subscribe: %w: nil subscriber", messages.ErrInvalid)})
	case s.closing:
		respond(ctx, &messages.SubscribeResponse{Err: fmt.Errorf("resman: subscribe: %w", messages.ErrClosed)})
	default:
		s.rt.bus.subscribe(msg.Subscriber, msg.Output)
		ctx.Watch(msg.Subscriber)
		respond(ctx, &messages.SubscribeResponse{})
	}
}

func (s *supervisor) publish(e *entry, t messages.EventType, err error) {
	if !s.rt.bus.active() || e.released {
		return
	}
	ev := messages.Event{Kind: e.h.Kind, Key: e.h.Key, Type: t, At: time.Now(), PID: e.pid, Err: err}
	s.rt.bus.publish(ev)
}

func (s *supervisor) publishExit(e *entry, msg *actors.Exited) {
	if !s.rt.bus.active() || e.released {
		return
	}
	ev := messages.Event{Kind: e.h.Kind, Key: e.h.Key, Type: messages.EventExited, At: time.Now(), PID: e.pid, Err: msg.Err}
	if e.h.Kind == messages.KindProcess {
		ev.ExitCode = msg.ExitCode
	}
	s.rt.bus.publish(ev)
}
