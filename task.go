package resman

import (
	"context"

	"github.com/resman-dev/resman/messages"
)

// Task is a goroutine with a cancel and a result: the Go counterpart of
// asyncio.Task. Make one with [StartTask] or [Manager.Go]; the zero value is
// not usable. It is [messages.Task] (an alias), with the methods
//
//	func (t *Task) Cancel()                        // cancels fn's context; does not wait
//	func (t *Task) Done() <-chan struct{}          // closed when fn has returned
//	func (t *Task) Err() error                     // nil until Done is closed, then fn's result
//	func (t *Task) Wait(ctx context.Context) error // fn's result, or ctx's error if ctx ends first
//
// and OnReturn and OnDone, hooks for code that watches tasks without a
// goroutine each (see [messages.Task.OnReturn]).
type Task = messages.Task

// CleanupFunc releases a custom resource. It is [messages.CleanupFunc] (an
// alias) of type
//
//	func(ctx context.Context, resource any) error
//
// resource is the registered value; ctx carries the grace-period deadline. A
// cleanup still running at the deadline is reported as [ErrTimeout] and no
// longer waited for, and so is one that returns because the deadline passed:
// to have its own result reported, a cleanup returns before the deadline. A
// panic is recovered into [ErrPanicked].
type CleanupFunc = messages.CleanupFunc

// StartTask runs fn in a new goroutine at once. fn's context is derived from
// context.WithoutCancel(ctx): it keeps ctx's values but is cancelled only by
// Task.Cancel. A panic in fn is recovered: Err then wraps ErrPanicked.
func StartTask(ctx context.Context, fn func(ctx context.Context) error) *Task {
	return messages.StartTask(ctx, fn)
}
