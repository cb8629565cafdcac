package resman

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/messages"
	"github.com/resman-dev/resman/supervisor"
)

// The facade's reply path. protoactor's Future races when a reply lands
// after its timeout (upstream issue #1145), so the facade never lets a
// caller's deadline become a Future timeout: each request is answered to a
// reply process, with no timer, that waits for the supervisor's one reply
// whether or not the caller still does. A reply process whose reply was
// read serves the next request (the registry is not touched per request);
// one whose caller gave up unregisters itself when its reply comes.

// replyProcess is an actor.Process that hands one reply to a channel.
type replyProcess struct {
	system *actor.ActorSystem
	pid    *actor.PID
	state  atomic.Int32 // replyWaiting, replyArrived or replyAbandoned
	ch     chan any     // capacity 1
}

const (
	replyWaiting int32 = iota
	replyArrived
	replyAbandoned // the caller left: the reply, when it comes, is dropped
)

func (r *replyProcess) SendUserMessage(pid *actor.PID, message any) {
	if !r.state.CompareAndSwap(replyWaiting, replyArrived) {
		r.system.ProcessRegistry.Remove(pid) // nobody waits any more
		return
	}
	_, msg, _ := actor.UnwrapEnvelope(message)
	r.ch <- msg
}

func (r *replyProcess) SendSystemMessage(*actor.PID, any) {}

func (r *replyProcess) Stop(pid *actor.PID) { r.system.ProcessRegistry.Remove(pid) }

// replies is a Manager's stock of reply processes whose reply was read.
type replies struct {
	system *actor.ActorSystem
	mu     sync.Mutex
	free   []*replyProcess
	closed bool // the Manager is shut down: no more stock
}

// maxFreeReplies bounds the stock: as many as callers wait at once, up to this.
const maxFreeReplies = 256

func (rs *replies) get() *replyProcess {
	rs.mu.Lock()
	if n := len(rs.free); n > 0 {
		r := rs.free[n-1]
		rs.free = rs.free[:n-1]
		rs.mu.Unlock()
		return r
	}
	rs.mu.Unlock()
	r := &replyProcess{system: rs.system, ch: make(chan any, 1)}
	r.pid, _ = rs.system.ProcessRegistry.Add(r, "resman-reply"+rs.system.ProcessRegistry.NextId())
	return r
}

// put takes back a reply process whose reply was read.
func (rs *replies) put(r *replyProcess) {
	r.state.Store(replyWaiting)
	rs.mu.Lock()
	if !rs.closed && len(rs.free) < maxFreeReplies {
		rs.free = append(rs.free, r)
		r = nil
	}
	rs.mu.Unlock()
	if r != nil {
		rs.system.ProcessRegistry.Remove(r.pid)
	}
}

// took takes back r, whose reply resp was read, and returns the reply.
func (rs *replies) took(r *replyProcess, resp any) (any, error) {
	rs.put(r)
	return replied(resp)
}

// close unregisters the stock; later puts unregister at once.
func (rs *replies) close() {
	rs.mu.Lock()
	free := rs.free
	rs.free, rs.closed = nil, true
	rs.mu.Unlock()
	for _, r := range free {
		rs.system.ProcessRegistry.Remove(r.pid)
	}
}

// monitor closes a channel when the supervisor terminates, so that no caller
// waits for a reply that can no longer come.
type monitor struct {
	system *actor.ActorSystem
	once   sync.Once
	gone   chan struct{}
}

func (m *monitor) SendUserMessage(*actor.PID, any) {}

func (m *monitor) SendSystemMessage(pid *actor.PID, message any) {
	if _, ok := message.(*actor.Terminated); ok {
		m.once.Do(func() {
			close(m.gone)
			m.system.ProcessRegistry.Remove(pid)
		})
	}
}

func (m *monitor) Stop(*actor.PID) {}

// watchSupervisor registers a monitor for pid and returns its channel and
// the supervisor's process, resolved once.
func watchSupervisor(system *actor.ActorSystem, pid *actor.PID) (<-chan struct{}, actor.Process) {
	m := &monitor{system: system, gone: make(chan struct{})}
	self, _ := system.ProcessRegistry.Add(m, "resman-monitor"+system.ProcessRegistry.NextId())
	ref, _ := system.ProcessRegistry.Get(pid)
	ref.SendSystemMessage(pid, &actor.Watch{Watcher: self})
	return m.gone, ref
}

// post puts msg in the supervisor's mailbox, sent by from (nil: no reply).
// It goes to the process resolved at Attach, not through the registry: once
// the supervisor is stopping, protoactor's PID lookup would find it gone from
// the registry a moment before its watchers hear of it, and turn a request
// into a dead letter in the user's actor system. A message posted to a
// stopped actor's mailbox is dropped quietly, and its caller learns of the
// end from the monitor (ErrClosed).
func (m *Manager) post(msg any, from *actor.PID) {
	if from != nil {
		msg = &actor.MessageEnvelope{Message: msg, Sender: from}
	}
	m.sup.SendUserMessage(m.pid, msg)
}

// request sends req to the supervisor and waits for its reply, ctx's end or
// the supervisor's termination.
func (m *Manager) request(ctx context.Context, req any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-m.gone: // known to be gone: no dead letter
		return nil, ErrClosed
	default:
	}
	r := m.replies.get()
	m.post(req, r.pid)
	select {
	case resp := <-r.ch:
		return m.replies.took(r, resp)
	case <-ctx.Done():
		if r.state.CompareAndSwap(replyWaiting, replyAbandoned) {
			// The reply unregisters it when it comes. A registration the
			// caller no longer waits for is undone, queued right behind it.
			if undoable(req) {
				m.post(&supervisor.Undo{Request: req}, nil)
			}
			return nil, ctx.Err()
		}
		return m.replies.took(r, <-r.ch) // it is being delivered
	case <-m.gone:
		if r.state.CompareAndSwap(replyWaiting, replyAbandoned) {
			m.system.ProcessRegistry.Remove(r.pid)
			return nil, ErrClosed
		}
		return m.replies.took(r, <-r.ch) // it answered just before it went
	}
}

// replied turns a dead letter's answer (the supervisor is gone) into ErrClosed.
func replied(resp any) (any, error) {
	if _, dead := resp.(*actor.DeadLetterResponse); dead {
		return nil, ErrClosed
	}
	return resp, nil
}

// undoable reports whether req registers a resource: if its caller gives up
// before the reply, the registration is undone.
func undoable(req any) bool {
	switch req.(type) {
	case *messages.RegisterProcess, *messages.StartProcess, *messages.Supervise, *messages.RegisterTask, *messages.Go,
		*messages.RegisterCustomResource, *messages.RegisterCloser:
		return true
	}
	return false
}
