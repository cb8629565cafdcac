// Package supervisor holds resman's supervisor actor. It owns the registry
// (processes, tasks and custom resources; the same key may exist once in
// each), spawns one child actor per resource, and turns every request of the
// messages package into exactly one reply. Its Receive never blocks: slow
// work runs in the children's goroutines and comes back as messages.
//
// Most users reach it through the root package (resman.New, resman.Props);
// this package is for those who need the props directly.
package supervisor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/actors"
	"github.com/resman-dev/resman/internal/output"
	"github.com/resman-dev/resman/internal/proc"
	"github.com/resman-dev/resman/messages"
)

// Config configures a supervisor.
type Config struct {
	DefaultTimeout time.Duration             // grace period when a request leaves it zero
	Logger         *slog.Logger              // never nil after defaults
	EventHook      func(messages.Event)      // called for every event, in order, off the supervisor's goroutine
	OutputHook     func(messages.OutputLine) // called for every output line of supervised processes, in order per process
	OutputBytes    func(*output.Batch)       // called like OutputHook, first, with a read's lines at once as bytes (no string per line)
	Cgroup         *CgroupRoot               // if not nil, StartProcess puts each process in a cgroup of its own below it
	Refuse         error                     // if not nil, every registration fails with it: a configuration error Props had no way to return
	Subreaper      bool                      // the host is a child subreaper (BecomeSubreaper): the orphans of tracked trees are reaped
}

// CgroupRoot is a directory on a writable cgroup v2 hierarchy.
type CgroupRoot = proc.CgroupRoot

// OpenCgroupRoot creates dir if missing and checks that it is a writable
// cgroup v2 directory with cgroup.kill.
func OpenCgroupRoot(dir string) (*CgroupRoot, error) { return proc.OpenCgroupRoot(dir) }

// BecomeSubreaper makes the host process a child subreaper
// (PR_SET_CHILD_SUBREAPER), for Config.Subreaper: orphaned descendants then
// become its children, not PID 1's. It is process-wide and stays set.
func BecomeSubreaper() error { return proc.BecomeSubreaper() }

// Runtime lets the owner of a supervisor wait for its background work.
type Runtime struct {
	cfg   Config
	bus   *bus
	guard *proc.Guard
	pool  *pool

	reaper *proc.Subreaper // nil unless Config.Subreaper
}

// Config returns the supervisor's configuration.
func (r *Runtime) Config() Config { return r.cfg }

// Wait returns once the supervisor has stopped and the host-death watcher
// process has exited. It does not wait for the event hook, which may be
// the caller: EventsDelivered does.
func (r *Runtime) Wait() {
	<-r.guard.Done()
	if r.reaper != nil {
		<-r.reaper.Done()
	}
	r.pool.wait()
}

// EventsDelivered is closed once the supervisor has stopped and every event
// it published has been delivered.
func (r *Runtime) EventsDelivered() <-chan struct{} { return r.bus.done() }

// Props returns the supervisor's props and its runtime. Each spawn of the
// props needs its own call: one registry per supervisor.
func Props(cfg Config) (*actor.Props, *Runtime) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = 5 * time.Second
	}
	rt := &Runtime{pool: newPool(), cfg: cfg}
	s := &supervisor{cfg: cfg, reg: newRegistry(), rt: rt, guard: proc.NewGuard(cfg.Logger), dying: map[string]struct{}{}, requeued: map[any]bool{}}
	rt.guard = s.guard
	if cfg.Subreaper {
		s.reaper = proc.NewSubreaper()
		rt.reaper = s.reaper
	}
	// A child recovers its own panics; should protoactor still see one, the
	// child resumes with its state (and its resource) intact.
	strategy := actor.NewOneForOneStrategy(10, time.Second, func(any) actor.Directive { return actor.ResumeDirective })
	props := actor.PropsFromProducer(func() actor.Actor { return s }, actor.WithSupervisor(strategy), actor.WithDispatcher(rt.pool))
	return props, rt
}

// supervisor is the actor. Every field is owned by its Receive.
type supervisor struct {
	cfg      Config
	reg      *registry
	rt       *Runtime
	system   *actor.ActorSystem
	self     *actor.PID
	started  bool
	closing  bool // Shutdown or Stopping: refuse new work
	stopping bool // protoactor is stopping us, and so our children: never Stop one (it may be gone: a dead letter)
	shutdown *cleanup
	blocked  []blocked           // registrations waiting for a dependency's ready check
	requeued map[any]bool        // blocked registrations sent back to us; true: undone meanwhile
	dying    map[string]struct{} // children told to stop whose Terminated has not come yet
	free     freeChildren        // children whose registration has ended, for the next ones
	drained  []func()            // run once dying is empty (a Shutdown's reply)
	opts     actors.Options
	mailbox  actor.Process       // the supervisor's own process, for tell; set in Started
	output   func(*output.Batch) // where supervised processes' output goes (outputSink); set in Started
	guard    *proc.Guard         // kills the tracked process groups if the host dies; closed at Stopped

	reaper *proc.Subreaper // reaps the orphans of tracked trees (Config.Subreaper), else nil; closed at Stopped
}

// Receive dispatches one message. It never blocks.
func (s *supervisor) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			// A malformed request (a nil message, say) must neither take the
			// supervisor down nor leave its sender without the one reply.
			stack := debug.Stack()
			s.cfg.Logger.Error("resman: supervisor recovered from a panic",
				"message", fmt.Sprintf("%T", ctx.Message()), "panic", fmt.Sprint(r), "stack", string(stack))
			if resp := errorReply(ctx.Message(), fmt.Errorf("resman: request %T: %w", ctx.Message(),
				&messages.PanicError{Value: r, Stack: stack})); resp != nil {
				respond(ctx, resp)
			}
		}
	}()
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		if !s.started {
			s.started = true
			s.system = ctx.ActorSystem()
			s.self = ctx.Self()
			s.rt.bus = newBus(s.system, s.cfg.EventHook, s.cfg.Logger)
			s.opts = actors.Options{DefaultTimeout: s.cfg.DefaultTimeout, Logger: s.cfg.Logger, Dispatcher: s.rt.pool}
			s.mailbox, _ = s.system.ProcessRegistry.Get(s.self)
			s.output = s.outputSink()
		}
	case *actor.Stopping:
		// Every registration is ended as a CleanupAll ends it (dependents
		// first), by messages: protoactor stops the children next, and each
		// goes on reading its mailbox, holding its stop open until we have
		// the outcome of its registration (recycle lets it go). We report
		// Stopped after the last of them.
		s.closing = true
		s.unblock() // refused now
		s.stopping = true
		s.free.close()
		s.releaseFree()
		if s.shutdown == nil {
			s.shutdown = s.cleanupAll(ctx, func(error) {})
		}
	case *actor.Stopped:
		s.reg.each(func(e *entry) { s.finalize(e, e.h.Final()) })
		s.rt.bus.close()
		s.guard.Close()
		if s.reaper != nil {
			s.reaper.Close()
		}
		s.rt.pool.close() // this run finishes on its worker; the worker then ends
	case *actor.Terminated:
		s.terminated(msg)

	// Children.
	case *actors.Started:
		s.onStarted(ctx, msg)
	case *actors.Exited:
		s.onExited(msg)
	case *actors.Done:
		s.done(msg)
	case *actors.Restarting:
		s.onRestarting(msg)
	case *actors.Restarted:
		s.onRestarted(msg)
	case *actors.Ready:
		s.onReady(msg)
	case *actors.GaveUp:
		s.onGaveUp(msg)
	case *actors.RestartDone:
		s.onRestartDone(msg)
	case *trimFree:
		s.trimFree()
	case *sweepLapsed:
		s.lapsed(msg.c)

	// Requests.
	case *messages.RegisterProcess:
		s.registerProcess(ctx, msg)
	case *messages.StartProcess:
		s.startProcess(ctx, msg)
	case *messages.UnregisterProcess:
		s.end(ctx, messages.KindProcess, msg.Key, "unregister", &actors.End{Mode: actors.EndRelease},
			reply(ctx, func(e *actors.Ended, err error) any {
				r := &messages.UnregisterProcessResponse{Err: err}
				if e != nil && err == nil {
					r.Cmd = e.Cmd
				}
				return r
			}))
	case *messages.StopProcess:
		s.end(ctx, messages.KindProcess, msg.Key, "stop", &actors.End{Timeout: msg.Timeout, Signal: msg.Signal},
			reply(ctx, func(_ *actors.Ended, err error) any { return &messages.StopProcessResponse{Err: err} }))
	case *messages.Supervise:
		s.supervise(ctx, msg)
	case *messages.RestartProcess:
		s.restartProcess(ctx, msg)
	case *messages.WaitProcess:
		s.waitProcess(ctx, msg)
	case *messages.RegisterTask:
		s.registerTask(ctx, msg)
	case *messages.Go:
		s.goTask(ctx, msg)
	case *messages.UnregisterTask:
		s.end(ctx, messages.KindTask, msg.Key, "unregister", &actors.End{Mode: actors.EndRelease},
			reply(ctx, func(e *actors.Ended, err error) any {
				r := &messages.UnregisterTaskResponse{Err: err}
				if e != nil && err == nil {
					r.Task = e.Task
				}
				return r
			}))
	case *messages.CancelTask:
		s.end(ctx, messages.KindTask, msg.Key, "cancel", &actors.End{Timeout: msg.Timeout},
			reply(ctx, func(_ *actors.Ended, err error) any { return &messages.CancelTaskResponse{Err: err} }))
	case *messages.RegisterCustomResource:
		if waiting, err := s.registerCustom(ctx, msg, msg.Key, msg.Resource, msg.Cleanup, msg.Lifecycle, "nil cleanup"); !waiting {
			respond(ctx, &messages.RegisterCustomResourceResponse{Err: err})
		}
	case *messages.RegisterCloser:
		var cleanup messages.CleanupFunc
		if msg.Closer != nil {
			cleanup = func(_ context.Context, r any) error { return r.(io.Closer).Close() }
		}
		if waiting, err := s.registerCustom(ctx, msg, msg.Key, msg.Closer, cleanup, msg.Lifecycle, "nil closer"); !waiting {
			respond(ctx, &messages.RegisterCloserResponse{Err: err})
		}
	case *messages.UnregisterCustomResource:
		s.end(ctx, messages.KindCustomResource, msg.Key, "unregister", &actors.End{Mode: actors.EndRelease},
			reply(ctx, func(e *actors.Ended, err error) any {
				r := &messages.UnregisterCustomResourceResponse{Err: err}
				if e != nil && err == nil {
					r.Resource = e.Resource
				}
				return r
			}))
	case *messages.CleanupCustomResource:
		s.end(ctx, messages.KindCustomResource, msg.Key, "cleanup", &actors.End{Timeout: msg.Timeout},
			reply(ctx, func(_ *actors.Ended, err error) any { return &messages.CleanupCustomResourceResponse{Err: err} }))
	case *messages.CleanupAll:
		if s.closing {
			respond(ctx, &messages.CleanupAllResponse{Err: fmt.Errorf("resman: cleanup all: %w", messages.ErrClosed)})
			return
		}
		to := ctx.Sender()
		s.cleanupAll(ctx, func(err error) { send(s.system, to, &messages.CleanupAllResponse{Err: err}) })
	case *messages.Shutdown:
		s.onShutdown(ctx)
	case *Undo:
		s.undo(ctx, msg.Request)
	case *KillNow:
		s.killNow(ctx)
	case *messages.Tail:
		s.tail(ctx, msg)
	case *messages.GetStatus:
		respond(ctx, &messages.GetStatusResponse{Status: s.reg.status()})
	case *messages.Subscribe:
		s.onSubscribe(ctx, msg)
	case *messages.Unsubscribe:
		if msg.Subscriber != nil && s.rt.bus.unsubscribe(msg.Subscriber) {
			ctx.Unwatch(msg.Subscriber)
		}
		respond(ctx, &messages.UnsubscribeResponse{})
	}
}

// tell sends msg to the supervisor itself, from any goroutine once Started
// ran. It posts to the supervisor's mailbox directly: once the supervisor
// has stopped the message is dropped quietly, where a send by PID would be
// a dead letter.
func (s *supervisor) tell(msg any) {
	s.mailbox.SendUserMessage(s.self, msg)
}
