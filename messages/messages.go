package messages

import (
	"context"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// A zero Timeout in a request means the manager's default grace period; a
// negative one is refused with ErrInvalid.

// RegisterProcess tracks a started, not yet waited cmd. Reply: *RegisterProcessResponse.
type RegisterProcess struct {
	Key       string
	Cmd       *exec.Cmd
	Lifecycle Lifecycle
}

// RegisterProcessResponse replies to RegisterProcess.
type RegisterProcessResponse struct{ Err error }

// StartProcess isolates, starts and registers an unstarted cmd, atomically.
// Reply: *StartProcessResponse.
type StartProcess struct {
	Key       string
	Cmd       *exec.Cmd
	Lifecycle Lifecycle
}

// StartProcessResponse replies to StartProcess.
type StartProcessResponse struct{ Err error }

// UnregisterProcess hands a process back to the caller. Reply: *UnregisterProcessResponse.
type UnregisterProcess struct{ Key string }

// UnregisterProcessResponse replies to UnregisterProcess with the cmd.
type UnregisterProcessResponse struct {
	Cmd *exec.Cmd
	Err error
}

// StopProcess signals, waits, kills, reaps and unregisters a process.
// Reply: *StopProcessResponse.
type StopProcess struct {
	Key     string
	Timeout time.Duration  // grace period; zero: the default
	Signal  syscall.Signal // first signal; zero: SIGTERM
}

// StopProcessResponse replies to StopProcess.
type StopProcessResponse struct{ Err error }

// WaitProcess waits until a process exits. Reply: *WaitProcessResponse.
type WaitProcess struct{ Key string }

// WaitProcessResponse replies to WaitProcess with the exit state.
type WaitProcessResponse struct {
	State *os.ProcessState
	Err   error
}

// RegisterTask tracks a task. Reply: *RegisterTaskResponse.
type RegisterTask struct {
	Key       string
	Task      *Task
	Lifecycle Lifecycle
}

// RegisterTaskResponse replies to RegisterTask.
type RegisterTaskResponse struct{ Err error }

// Go starts Fn as a task and registers it, atomically: if Key is taken, Fn
// never runs. Context provides the task's values (its cancellation is not
// inherited). Reply: *GoResponse.
type Go struct {
	Key       string
	Context   context.Context
	Fn        func(ctx context.Context) error
	Lifecycle Lifecycle
}

// GoResponse replies to Go with the started task.
type GoResponse struct {
	Task *Task
	Err  error
}

// UnregisterTask hands a task back to the caller. Reply: *UnregisterTaskResponse.
type UnregisterTask struct{ Key string }

// UnregisterTaskResponse replies to UnregisterTask with the task.
type UnregisterTaskResponse struct {
	Task *Task
	Err  error
}

// CancelTask cancels a task, waits up to the grace period and unregisters it.
// Reply: *CancelTaskResponse.
type CancelTask struct {
	Key     string
	Timeout time.Duration
}

// CancelTaskResponse replies to CancelTask.
type CancelTaskResponse struct{ Err error }

// RegisterCustomResource tracks any value with its cleanup function.
// Reply: *RegisterCustomResourceResponse.
type RegisterCustomResource struct {
	Key       string
	Resource  any
	Cleanup   CleanupFunc
	Lifecycle Lifecycle
}

// RegisterCustomResourceResponse replies to RegisterCustomResource.
type RegisterCustomResourceResponse struct{ Err error }

// RegisterCloser tracks an io.Closer; its cleanup is Close. Reply: *RegisterCloserResponse.
type RegisterCloser struct {
	Key       string
	Closer    io.Closer
	Lifecycle Lifecycle
}

// RegisterCloserResponse replies to RegisterCloser.
type RegisterCloserResponse struct{ Err error }

// UnregisterCustomResource hands a resource back without cleaning it up.
// Reply: *UnregisterCustomResourceResponse.
type UnregisterCustomResource struct{ Key string }

// UnregisterCustomResourceResponse replies to UnregisterCustomResource with the resource.
type UnregisterCustomResourceResponse struct {
	Resource any
	Err      error
}

// CleanupCustomResource runs a resource's cleanup and unregisters it.
// Reply: *CleanupCustomResourceResponse.
type CleanupCustomResource struct {
	Key     string
	Timeout time.Duration
}

// CleanupCustomResourceResponse replies to CleanupCustomResource.
type CleanupCustomResourceResponse struct{ Err error }

// Supervise starts Spec's first run and registers it in the processes
// namespace, atomically; Lifecycle says how it is restarted, ordered,
// stopped and checked for readiness. Reply: *SuperviseResponse.
type Supervise struct {
	Key       string
	Spec      ProcessSpec
	Lifecycle Lifecycle
}

// SuperviseResponse replies to Supervise.
type SuperviseResponse struct{ Err error }

// RestartProcess stops the current run of a supervised process and starts a
// new one at once. Reply: *RestartProcessResponse.
type RestartProcess struct{ Key string }

// RestartProcessResponse replies to RestartProcess.
type RestartProcessResponse struct{ Err error }

// CleanupAll cleans up everything tracked, concurrently. Reply: *CleanupAllResponse.
type CleanupAll struct{}

// CleanupAllResponse replies to CleanupAll; Err joins every failure.
type CleanupAllResponse struct{ Err error }

// GetStatus asks for a snapshot. Reply: *GetStatusResponse.
type GetStatus struct{}

// GetStatusResponse replies to GetStatus.
type GetStatusResponse struct {
	Status Status
	Err    error
}

// Shutdown refuses new work from now on (ErrClosed) and cleans up everything
// tracked. The supervisor actor keeps running until its parent (or the
// Manager) stops it. Reply: *ShutdownResponse once the cleanup is done.
type Shutdown struct{}

// ShutdownResponse replies to Shutdown; Err joins every cleanup failure.
type ShutdownResponse struct{ Err error }

// Subscribe makes the supervisor send every *Event to Subscriber, in order.
// A subscriber that stops is dropped. Reply: *SubscribeResponse.
type Subscribe struct {
	Subscriber *actor.PID
	Output     bool // also every output line of supervised processes, as *OutputLine
}

// SubscribeResponse replies to Subscribe.
type SubscribeResponse struct{ Err error }

// Unsubscribe stops the events to Subscriber. Reply: *UnsubscribeResponse.
type Unsubscribe struct{ Subscriber *actor.PID }

// UnsubscribeResponse replies to Unsubscribe.
type UnsubscribeResponse struct{ Err error }

// Tail asks for the last N output lines of a supervised process, oldest
// first. Reply: *TailResponse.
type Tail struct {
	Key string
	N   int
}

// TailResponse replies to Tail.
type TailResponse struct {
	Lines []OutputLine
	Err   error
}
