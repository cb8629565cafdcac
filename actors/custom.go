package actors

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/messages"
)

// custom is the resource of a custom-resource child. It costs no goroutine
// until its cleanup runs.
type custom struct {
	value   any
	cleanup messages.CleanupFunc
}

// CustomProps returns the props of the child that owns value and its cleanup.
func CustomProps(h *Handle, value any, cleanup messages.CleanupFunc, opts Options) *actor.Props {
	return newProps(h, &custom{value: value, cleanup: cleanup}, opts)
}

func (r *custom) start(*child) {}

func (r *custom) end(c *child, e *End) {
	if e.Mode == EndRelease {
		c.finish(&Ended{Mode: EndRelease, Resource: r.value})
		return
	}
	go r.run(c, c.opts.timeout(e.Timeout)) // owned by the child; ends within the grace period
}

// run calls the cleanup in a goroutine of its own, so that a hung cleanup is
// reported at the deadline instead of being waited for.
func (r *custom) run(c *child, grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel() // not before the outcome is known: a cancel would look like the deadline
	result := make(chan error, 1)
	go func() { // owned by run; ends when the cleanup returns, even after the deadline
		result <- callCleanup(ctx, r.cleanup, r.value)
	}()
	select {
	case err := <-result:
		c.finish(&Ended{Mode: EndStop, Err: err})
	case <-ctx.Done():
		c.opts.Logger.Warn("resman: cleanup outlived its grace period; it is still running",
			"key", c.h.Key, "grace", grace)
		c.finish(&Ended{Mode: EndStop, Err: fmt.Errorf("%w: cleanup still running after %v", messages.ErrTimeout, grace)})
	}
}

func callCleanup(ctx context.Context, f messages.CleanupFunc, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &messages.PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return f(ctx, v)
}

func (r *custom) stopped(*child) {}
