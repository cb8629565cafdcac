package messages

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Task is a goroutine with a cancel and a result: the Go counterpart of
// asyncio.Task. Create one with StartTask (or the root package's StartTask).
type Task struct {
	cancel    context.CancelFunc
	cancelled atomic.Bool // Cancel ran: finish need not cancel again
	done      chan struct{}

	mu       sync.Mutex // guards the fields below
	err      error      // fn's result, once finished
	finished bool       // fn has returned; done is closed right after the hooks ran
	hooks    []taskHook
	nextID   uint64
}

// StartTask runs fn in a new goroutine at once, with its own cancellable
// context derived from context.WithoutCancel(ctx): values are kept, the
// parent's cancellation is not. A panic in fn is recovered and becomes a
// *PanicError (errors.Is ErrPanicked). A nil fn gives a task that is already
// done with ErrInvalid; a nil ctx counts as context.Background().
func StartTask(ctx context.Context, fn func(ctx context.Context) error) *Task {
	if ctx == nil {
		ctx = context.Background()
	}
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := &Task{cancel: cancel, done: make(chan struct{})}
	if fn == nil {
		t.finish(fmt.Errorf("%w: nil task function", ErrInvalid))
		return t
	}
	go t.run(tctx, fn) // the goroutine is owned by t: it ends when fn returns
	return t
}

func (t *Task) run(ctx context.Context, fn func(ctx context.Context) error) {
	var err error
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
		t.finish(err)
	}()
	err = fn(ctx)
}

// finish records fn's result, runs the OnReturn hooks, closes done, then
// runs the OnDone hooks: whoever sees Done closed knows every OnReturn hook
// has run (a supervisor has been told), and every OnDone hook sees Done closed.
func (t *Task) finish(err error) {
	t.mu.Lock()
	t.err = err
	t.finished = true
	hooks := t.hooks
	t.hooks = nil
	t.mu.Unlock()
	if !t.cancelled.Load() {
		t.cancel() // release the context's resources
	}
	for _, h := range hooks {
		if !h.after {
			h.f(err)
		}
	}
	close(t.done)
	for _, h := range hooks {
		if h.after {
			h.f(err)
		}
	}
}

// Cancel cancels the task's context. It does not wait; see Wait.
func (t *Task) Cancel() {
	if t == nil {
		return
	}
	t.cancelled.Store(true)
	t.cancel()
}

// Done is closed when fn has returned.
func (t *Task) Done() <-chan struct{} { return t.done }

// Err is nil until Done is closed, then fn's result.
func (t *Task) Err() error {
	select {
	case <-t.done:
	default:
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Wait returns fn's result once it has returned, or ctx's error if ctx ends first.
func (t *Task) Wait(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case <-t.done:
		return t.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// OnReturn arranges for f to be called with fn's result when fn returns,
// on the task's goroutine before Done is closed (at once, on the caller's,
// if fn has returned already). The returned function removes f if it has not
// run yet. It is how a supervisor watches a task without a goroutine per task.
func (t *Task) OnReturn(f func(error)) (remove func()) { return t.hook(f, false) }

// OnDone is OnReturn, but f runs after Done is closed. It must not be
// called from an OnReturn hook.
func (t *Task) OnDone(f func(error)) (remove func()) { return t.hook(f, true) }

func (t *Task) hook(f func(error), after bool) (remove func()) {
	t.mu.Lock()
	if t.finished {
		err := t.err
		t.mu.Unlock()
		if after {
			<-t.done // closed right after the OnReturn hooks
		}
		f(err)
		return func() {}
	}
	id := t.nextID
	t.nextID++
	if t.hooks == nil {
		t.hooks = make([]taskHook, 0, 2) // a supervisor's two: return and done
	}
	t.hooks = append(t.hooks, taskHook{id: id, f: f, after: after})
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		for i, h := range t.hooks {
			if h.id == id {
				t.hooks = append(t.hooks[:i], t.hooks[i+1:]...)
				break
			}
		}
		t.mu.Unlock()
	}
}

type taskHook struct {
	id    uint64
	f     func(error)
	after bool // OnDone: after Done is closed
}
