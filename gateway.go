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
// whether or not the caller still does; one whose caller gave up
// unregisters itself when its reply comes. Where reply processes come from
// is a replySource: the stock of replies.go.

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

// replySource hands the facade a reply process per request and takes it
// back once its reply was read.
type replySource interface {
	get() *replyProcess
	took(r *replyProcess, resp any) (any, error) // r's reply resp was read: r is done with
	close()                                      // the Manager is shut down
}

func newReplyProcess(system *actor.ActorSystem) *replyProcess {
	r := &replyProcess{system: system, ch: make(chan any, 1)}
	r.pid, _ = system.ProcessRegistry.Add(r, "resman-reply"+system.ProcessRegistry.NextId())
	return r
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
