package resman

import (
	"context"

	"github.com/resman-dev/resman/messages"
)

// Task is a goroutine with a cancel and a result: the Go counterpart of
// asyncio.Task.
type Task = messages.Task

// CleanupFunc releases a custom resource; ctx carries the grace-period deadline.
type CleanupFunc = messages.CleanupFunc

// StartTask runs fn in a new goroutine at once. fn's context is derived from
// context.WithoutCancel(ctx): it keeps ctx's values but is cancelled only by
// Task.Cancel. A panic in fn is recovered: Err then wraps ErrPanicked.
func StartTask(ctx context.Context, fn func(ctx context.Context) error) *Task {
	return messages.StartTask(ctx, fn)
}
