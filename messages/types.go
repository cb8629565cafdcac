// Package messages is resman's actor protocol: the request and reply messages
// the supervisor actor understands, and the value types they carry.
//
// Any actor can drive a resman supervisor with ctx.Request(managerPID, msg):
// every request gets exactly one reply, a pointer to the request's
// <Name>Response type, whose Err field uses the sentinels below (the root
// package re-exports the same values, so errors.Is works across both).
package messages

import (
	"context"
	"time"
)

// Kind names the namespace a resource lives in.
type Kind int

// The three kinds of tracked resources. The same key may exist once per kind.
const (
	KindProcess Kind = iota + 1
	KindTask
	KindCustomResource
)

// String returns "process", "task" or "custom resource".
func (k Kind) String() string {
	switch k {
	case KindProcess:
		return "process"
	case KindTask:
		return "task"
	case KindCustomResource:
		return "custom resource"
	default:
		return "resource"
	}
}

// State is where a tracked resource is in its life.
type State int

// The states a tracked resource can be in.
const (
	StateRunning    State = iota // running (a process or task) or held (a custom resource)
	StateStopping                // a stop, cancel or cleanup is in progress
	StateExited                  // the process exited or the task returned on its own; still registered
	StateStarting                // started, its ready check not yet passed
	StateRestarting              // waiting out a backoff before the next run
	StateFailed                  // gave up restarting (ErrRestartLimit); still registered
)

// String returns "running", "stopping", "exited", "starting", "restarting"
// or "failed".
func (s State) String() string {
	switch s {
	case StateRunning:
		return "running"
	case StateStopping:
		return "stopping"
	case StateExited:
		return "exited"
	case StateStarting:
		return "starting"
	case StateRestarting:
		return "restarting"
	case StateFailed:
		return "failed"
	default:
		return "unknown"
	}
}

// EventType says what happened to a resource.
type EventType int

// Every registration produces EventRegistered first and, at its end, exactly
// one of EventStopped, EventFailed or EventUnregistered. EventExited may come
// in between.
const (
	EventRegistered   EventType = iota + 1 // the resource is now tracked
	EventExited                            // a process exited or a task returned on its own
	EventStopped                           // stopped, cancelled or cleaned up by the manager
	EventUnregistered                      // handed back to the caller
	EventFailed                            // a stop, cancel or cleanup failed; Err says why
	EventReady                             // a run passed its ready check
	EventRestarting                        // a restart is scheduled after Delay
	EventRestarted                         // a new run started (PID)
	EventGaveUp                            // no more restarts: Err wraps ErrRestartLimit
)

// String returns the event type's name in lower case.
func (t EventType) String() string {
	switch t {
	case EventRegistered:
		return "registered"
	case EventExited:
		return "exited"
	case EventStopped:
		return "stopped"
	case EventUnregistered:
		return "unregistered"
	case EventFailed:
		return "failed"
	case EventReady:
		return "ready"
	case EventRestarting:
		return "restarting"
	case EventRestarted:
		return "restarted"
	case EventGaveUp:
		return "gave-up"
	default:
		return "unknown"
	}
}

// Event is one thing that happened to a tracked resource. Subscribers receive
// *Event messages; hooks receive Event values.
type Event struct {
	Kind     Kind
	Key      string
	Type     EventType
	At       time.Time
	PID      int           // processes: the OS process id
	ExitCode int           // EventExited of a process: the exit code, -1 if a signal ended it
	Err      error         // EventExited of a task: its result; EventFailed, EventGaveUp: the failure
	Delay    time.Duration // EventRestarting: the wait before the next run
	Restarts int           // the resource's restart count when the event happened
}

// CleanupFunc releases a custom resource. ctx carries the grace-period
// deadline; resource is the value that was registered.
type CleanupFunc func(ctx context.Context, resource any) error

// Status is a snapshot of everything a manager tracks; each slice is sorted by Key.
type Status struct {
	Processes       []ProcessStatus
	Tasks           []TaskStatus
	CustomResources []CustomResourceStatus
}

// ProcessStatus describes one tracked process.
type ProcessStatus struct {
	Key          string
	PID          int
	State        State
	RegisteredAt time.Time
	ExitCode     int       // when StateExited (and the last run's while restarting or failed): the exit code, -1 if a signal ended it
	Restarts     int       // runs started after the first
	LastExit     time.Time // when the last run ended; zero if none has
	DependsOn    []Ref
	DroppedLines int // supervised: output lines that never reached a consumer (a slow one)
}

// TaskStatus describes one tracked task.
type TaskStatus struct {
	Key          string
	State        State
	RegisteredAt time.Time
	Err          error     // fn's result once StateExited (the last run's while restarting or failed)
	Restarts     int       // runs started after the first
	LastExit     time.Time // when the last run ended; zero if none has
	DependsOn    []Ref
}

// CustomResourceStatus describes one tracked custom resource.
type CustomResourceStatus struct {
	Key          string
	Type         string // the resource's Go type as fmt's %T prints it
	State        State
	RegisteredAt time.Time
	DependsOn    []Ref
}
