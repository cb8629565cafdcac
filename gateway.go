package resman

import (
	"context"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// The facade's reply path. protoactor's Future races when a reply lands
// after its timeout (upstream issue #1145), so the facade never lets a
// caller's deadline become a Future timeout: each request gets a one-shot
// reply process of its own, with no timer, that stays registered until the
// supervisor's one reply arrives, whether or not the caller still waits.

// replyProcess is an actor.Process that hands the first user message to a
// channel and unregisters itself.
type replyProcess struct {
	system *actor.ActorSystem
	ch     chan any // capacity 1; written once
}

func (r *replyProcess) SendUserMessage(pid *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	select {
	case r.ch <- msg:
	default:
	}
	r.system.ProcessRegistry.Remove(pid)
}

func (r *replyProcess) SendSystemMessage(*actor.PID, any) {}

func (r *replyProcess) Stop(pid *actor.PID) { r.system.ProcessRegistry.Remove(pid) }

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

// watchSupervisor registers a monitor for pid and returns its channel.
func watchSupervisor(system *actor.ActorSystem, pid *actor.PID) <-chan struct{} {
	m := &monitor{system: system, gone: make(chan struct{})}
	self, _ := system.ProcessRegistry.Add(m, "resman-monitor"+system.ProcessRegistry.NextId())
	ref, _ := system.ProcessRegistry.Get(pid)
	ref.SendSystemMessage(pid, &actor.Watch{Watcher: self})
	return m.gone
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
	r := &replyProcess{system: m.system, ch: make(chan any, 1)}
	pid, _ := m.system.ProcessRegistry.Add(r, "resman-reply"+m.system.ProcessRegistry.NextId())
	m.system.Root.RequestWithCustomSender(m.pid, req, pid)
	select {
	case resp := <-r.ch:
		return replied(resp)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-m.gone:
		select {
		case resp := <-r.ch: // it answered just before it went
			return replied(resp)
		default:
			m.system.ProcessRegistry.Remove(pid)
			return nil, ErrClosed
		}
	}
}

// replied turns a dead letter's answer (the supervisor is gone) into ErrClosed.
func replied(resp any) (any, error) {
	if _, dead := resp.(*actor.DeadLetterResponse); dead {
		return nil, ErrClosed
	}
	return resp, nil
}
