package actors

import (
	"github.com/asynkron/protoactor-go/actor"
)

// hold keeps a stopping child's stop open while the child ends its
// registration, so that the child goes on reading its mailbox instead of
// waiting in Stopping.
//
// protoactor finishes an actor's stop (Stopped, then Terminated to its
// parent) once its last child has terminated, and until then goes on
// delivering the actor's user messages. A hold is such a child: a process
// of its own in the process registry, spawned in the child's Stopping, that
// protoactor stops with the child's other children. It answers that stop
// with Terminated only once the child lets it go (release), when its parent
// has let the child go (LetGo). Both the stop and the release come from the
// child's own mailbox run, so a hold needs no lock.
type hold struct {
	c        *child
	pid      *actor.PID
	stopped  bool // protoactor asked it to stop
	released bool // the child let it go
	done     bool // Terminated sent
}

// newHold spawns a hold under the child whose context ctx is.
func newHold(ctx actor.Context, c *child) *hold {
	h := &hold{c: c}
	props := actor.PropsFromProducer(nil, actor.WithSpawnFunc(
		func(system *actor.ActorSystem, id string, _ *actor.Props, _ actor.SpawnerContext) (*actor.PID, error) {
			pid, _ := system.ProcessRegistry.Add(h, id)
			h.pid = pid
			return pid, nil
		}))
	if _, err := ctx.SpawnNamed(props, "hold"); err != nil {
		return nil // cannot happen: the spawn function does not fail
	}
	return h
}

// SendUserMessage drops user messages: nobody sends a hold any.
func (h *hold) SendUserMessage(*actor.PID, any) {}

// SendSystemMessage takes protoactor's stop (the child's stopAllChildren).
func (h *hold) SendSystemMessage(_ *actor.PID, msg any) {
	if _, ok := msg.(*actor.Stop); ok {
		h.stopped = true
		h.finish()
	}
}

// Stop is protoactor's other way to stop a process.
func (h *hold) Stop(pid *actor.PID) { h.SendSystemMessage(pid, &actor.Stop{}) }

// release lets the child's stop finish. A nil hold (none was spawned) has
// nothing to let go.
func (h *hold) release() {
	if h == nil {
		return
	}
	h.released = true
	h.finish()
}

// finish reports the hold terminated to the child once it was both asked to
// stop and let go: protoactor then finishes the child's stop.
func (h *hold) finish() {
	if h.done || !h.stopped || !h.released {
		return
	}
	h.done = true
	h.c.system.ProcessRegistry.Remove(h.pid)
	h.c.mailbox.SendSystemMessage(h.c.self, &actor.Terminated{Who: h.pid})
}
