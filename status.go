package resman

import "github.com/resman-dev/resman/messages"

// Status is a snapshot of everything a manager tracks, as [Manager.Status]
// returns it. It is [messages.Status] (an alias), with the fields
//
//	Processes       []ProcessStatus        // sorted by Key
//	Tasks           []TaskStatus           // sorted by Key
//	CustomResources []CustomResourceStatus // sorted by Key
type Status = messages.Status

// ProcessStatus describes one tracked process. It is
// [messages.ProcessStatus] (an alias), with the fields
//
//	Key          string
//	PID          int       // the OS process id
//	State        State     // StateRunning, StateStopping or StateExited
//	RegisteredAt time.Time
//	ExitCode     int       // when StateExited: the exit code, -1 if a signal ended it
type ProcessStatus = messages.ProcessStatus

// TaskStatus describes one tracked task. It is [messages.TaskStatus] (an
// alias), with the fields
//
//	Key          string
//	State        State     // StateRunning, StateStopping or StateExited (fn returned)
//	RegisteredAt time.Time
//	Err          error     // fn's result once StateExited
type TaskStatus = messages.TaskStatus

// CustomResourceStatus describes one tracked custom resource. It is
// [messages.CustomResourceStatus] (an alias), with the fields
//
//	Key          string
//	Type         string    // the resource's Go type as fmt's %T prints it
//	State        State     // StateRunning (held) or StateStopping (cleanup running)
//	RegisteredAt time.Time
type CustomResourceStatus = messages.CustomResourceStatus

// State is where a resource is in its life. It is [messages.State] (an
// alias), an int whose values are the constants StateRunning, StateStopping
// and StateExited; its String method gives "running", "stopping" or
// "exited".
type State = messages.State

// The states: StateRunning (the zero value) for a process or task that runs
// or a custom resource that is held; StateStopping while a stop, cancel or
// cleanup is in progress; StateExited for a process that exited or a task
// that returned on its own, still registered.
const (
	StateRunning  = messages.StateRunning
	StateStopping = messages.StateStopping
	StateExited   = messages.StateExited
)

// Event is one thing that happened to a tracked resource, as [WithEventHook]
// and subscribers ([messages.Subscribe]) get it. It is [messages.Event] (an
// alias), with the fields
//
//	Kind     Kind      // KindProcess, KindTask or KindCustomResource
//	Key      string
//	Type     EventType // EventRegistered, EventExited, EventStopped, EventUnregistered or EventFailed
//	At       time.Time
//	PID      int       // processes: the OS process id
//	ExitCode int       // EventExited of a process: the exit code, -1 if a signal ended it
//	Err      error     // EventExited of a task: its result; EventFailed: the failure
type Event = messages.Event

// EventType says what happened. It is [messages.EventType] (an alias), an
// int whose values are the constants EventRegistered, EventExited,
// EventStopped, EventUnregistered and EventFailed; its String method gives
// the name without "Event", in lower case ("registered", "exited", ...).
type EventType = messages.EventType

// The event types. Every registration gets EventRegistered first and, at its
// end, exactly one of EventStopped, EventFailed or EventUnregistered;
// EventExited may come in between.
const (
	EventRegistered   = messages.EventRegistered   // the resource is now tracked
	EventExited       = messages.EventExited       // a process exited or a task returned on its own
	EventStopped      = messages.EventStopped      // stopped, cancelled or cleaned up by the manager
	EventUnregistered = messages.EventUnregistered // handed back to the caller
	EventFailed       = messages.EventFailed       // a stop, cancel or cleanup failed; Err says why
)
