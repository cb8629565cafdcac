package actors

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/messages"
)

// resource is what differs between the kinds of registration.
type resource interface {
	// start runs when the child adopts the registration; it must not block
	// for long. closing: the child is stopping, so a resource that would
	// launch something must not (it reports a failed start instead).
	start(r *Reg, closing bool)
	// end starts ending the resource and returns at once; slow work runs in
	// a goroutine (or a callback) owned by the child, which reports the
	// outcome to the child (r.finish); an outcome known at once is
	// concluded in place (r.conclude).
	end(r *Reg, e *End)
	// eager reports whether the child must adopt the registration at once
	// (a process: its exit is watched from the start). Others are adopted
	// at their End: nothing tells the child about them before.
	eager() bool
}

// receiver is a resource that handles messages of its own (a supervised
// process: its runs' ends, its timers, Restart; a task: its return and the
// end of its grace period once it is being ended).
type receiver interface {
	receive(r *Reg, msg any)
}

// Reg is one registration: what the supervisor and the child that owns
// its resource share. The supervisor makes it and hands it to a child with
// Assign (or with its End); from then on the child owns the resource.
type Reg struct {
	H      *Handle // &handle
	handle Handle
	res    resource
	lc     messages.Lifecycle // set before Assign; read-only after
	c      *child             // the child it was assigned to; set by Assign

	// Owned by the child's Receive. endAsked: an End was accepted; the
	// first End ends the resource or hands it back, later ones are
	// ignored, so that happens once, never both. over: the outcome was
	// reported (or the start failed): nothing is left to end.
	endAsked bool
	over     bool
	unhook   func() // a task: removes the supervisor's return hook; nil if none
	done     Done   // the report that it has ended, made with it
}

func newReg(kind messages.Kind, key string, res resource) *Reg {
	r := &Reg{handle: Handle{Kind: kind, Key: key}, res: res}
	r.H = &r.handle
	r.done.H = r.H
	return r
}

// Lifecycle returns what the registration's options say. It is set before
// Assign and never changes: the supervisor reads it (dependencies, Status)
// without asking the child.
func (r *Reg) Lifecycle() messages.Lifecycle { return r.lc }

// WithLifecycle sets what the registration's options say; call it before
// Assign.
func (r *Reg) WithLifecycle(lc messages.Lifecycle) *Reg {
	r.lc = lc
	return r
}

// Task returns a task registration's task, else nil.
func (r *Reg) Task() *messages.Task {
	if k, ok := r.res.(*task); ok {
		return k.t
	}
	return nil
}

// Releasing frees its key at once: a task or a custom resource is handed
// back without any work, so its key may be registered again before its
// child has reported.
func (r *Reg) ReleaseFreesKey() bool {
	switch r.res.(type) {
	case *task, *custom:
		return true
	}
	return false
}

// finish ends the registration with outcome e. Any goroutine of the
// child's calls it: it tells the child (finished), and the child's Receive
// concludes. Only the first outcome counts (a task's return and its grace
// period's end may both come): the child decides, in Receive.
func (r *Reg) finish(e *Ended) {
	r.c.tell(&finished{r: r, out: e})
}

// conclude records the outcome in the handle and reports it to the
// supervisor (Done), once: later outcomes are dropped. Receive only.
func (r *Reg) conclude(e *Ended) {
	if r.over {
		return
	}
	r.over = true
	r.H.final.Store(e)
	r.done.Out = e
	r.c.report(&r.done)
}

// abandon marks a registration with nothing to end (its start failed).
// Receive only.
func (r *Reg) abandon() {
	r.over = true
	r.H.final.Store(abandoned)
}

// reportStart records the outcome of a start in the handle, then reports
// it. Receive only; a goroutine of the child's uses relayStart.
func (r *Reg) reportStart(st *Started) {
	r.H.start.Store(st)
	r.c.report(st)
}

// relayStart is reportStart from a goroutine of the child's: the child
// reports it.
func (r *Reg) relayStart(st *Started) {
	r.H.start.Store(st)
	r.c.relay(st)
}

func (r *Reg) opts() *Options { return &r.c.opts }

// Child is a child actor as its parent sees it. A child serves one
// registration at a time; once that one has ended the parent may give it
// the next (Assign), which spares a spawn and a stop per registration.
type Child struct {
	PID *actor.PID
	c   *child
}

// Spawn starts a child under parent.
func Spawn(parent actor.SpawnerContext, opts Options) *Child {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &child{opts: opts}
	// The same *child serves any re-incarnation, so a restart loses nothing.
	popts := []actor.PropsOption{actor.WithMailbox(newMailbox)}
	if opts.Dispatcher != nil {
		popts = append(popts, actor.WithDispatcher(opts.Dispatcher))
	}
	props := actor.PropsFromProducer(func() actor.Actor { return c }, popts...)
	pid := parent.Spawn(props)
	// Resolved here, not in Started, so that the parent posts to the child
	// (Assign, End, Lapse) without a lookup by PID, as soon as Spawn returns.
	c.self = pid
	c.mailbox, _ = parent.ActorSystem().ProcessRegistry.Get(pid)
	return &Child{PID: pid, c: c}
}

// Assign gives r to the child, whose previous registration (if any) must
// have ended. A process is adopted at once (a message): its exit is
// watched from the start. Other kinds cost the child nothing until their
// End, which carries them. So a parent that stops must send an End for
// every registration it assigned and has not ended (the child reads it even
// as it stops), and let each child go (LetGo) once it has the outcome.
func (ch *Child) Assign(r *Reg) {
	r.c = ch.c
	if r.res.eager() {
		ch.c.tell(&adopt{r: r})
	}
}

// End asks the child to end r, the registration it was assigned last.
func (ch *Child) End(r *Reg, e *End) {
	ch.c.tell(&ending{r: r, e: e})
}

// Lapse tells the child that the grace period of the sweep that ended r
// (an End with Swept) is over: a task still running is reported timed out.
func (ch *Child) Lapse(r *Reg) {
	ch.c.tell(&lapse{r: r, sweep: true})
}

// LetGo tells a child that its parent has recorded the end of its
// registration (or that it serves none) and is stopping: its stop, now or
// to come, may finish. A child let go is never given another registration.
func (ch *Child) LetGo() {
	ch.c.tell(letGo{})
}

// letGo: see LetGo.
type letGo struct{}

// adopt tells a child to take up a registration now.
type adopt struct{ r *Reg }

// ending carries an End to the child with the registration it is meant for.
type ending struct {
	r *Reg
	e *End
}

// finished carries an outcome from a goroutine of the child's (finish).
type finished struct {
	r   *Reg
	out *Ended
}

// relayed carries a report from a goroutine to the child, which reports it.
type relayed struct{ msg any }

// lapse: r's grace period is over. sweep: the sweep's (Child.Lapse), else
// the task's own timer's.
type lapse struct {
	r     *Reg
	sweep bool
}

// child is the actor behind one registration at a time. Its fields are
// owned by its Receive; those set in Started are only read elsewhere.
type child struct {
	opts     Options
	system   *actor.ActorSystem // set in Started
	parent   *actor.PID         // set in Started
	self     *actor.PID         // set by Spawn
	mailbox  actor.Process      // set by Spawn: the child's own process, for tell
	started  bool               // Started ran once (a restart must not start twice)
	stopping bool               // protoactor is stopping the child; it reads its mailbox until hold is let go
	hold     *hold              // while stopping: keeps protoactor from finishing the stop
	letGo    bool               // the parent let the child go (LetGo): its stop need not wait
	cur      *Reg               // the registration adopted last
}

// Receive handles the supervisor's requests and protoactor's lifecycle.
func (c *child) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			// A bug in a child must not lose the resource: log and go on.
			c.opts.Logger.Error("resman: child actor panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
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
	case *adopt:
		c.adopt(msg.r)
	case *ending:
		if r := c.adopt(msg.r); r != nil {
			c.requestEnd(r, msg.e)
		}
	case *finished:
		msg.r.conclude(msg.out)
	case *relayed:
		c.report(msg.msg)
	case *End:
		// From the child's own goroutines (a failed ready check).
		if r := c.cur; r != nil && msg.H == r.H {
			c.requestEnd(r, msg)
		}
	case *Restart, *runEnded, *backoffOver, *readyDone, *halted, *lapse, *taskReturned:
		if r := c.cur; r != nil {
			if rc, ok := r.res.(receiver); ok {
				rc.receive(r, msg)
			}
		}
	case *leaderExited:
		msg.handle()
	case *KillNow:
		if c.cur != nil {
			if k, ok := c.cur.res.(killer); ok {
				k.killNow()
			}
		}
	case *actor.Stopping:
		// The tree is stopping (or the parent is done with us): the
		// resource must be gone before we report Stopped, because protoactor
		// finalises the parent only after its last child. The child does
		// not wait here: it holds the stop open (hold) and goes on reading
		// its mailbox. Only the parent knows when the child is done: it ends
		// every registration as it stops, in dependency order (an End it
		// holds may come much later, and is the first the child hears of a
		// task or a custom resource), and lets the child go (LetGo) once it
		// has the outcome, or at once if the child serves none.
		c.stopping = true
		if !c.letGo {
			c.hold = newHold(ctx, c)
		}
	case letGo:
		c.letGo = true
		if c.stopping {
			c.hold.release()
		}
	}
}

// adopt takes up r if it is new, and returns it; nil if r has already
// ended (a message meant for a registration the child is done with).
func (c *child) adopt(r *Reg) *Reg {
	if r == c.cur {
		return r
	}
	if r.over {
		return nil
	}
	c.cur = r
	func() {
		defer func() {
			if p := recover(); p != nil {
				c.opts.Logger.Error("resman: starting a resource panicked",
					"kind", r.H.Kind.String(), "key", r.H.Key, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
		}()
		r.res.start(r, c.stopping)
	}()
	return r
}

func (c *child) requestEnd(r *Reg, e *End) {
	if r.endAsked {
		return
	}
	r.endAsked = true
	if r.over {
		return // nothing left to end (a start that failed)
	}
	defer func() {
		// Should ending panic, the registration still ends, as a failure
		// the supervisor reports, and the child's stop cannot hang on it.
		if p := recover(); p != nil {
			r.conclude(&Ended{Mode: e.Mode, Err: &messages.PanicError{Value: p, Stack: debug.Stack()}})
		}
	}()
	r.res.end(r, e)
}

// tell sends msg to the child itself, from any goroutine once Started ran.
// It posts to the child's mailbox directly: once the child has stopped the
// message is dropped quietly, where a send by PID would be a dead letter.
func (c *child) tell(msg any) {
	c.mailbox.SendUserMessage(c.self, msg)
}

// report sends msg to the supervisor. Receive only: the child reports
// what its goroutines tell it, in the order it learns it.
func (c *child) report(msg any) {
	c.system.Root.Send(c.parent, msg)
}

// relay has the child report msg (relayed); from any goroutine.
func (c *child) relay(msg any) {
	c.tell(&relayed{msg: msg})
}
