package remote

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/messages"
	"github.com/resman-dev/resman/remote/internal/wire"
)

// ownerStopTimeout bounds the stops of an owner's processes after its node
// terminated (each stop has its own grace period inside it).
const ownerStopTimeout = 5 * time.Minute

// server is the actor Serve spawns: it answers peers' requests by calling
// the Manager, each call on a goroutine of its own (the server owns them:
// Close cancels their contexts and waits for them), so that a slow stop or a
// long wait never blocks Receive.
type server struct {
	node *Node
	m    *resman.Manager

	base   context.Context // cancelled when the server stops
	cancel context.CancelFunc
	calls  sync.WaitGroup // the call goroutines

	// Owned by Receive.
	inflight map[callKey]context.CancelFunc
	clients  map[string]bool   // the client actors watched: when one goes, its calls are cancelled
	owners   map[string]*owner // by the client actor's PID, for OwnedByCaller
}

// callKey names a request: the client actor that sent it and its id.
type callKey struct {
	client string
	id     uint64
}

// owner is an OwnedByCaller client: the processes it started, which are
// stopped when its node terminates.
type owner struct {
	keys    map[string]bool
	pending int  // owned Supervise calls not yet answered
	dead    bool // its node terminated: what pending calls start is stopped at once
}

// callDone comes back from a call goroutine.
type callDone struct {
	key   callKey
	req   *wire.Request
	ok    bool
	owner string
}

func newServer(n *Node, m *resman.Manager) *server {
	ctx, cancel := context.WithCancel(context.Background())
	return &server{node: n, m: m, base: ctx, cancel: cancel, inflight: map[callKey]context.CancelFunc{}, clients: map[string]bool{}, owners: map[string]*owner{}}
}

// wait waits for the call goroutines, after the actor stopped.
func (s *server) wait() {
	s.cancel()
	s.calls.Wait()
}

func (s *server) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *wire.Request:
		s.request(ctx, msg)
	case *wire.Cancel:
		if sender := ctx.Sender(); sender != nil {
			if cancel, ok := s.inflight[callKey{sender.String(), msg.Id}]; ok {
				cancel()
			}
		}
	case *callDone:
		s.done(ctx, msg)
	case *actor.Terminated:
		s.terminated(msg.Who)
	case *actor.Stopping:
		s.cancel()
	}
}

func (s *server) request(ctx actor.Context, req *wire.Request) {
	sender := ctx.Sender()
	if sender == nil {
		return // nobody to answer
	}
	switch op := req.Op.(type) {
	case *wire.Request_Hello:
		ctx.Respond(&wire.Reply{Id: req.Id})
		return
	case *wire.Request_Subscribe:
		sub := op.Subscribe
		if sub.GetAddress() == "" || sub.GetId() == "" {
			ctx.Respond(&wire.Reply{Id: req.Id, Errors: encodeErr(fmt.Errorf("resman: remote: subscribe without a subscriber: %w", resman.ErrInvalid))})
			return
		}
		r := &relay{manager: s.m.PID(), subscriber: actor.NewPID(sub.Address, sub.Id), requester: sender, id: req.Id}
		ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return r }))
		return
	case nil:
		ctx.Respond(&wire.Reply{Id: req.Id, Errors: encodeErr(fmt.Errorf("resman: remote: empty request: %w", resman.ErrInvalid))})
		return
	}

	key := callKey{sender.String(), req.Id}
	if _, dup := s.inflight[key]; dup {
		return // a replayed id: the first call answers it
	}
	cctx, cancel := context.WithCancel(s.base)
	if req.TimeoutNanos > 0 {
		cctx, cancel = context.WithTimeout(s.base, time.Duration(req.TimeoutNanos))
	}
	s.inflight[key] = cancel
	if !s.clients[key.client] {
		// A client whose node goes stops waiting: its calls are cancelled
		// (a WaitProcess would otherwise wait for as long as the process
		// runs), and OwnedByCaller's processes are stopped.
		s.clients[key.client] = true
		ctx.Watch(sender)
	}
	var ownerID string
	if sv := req.GetSupervise(); sv != nil && sv.OwnedByCaller {
		ownerID = key.client
		o := s.owners[ownerID]
		if o == nil {
			o = &owner{keys: map[string]bool{}}
			s.owners[ownerID] = o
		}
		o.pending++
	}
	self, root := ctx.Self(), s.node.system.Root
	s.calls.Add(1)
	// Owned by the server: ends when the manager answers or cctx ends.
	go func() {
		defer s.calls.Done()
		reply := s.do(cctx, req)
		reply.Id = req.Id
		root.Send(sender, reply)
		root.Send(self, &callDone{key: key, req: req, ok: len(reply.Errors) == 0, owner: ownerID})
	}()
}

// do runs one request against the manager.
func (s *server) do(ctx context.Context, req *wire.Request) *wire.Reply {
	switch op := req.Op.(type) {
	case *wire.Request_Supervise:
		sv := op.Supervise
		spec := resman.ProcessSpec{Command: sv.GetSpec().GetCommand(), Env: sv.GetSpec().GetEnv(), Dir: sv.GetSpec().GetDir()}
		return &wire.Reply{Errors: encodeErr(s.m.Supervise(ctx, sv.Key, spec, decodeLifecycle(sv.Lifecycle)...))}
	case *wire.Request_StopProcess:
		st := op.StopProcess
		var opts []resman.StopOption
		if st.TimeoutNanos != 0 {
			opts = append(opts, resman.WithTimeout(time.Duration(st.TimeoutNanos)))
		}
		if st.Signal != 0 {
			opts = append(opts, resman.WithSignal(syscall.Signal(st.Signal)))
		}
		return &wire.Reply{Errors: encodeErr(s.m.StopProcess(ctx, st.Key, opts...))}
	case *wire.Request_RestartProcess:
		return &wire.Reply{Errors: encodeErr(s.m.RestartProcess(ctx, op.RestartProcess.Key))}
	case *wire.Request_WaitProcess:
		state, err := s.m.WaitProcess(ctx, op.WaitProcess.Key)
		r := &wire.Reply{Errors: encodeErr(err)}
		if state != nil {
			r.HasExit, r.ExitCode = true, int64(state.ExitCode())
		}
		return r
	case *wire.Request_GetStatus:
		st, err := s.m.Status(ctx)
		if err != nil {
			return &wire.Reply{Errors: encodeErr(err)}
		}
		r := &wire.Reply{Status: encodeStatus(st)}
		if n := proto.Size(r); n > s.node.limit {
			return &wire.Reply{Errors: encodeErr(fmt.Errorf("resman: remote: status: the reply of %d bytes is over the node's limit of %d (Config.MaxMessageBytes/%d): %w", n, s.node.limit, writerBatch, resman.ErrInvalid))}
		}
		return r
	case *wire.Request_Tail:
		t := op.Tail
		lines, err := s.m.Tail(ctx, t.Key, int(t.N))
		r := &wire.Reply{Errors: encodeErr(err), Lines: encodeLines(lines)}
		if n := proto.Size(r); n > s.node.limit {
			return &wire.Reply{Errors: encodeErr(messages.Invalid(resman.KindProcess, t.Key, "tail", fmt.Sprintf("the reply of %d bytes is over the node's limit of %d", n, s.node.limit)))}
		}
		return r
	case *wire.Request_CleanupAll:
		return &wire.Reply{Errors: encodeErr(s.m.CleanupAll(ctx))}
	}
	return &wire.Reply{Errors: encodeErr(fmt.Errorf("resman: remote: unknown request: %w", resman.ErrInvalid))}
}

// done records what a finished call changed for OwnedByCaller.
func (s *server) done(ctx actor.Context, d *callDone) {
	if cancel, ok := s.inflight[d.key]; ok {
		cancel()
		delete(s.inflight, d.key)
	}
	switch op := d.req.Op.(type) {
	case *wire.Request_Supervise:
		o := s.owners[d.owner]
		if o == nil {
			return
		}
		o.pending--
		if d.ok {
			if o.dead {
				s.stopOwned(op.Supervise.Key)
			} else {
				o.keys[op.Supervise.Key] = true
			}
		}
		if o.dead && o.pending == 0 {
			delete(s.owners, d.owner)
		}
	case *wire.Request_StopProcess:
		if d.ok {
			for _, o := range s.owners {
				delete(o.keys, op.StopProcess.Key)
			}
		}
	case *wire.Request_CleanupAll:
		if d.ok {
			for _, o := range s.owners {
				clear(o.keys)
			}
		}
	}
}

// terminated: an owner's node (or its client actor) is gone.
func (s *server) terminated(who *actor.PID) {
	id := who.String()
	if s.clients[id] {
		delete(s.clients, id)
		for k, cancel := range s.inflight {
			if k.client == id {
				cancel() // its goroutine still reports callDone, which deletes it
			}
		}
	}
	o := s.owners[id]
	if o == nil || o.dead {
		return
	}
	o.dead = true
	for key := range o.keys {
		s.stopOwned(key)
	}
	clear(o.keys)
	if o.pending == 0 {
		delete(s.owners, id)
	}
}

// stopOwned stops an owner's process with its own settings. It is not
// bound to the server's life: the node's Close does not cut it short.
func (s *server) stopOwned(key string) {
	s.calls.Add(1)
	// Owned by the server: ends when the stop does (bounded).
	go func() {
		defer s.calls.Done()
		ctx, cancel := context.WithTimeout(context.Background(), ownerStopTimeout)
		defer cancel()
		_ = s.m.StopProcess(ctx, key)
	}()
}

// relay subscribes to the manager for one remote subscriber and forwards
// each event to it, as a *wire.Event; it stops when the subscriber does
// (a remote watch: also when the subscriber's node terminates).
type relay struct {
	manager    *actor.PID
	subscriber *actor.PID
	requester  *actor.PID
	id         uint64
}

func (r *relay) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		ctx.Watch(r.subscriber)
		ctx.Request(r.manager, &messages.Subscribe{Subscriber: ctx.Self()})
	case *messages.SubscribeResponse:
		ctx.Send(r.requester, &wire.Reply{Id: r.id, Errors: encodeErr(msg.Err)})
		if msg.Err != nil {
			ctx.Stop(ctx.Self())
		}
	case *messages.Event:
		ctx.Send(r.subscriber, encodeEvent(msg))
	case *actor.Terminated:
		ctx.Stop(ctx.Self())
	}
}
