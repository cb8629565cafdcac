package actors

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/messages"
)

// task is the resource of a task child. An idle task child costs no
// goroutine: the task itself calls back when fn returns.
type task struct {
	t      *messages.Task
	fn     func(ctx context.Context) error // Go: the child starts the task
	ctx    context.Context                 // Go: the values for fn's context
	ending atomic.Bool                     // an end began: a return is no longer "on its own"
}

// TaskProps returns the props of the child that owns t.
func TaskProps(h *Handle, t *messages.Task, opts Options) *actor.Props {
	return newProps(h, &task{t: t}, opts)
}

// GoProps returns the props of a child that starts fn as a task (Go): if the
// key was taken the child is never spawned, so fn never runs.
func GoProps(h *Handle, ctx context.Context, fn func(ctx context.Context) error, opts Options) *actor.Props {
	return newProps(h, &task{fn: fn, ctx: ctx}, opts)
}

func (k *task) start(c *child) {
	if k.t == nil {
		k.t = messages.StartTask(k.ctx, k.fn)
		k.ctx, k.fn = nil, nil
		c.reportStart(&Started{H: c.h, Task: k.t})
	}
	k.t.OnReturn(func(err error) {
		if !k.ending.Load() {
			c.report(&Exited{H: c.h, Err: err})
		}
	})
}

func (k *task) end(c *child, e *End) {
	k.ending.Store(true)
	if e.Mode == EndRelease {
		c.finish(&Ended{Mode: EndRelease, Task: k.t})
		return
	}
	k.t.Cancel()
	// No goroutine waits: the task's own return finishes, or a timer does.
	grace := c.opts.timeout(e.Timeout)
	timer := time.AfterFunc(grace, func() {
		// Goroutines cannot be killed: report it, and do not forget it.
		c.opts.Logger.Warn("resman: task ignored its cancellation past the grace period; it is still running",
			"key", c.h.Key, "grace", grace)
		c.finish(&Ended{Mode: EndStop, Err: fmt.Errorf("%w: task still running after %v (its goroutine ignores cancellation)", messages.ErrTimeout, grace)})
	})
	k.t.OnDone(func(error) {
		timer.Stop()
		c.finish(&Ended{Mode: EndStop})
	})
}

func (k *task) stopped(*child) {}
