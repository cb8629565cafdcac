package actors

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/messages"
)

// resource is what differs between the three kinds of child.
type resource interface {
	// start runs in the child's Started handler; it must not block for long.
	start(c *child)
	// end starts ending the resource and returns at once; slow work runs in a
	// goroutine (or a callback) owned by the child, which calls c.finish.
	end(c *child, e *End)
	// stopped runs in the child's Stopped handler: drop watchers.
	stopped(c *child)
}

// child is the actor behind one registration. Its fields are owned by its
// Receive, except those named otherwise.
type child struct {
	h        *Handle
	res      resource
	opts     Options
	system   *actor.ActorSystem // set in Started
	parent   *actor.PID         // set in Started
	self     *actor.PID         // set in Started
	started  bool               // Started ran once (a restart must not start twice)
	endAsked bool               // an End was accepted; at most one per registration
	finished chan struct{}      // closed by finish
	once     sync.Once          // finish runs once, whoever calls it
}

func newProps(h *Handle, res resource, opts Options) *actor.Props {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &child{h: h, res: res, opts: opts, finished: make(chan struct{})}
	// The same *child serves any re-incarnation, so a restart loses nothing.
	if opts.Dispatcher != nil {
		return actor.PropsFromProducer(func() actor.Actor { return c }, actor.WithDispatcher(opts.Dispatcher))
	}
	return actor.PropsFromProducer(func() actor.Actor { return c })
}

// Receive handles the supervisor's requests and protoactor's lifecycle.
func (c *child) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			// A bug in a child must not lose the resource: log and go on.
			c.opts.Logger.Error("resman: child actor panicked",
				"kind", c.h.Kind.String(), "key", c.h.Key, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		if c.started {
			return
		}
		c.started = true
		c.system = ctx.ActorSystem()
		c.parent = ctx.Parent()
		c.self = ctx.Self()
		c.res.start(c)
	case *End:
		c.requestEnd(msg)
	case *actor.Stopping:
		// The tree is stopping (or the supervisor is done with us): the
		// resource must be gone before we report Stopped, because protoactor
		// finalises the parent only after its last child. This is the one
		// place a child waits, bounded by the grace period plus the kill wait.
		c.requestEnd(&End{Mode: EndStop})
		<-c.finished
	case *actor.Stopped:
		c.res.stopped(c)
	}
}

func (c *child) requestEnd(e *End) {
	if c.endAsked {
		return
	}
	c.endAsked = true
	select {
	case <-c.finished: // nothing left to end (a start that failed)
		return
	default:
	}
	defer func() {
		// Should ending panic, the registration still ends, as a failure
		// the supervisor reports, and Stopping cannot hang on it.
		if r := recover(); r != nil {
			c.finish(&Ended{Mode: e.Mode, Err: &messages.PanicError{Value: r, Stack: debug.Stack()}})
		}
	}()
	c.res.end(c, e)
}

// reportStart records the outcome of a start in the handle, then reports it.
func (c *child) reportStart(st *Started) {
	c.h.start.Store(st)
	c.report(st)
}

// report sends msg to the supervisor. Safe from any goroutine.
func (c *child) report(msg any) {
	c.system.Root.Send(c.parent, msg)
}

// finish records the outcome in the handle, releases Stopping and stops
// the child: the supervisor learns the outcome from the child's Terminated,
// one message instead of an outcome message and then a stop. Only the first
// call counts; any goroutine may make it.
func (c *child) finish(e *Ended) {
	c.once.Do(func() {
		c.h.final.Store(e)
		// Stop before releasing Stopping: while we are still registered, a
		// Stop is ignored if we are stopping already; after, a dead letter.
		c.system.Root.Stop(c.self)
		close(c.finished)
	})
}

// abandon marks the child as having nothing to end (its start failed).
func (c *child) abandon() {
	c.once.Do(func() { close(c.finished) })
}
