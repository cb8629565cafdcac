package supervisor

import (
	"errors"
	"fmt"
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/actors"
	"github.com/resman-dev/resman/messages"
)

// Dependency order. A registration's DependsOn names resources registered
// before it, so the graph has no cycle. The supervisor keeps it in the
// entries (owned by its Receive, like the whole registry): each knows what
// it depends on and which live registrations depend on it. A resource is
// ended only once no live registration depends on it: its End is held
// until its last dependent is gone.

// link records e's dependencies, which checkLifecycle found registered.
func (s *supervisor) link(e *entry) {
	for _, ref := range e.reg.Lifecycle().DependsOn {
		if d := s.reg.get(ref.Kind, ref.Key); d != nil && d != e {
			e.deps = append(e.deps, d)
			d.dependents = append(d.dependents, e)
		}
	}
}

// drop removes e from the registry and from the graph; a dependency whose
// end waited for e goes on if e was its last dependent.
func (s *supervisor) drop(e *entry) {
	s.reg.remove(e)
	for _, d := range e.deps {
		for i, x := range d.dependents {
			if x == e {
				d.dependents = append(d.dependents[:i:i], d.dependents[i+1:]...)
				break
			}
		}
		if d.held != nil && len(d.dependents) == 0 && !d.gone {
			req := d.held
			d.held = nil
			if req.Swept {
				// The sweep's grace period began when it held this End:
				// the end gets a grace period of its own from now.
				own := *req
				own.Swept = false
				req = &own
			}
			d.child.End(d.reg, req)
		}
	}
	e.deps = nil
	s.unblock()
}

// dependentsOf names e's live dependents, for an error.
func dependentsOf(e *entry) string {
	names := make([]string, len(e.dependents))
	for i, d := range e.dependents {
		names[i] = fmt.Sprintf("%v %q", d.h.Kind, d.h.Key)
	}
	return strings.Join(names, ", ")
}

// stopDependents starts the stop of e's dependents that are not ending yet
// and holds e's own End until they are gone. With collect, their failures
// are joined into e's outcome (an explicit stop of e returns them); a sweep
// counts them on its own.
func (s *supervisor) stopDependents(ctx actor.Context, e *entry, req *actors.End, collect bool) {
	e.held = req
	for _, d := range append([]*entry(nil), e.dependents...) {
		if collect {
			d.waiters = append(d.waiters, func(_ *actors.Ended, err error) {
				if err != nil && !errors.Is(err, messages.ErrNotRegistered) {
					e.heldErrs = append(e.heldErrs, err)
				}
			})
		}
		if !d.ending {
			s.beginEnd(ctx, d, stopOp(d.h.Kind), &actors.End{H: d.h}, collect)
		}
	}
}

// blocked holds registrations that wait for a dependency's ready check:
// each is sent to the supervisor again when a start completes.
type blocked struct {
	req    any
	sender *actor.PID
}

// waitForDeps reports whether a registration with lc must wait for a
// process dependency that is still starting; it then keeps the request.
func (s *supervisor) waitForDeps(ctx actor.Context, req any, lc messages.Lifecycle) bool {
	if undone, ok := s.requeued[req]; ok {
		delete(s.requeued, req)
		if undone {
			return true // its caller gave up while it was on its way back: drop it
		}
	}
	if s.closing {
		return false
	}
	for _, ref := range lc.DependsOn {
		if d := s.reg.get(ref.Kind, ref.Key); d != nil && !d.ending && (d.pending || d.state == messages.StateStarting) {
			s.blocked = append(s.blocked, blocked{req: req, sender: ctx.Sender()})
			return true
		}
	}
	return false
}

// unblock sends the waiting registrations to the supervisor again.
func (s *supervisor) unblock() {
	if len(s.blocked) == 0 || s.stopping {
		return
	}
	waiting := s.blocked
	s.blocked = nil
	for _, b := range waiting {
		s.requeued[b.req] = false
		if b.sender != nil {
			s.system.Root.RequestWithCustomSender(s.self, b.req, b.sender)
		} else {
			s.system.Root.Send(s.self, b.req)
		}
	}
}

// forget drops a waiting registration whose caller gave up (Undo).
func (s *supervisor) forget(req any) bool {
	for i, b := range s.blocked {
		if b.req == req {
			s.blocked = append(s.blocked[:i:i], s.blocked[i+1:]...)
			return true
		}
	}
	return false
}
