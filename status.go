package resman

import "github.com/resman-dev/resman/messages"

// Status is a snapshot of everything a manager tracks; each slice is sorted by Key.
type Status = messages.Status

// ProcessStatus describes one tracked process.
type ProcessStatus = messages.ProcessStatus

// TaskStatus describes one tracked task.
type TaskStatus = messages.TaskStatus

// CustomResourceStatus describes one tracked custom resource.
type CustomResourceStatus = messages.CustomResourceStatus

// State is where a resource is in its life; String gives "running",
// "stopping" or "exited".
type State = messages.State

// The states.
const (
	StateRunning  = messages.StateRunning
	StateStopping = messages.StateStopping
	StateExited   = messages.StateExited
	// Supervision's states: started, its ready check not yet passed; waiting
	// out a backoff; gave up restarting.
	StateStarting   = messages.StateStarting
	StateRestarting = messages.StateRestarting
	StateFailed     = messages.StateFailed
)

// Event is one thing that happened to a tracked resource; see WithEventHook
// and messages.Subscribe.
type Event = messages.Event

// EventType says what happened.
type EventType = messages.EventType

// The event types. Every registration gets EventRegistered first and, at its
// end, exactly one of EventStopped, EventFailed or EventUnregistered.
const (
	EventRegistered   = messages.EventRegistered
	EventExited       = messages.EventExited
	EventStopped      = messages.EventStopped
	EventUnregistered = messages.EventUnregistered
	EventFailed       = messages.EventFailed
	// Supervision's events: a run passed its ready check; a restart is
	// scheduled (Delay); a new run started (PID); no more restarts (Err
	// wraps ErrRestartLimit). A restart is never Registered, Stopped or
	// Unregistered: one registration spans all its runs.
	EventReady      = messages.EventReady
	EventRestarting = messages.EventRestarting
	EventRestarted  = messages.EventRestarted
	EventGaveUp     = messages.EventGaveUp
)
