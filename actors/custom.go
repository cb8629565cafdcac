package actors

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/resman-dev/resman/messages"
)

// custom is the resource of a custom-resource registration. It costs no
// goroutine until its cleanup runs.
type custom struct {
	value   any
	cleanup messages.CleanupFunc
}

// CustomReg returns the registration of value and its cleanup.
func CustomReg(key string, value any, cleanup messages.CleanupFunc) *Reg {
	return newReg(messages.KindCustomResource, key, &custom{value: value, cleanup: cleanup})
}

func (r *custom) eager() bool { return false }

func (r *custom) start(*Reg, bool) {}

func (r *custom) end(g *Reg, e *End) {
	if e.Mode == EndRelease {
		g.conclude(&Ended{Mode: EndRelease, Resource: r.value})
		return
	}
	go r.run(g, g.opts().timeout(e.grace(g.lc))) // owned by the child; ends within the grace period
}

// run calls the cleanup in a goroutine of its own, so that a hung cleanup is
// reported at the deadline instead of being waited for.
func (r *custom) run(g *Reg, grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel() // not before the outcome is known: a cancel would look like the deadline
	result := make(chan error, 1)
	go func() { // owned by run; ends when the cleanup returns, even after the deadline
		result <- callCleanup(ctx, r.cleanup, r.value)
	}()
	select {
	case err := <-result:
		g.finish(&Ended{Mode: EndStop, Err: err})
	case <-ctx.Done():
		g.opts().Logger.Warn("resman: cleanup outlived its grace period; it is still running",
			"key", g.H.Key, "grace", grace)
		g.finish(&Ended{Mode: EndStop, Err: fmt.Errorf("%w: cleanup still running after %v", messages.ErrTimeout, grace)})
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
