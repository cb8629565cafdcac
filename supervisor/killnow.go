package supervisor

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/actors"
	"github.com/resman-dev/resman/messages"
)

// KillNow asks a supervisor that is shutting down (Shutdown, or its own
// stop) to end every tracked process now: each process child SIGKILLs
// what is left of its process group or cgroup at once instead of waiting
// out the grace period, in a stop under way and in any stop still to come.
// Cleanups already running go on; tasks are already cancelled. The facade
// sends it on a second signal to HandleSignals. Outside a shutdown it is
// ignored. It gets no reply.
type KillNow struct{}

// killNow tells every process child to hurry its stop: a message each, so
// that the signalling stays with the goroutine that owns each process's end.
func (s *supervisor) killNow(ctx actor.Context) {
	if !s.closing {
		return
	}
	s.reg.each(func(e *entry) {
		if e.h.Kind == messages.KindProcess && e.child != nil {
			ctx.Send(e.child.PID, &actors.KillNow{})
		}
	})
}
