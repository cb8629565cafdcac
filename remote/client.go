package remote

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/internal/hooks"
	"github.com/resman-dev/resman/internal/queue"
	"github.com/resman-dev/resman/messages"
	"github.com/resman-dev/resman/remote/internal/wire"
)

// Client drives the manager a remote node serves: the same calls as
// resman.Manager's for supervised processes, with the same errors
// (errors.Is and errors.As hold across the wire). A call to a node that is
// down, or that goes down while the call waits, fails within 2 s with an
// error wrapping resman.ErrUnreachable: then what the node did of the call
// is unknown. A Client is safe for concurrent use.
type Client struct {
	node    *Node
	address string
	owned   bool
	pid     *actor.PID // the client actor; nil if the node was closed or address is bad
	bad     error      // ErrInvalid for a bad address
	ids     atomic.Uint64
}

// call is one request on its way through the client actor.
type call struct {
	req   *wire.Request
	reply chan callResult // capacity 1: the actor never blocks on it
}

type callResult struct {
	reply *wire.Reply
	err   error // ErrUnreachable or ErrClosed, before any reply
}

// cancelCall: the caller stopped waiting for request id.
type cancelCall struct{ id uint64 }

// helloExpired: helloTimeout passed since the client actor started.
type helloExpired struct{}

// do sends req and waits for its reply, ctx's end, or the node's Close.
// key and op name the error when there is no reply (a process error when
// key is set).
func (c *Client) do(ctx context.Context, key, op string, req *wire.Request) (*wire.Reply, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	fail := func(err error) error {
		if key == "" {
			return fmt.Errorf("resman: %s on %s: %w", op, c.address, err)
		}
		return &resman.ResourceError{Kind: resman.KindProcess, Key: key, Op: op, Err: err}
	}
	if c.bad != nil {
		return nil, fail(c.bad)
	}
	if c.pid == nil {
		return nil, fail(resman.ErrClosed)
	}
	select {
	case <-c.node.done:
		return nil, fail(resman.ErrClosed)
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(err)
	}
	req.Id = c.ids.Add(1)
	if d, ok := ctx.Deadline(); ok {
		req.TimeoutNanos = max(int64(time.Until(d)), 1)
	}
	if n := proto.Size(req); n > c.node.limit {
		return nil, fail(fmt.Errorf("%w: the request of %d bytes is over the node's limit of %d (Config.MaxMessageBytes/%d)", resman.ErrInvalid, n, c.node.limit, writerBatch))
	}
	cl := &call{req: req, reply: make(chan callResult, 1)}
	root := c.node.system.Root
	root.Send(c.pid, cl)
	select {
	case r := <-cl.reply:
		if r.err != nil {
			return nil, fail(r.err)
		}
		return r.reply, nil
	case <-ctx.Done():
		root.Send(c.pid, &cancelCall{id: req.Id})
		return nil, fail(ctx.Err())
	case <-c.node.done:
		return nil, fail(resman.ErrClosed)
	}
}

// Supervise starts spec's first run on the remote node and registers it
// there, as resman.Manager.Supervise does. Only options that carry data
// travel: WithRestart, DependsOn, WithStopSignal, WithGracePeriod and
// WithReady with a TCP, HTTP or Output check; a Func ready check is
// resman.ErrInvalid, and nothing is sent.
func (c *Client) Supervise(ctx context.Context, key string, spec resman.ProcessSpec, opts ...resman.ResourceOption) error {
	var l messages.Lifecycle
	for _, o := range opts {
		if o != nil {
			o(&l)
		}
	}
	wl, err := encodeLifecycle(key, l)
	if err != nil {
		return err
	}
	req := &wire.Request{Op: &wire.Request_Supervise{Supervise: &wire.Supervise{
		Key: key, Spec: &wire.ProcessSpec{Command: spec.Command, Env: spec.Env, Dir: spec.Dir},
		Lifecycle: wl, OwnedByCaller: c.owned,
	}}}
	r, err := c.do(ctx, key, "supervise", req)
	if err != nil {
		return err
	}
	return decodeErr(r.Errors)
}

// StopProcess stops a process on the remote node, as
// resman.Manager.StopProcess does; WithTimeout and WithSignal travel.
func (c *Client) StopProcess(ctx context.Context, key string, opts ...resman.StopOption) error {
	timeout, sig := hooks.StopSettings(opts)
	req := &wire.Request{Op: &wire.Request_StopProcess{StopProcess: &wire.StopProcess{Key: key, TimeoutNanos: int64(timeout), Signal: int64(sig)}}}
	r, err := c.do(ctx, key, "stop", req)
	if err != nil {
		return err
	}
	return decodeErr(r.Errors)
}

// RestartProcess restarts a supervised process on the remote node, as
// resman.Manager.RestartProcess does.
func (c *Client) RestartProcess(ctx context.Context, key string) error {
	r, err := c.do(ctx, key, "restart", &wire.Request{Op: &wire.Request_RestartProcess{RestartProcess: &wire.RestartProcess{Key: key}}})
	if err != nil {
		return err
	}
	return decodeErr(r.Errors)
}

// WaitProcess waits until a process on the remote node exits (as
// resman.Manager.WaitProcess does) and returns its exit code: -1 if a
// signal ended it, or when there is no exit state with the error.
func (c *Client) WaitProcess(ctx context.Context, key string) (exitCode int, err error) {
	r, err := c.do(ctx, key, "wait", &wire.Request{Op: &wire.Request_WaitProcess{WaitProcess: &wire.WaitProcess{Key: key}}})
	if err != nil {
		return -1, err
	}
	code := -1
	if r.HasExit {
		code = int(r.ExitCode)
	}
	return code, decodeErr(r.Errors)
}

// Status returns a snapshot of what the remote manager tracks; its tasks
// and custom resources are listed too (as data).
func (c *Client) Status(ctx context.Context) (resman.Status, error) {
	r, err := c.do(ctx, "", "status", &wire.Request{Op: &wire.Request_GetStatus{GetStatus: &wire.GetStatus{}}})
	if err != nil {
		return resman.Status{}, err
	}
	if err := decodeErr(r.Errors); err != nil {
		return resman.Status{}, err
	}
	return decodeStatus(r.Status), nil
}

// Tail returns the last n output lines of a supervised process on the
// remote node, oldest first, as resman.Manager.Tail does.
func (c *Client) Tail(ctx context.Context, key string, n int) ([]resman.OutputLine, error) {
	r, err := c.do(ctx, key, "tail", &wire.Request{Op: &wire.Request_Tail{Tail: &wire.Tail{Key: key, N: int64(n)}}})
	if err != nil {
		return nil, err
	}
	return decodeLines(r.Lines), decodeErr(r.Errors)
}

// CleanupAll cleans up everything the remote manager tracks (its local
// tasks and custom resources included), as resman.Manager.CleanupAll does.
func (c *Client) CleanupAll(ctx context.Context) error {
	r, err := c.do(ctx, "", "cleanup all", &wire.Request{Op: &wire.Request_CleanupAll{CleanupAll: &wire.CleanupAll{}}})
	if err != nil {
		return err
	}
	return decodeErr(r.Errors)
}

// Subscribe calls fn for every event of the remote manager from now on, in
// order, on a goroutine of its own (a slow fn delays later events, never
// the node). stop ends the subscription; fn may call it. Events stop
// coming when either node goes; stop is still to be called.
func (c *Client) Subscribe(ctx context.Context, fn func(resman.Event)) (stop func(), err error) {
	if fn == nil {
		return nil, fmt.Errorf("resman: subscribe: nil func: %w", resman.ErrInvalid)
	}
	if c.bad != nil {
		return nil, fmt.Errorf("resman: subscribe on %s: %w", c.address, c.bad)
	}
	if c.pid == nil {
		return nil, fmt.Errorf("resman: subscribe on %s: %w", c.address, resman.ErrClosed)
	}
	q := queue.New(func(batch []resman.Event) {
		for _, e := range batch {
			fn(e)
		}
	}, nil)
	sub := &subscriber{q: q}
	root := c.node.system.Root
	c.node.mu.Lock()
	if c.node.closed {
		c.node.mu.Unlock()
		return nil, fmt.Errorf("resman: subscribe on %s: %w", c.address, resman.ErrClosed)
	}
	pid, err := c.node.spawn(actor.PropsFromProducer(func() actor.Actor { return sub }), "")
	c.node.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("resman: subscribe on %s: %w", c.address, err)
	}
	r, err := c.do(ctx, "", "subscribe", &wire.Request{Op: &wire.Request_Subscribe{Subscribe: &wire.Subscribe{Address: pid.Address, Id: pid.Id}}})
	if err == nil {
		err = decodeErr(r.Errors)
	}
	var stopped atomic.Bool
	stop = func() {
		if stopped.CompareAndSwap(false, true) {
			root.Stop(pid)
		}
	}
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// subscriber receives a remote manager's events and hands them to a queue,
// whose goroutine calls the user's fn.
type subscriber struct{ q *queue.Queue[resman.Event] }

func (s *subscriber) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *wire.Event:
		s.q.Push(decodeEvent(msg))
	case *actor.Stopped:
		s.q.Close()
	}
}

// clientActor is a Client's end on its node: it keeps the calls waiting for
// a reply by id (Go channels, never protoactor futures, whose late replies
// race), watches the serving actor, and fails every waiting and later call
// with ErrUnreachable once the node is gone.
type clientActor struct {
	server *actor.PID

	// Owned by Receive.
	pending   map[uint64]*call
	connected bool
	dead      error // ErrUnreachable once the node is gone, ErrClosed once stopping
	silent    bool  // dead only because the first answer was late: a late answer revives it
	timer     *time.Timer
}

func (a *clientActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		ctx.Watch(a.server)
		ctx.Request(a.server, &wire.Request{Op: &wire.Request_Hello{Hello: &wire.Hello{}}})
		self, root := ctx.Self(), ctx.ActorSystem().Root
		a.timer = time.AfterFunc(helloTimeout, func() { root.Send(self, &helloExpired{}) })
	case *call:
		if a.dead != nil {
			msg.reply <- callResult{err: a.dead}
			return
		}
		a.pending[msg.req.Id] = msg
		ctx.Request(a.server, msg.req)
	case *cancelCall:
		if _, ok := a.pending[msg.id]; ok {
			delete(a.pending, msg.id)
			if a.dead == nil {
				ctx.Request(a.server, &wire.Cancel{Id: msg.id})
			}
		}
	case *wire.Reply:
		if msg.Id == 0 {
			a.connected = true
			a.timer.Stop()
			if a.silent {
				// Slow (a loaded machine, a slow handshake), not down: the
				// calls failed meanwhile, later ones go through.
				a.dead, a.silent = nil, false
			}
			return
		}
		if cl, ok := a.pending[msg.Id]; ok {
			delete(a.pending, msg.Id)
			cl.reply <- callResult{reply: msg}
		}
	case *helloExpired:
		if !a.connected && a.dead == nil {
			a.fail(resman.ErrUnreachable)
			a.silent = true
		}
	case *actor.Terminated:
		a.silent = false
		a.fail(resman.ErrUnreachable)
	case *actor.DeadLetterResponse:
		// The serving actor is not there (the node serves no manager) or
		// the endpoint could not deliver.
		a.silent = false
		a.fail(resman.ErrUnreachable)
	case *actor.Stopping:
		if a.timer != nil {
			a.timer.Stop()
		}
		if a.silent {
			a.dead, a.silent = nil, false
		}
		a.fail(resman.ErrClosed)
	}
}

// fail answers every waiting call with err, and every later one.
func (a *clientActor) fail(err error) {
	if a.dead == nil {
		a.dead = err
	}
	for id, cl := range a.pending {
		cl.reply <- callResult{err: a.dead}
		delete(a.pending, id)
	}
}
