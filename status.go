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
//	State        State     // StateRunning, StateStopping, StateExited, StateStarting, StateRestarting or StateFailed
//	RegisteredAt time.Time
//	ExitCode     int       // when StateExited (the last run's while restarting or failed): the exit code, -1 if a signal ended it
//	Restarts     int       // runs started after the first
//	LastExit     time.Time // when the last run ended; zero if none has
//	DependsOn    []Ref     // what it depends on (DependsOn)
//	DroppedLines int       // supervised: output lines that never reached a consumer (a slow one)
type ProcessStatus = messages.ProcessStatus

// TaskStatus describes one tracked task. It is [messages.TaskStatus] (an
// alias), with the fields
//
//	Key          string
//	State        State     // StateRunning, StateStopping, StateExited (fn returned), StateStarting, StateRestarting or StateFailed
//	RegisteredAt time.Time
//	Err          error     // fn's result once StateExited (the last run's while restarting or failed)
//	Restarts     int       // runs started after the first
//	LastExit     time.Time // when the last run ended; zero if none has
//	DependsOn    []Ref     // what it depends on (DependsOn)
type TaskStatus = messages.TaskStatus

// CustomResourceStatus describes one tracked custom resource. It is
// [messages.CustomResourceStatus] (an alias), with the fields
//
//	Key          string
//	Type         string    // the resource's Go type as fmt's %T prints it
//	State        State     // StateRunning (held) or StateStopping (cleanup running)
//	RegisteredAt time.Time
//	DependsOn    []Ref     // what it depends on (DependsOn)
type CustomResourceStatus = messages.CustomResourceStatus

// State is where a resource is in its life. It is [messages.State] (an
// alias), an int whose values are the constants StateRunning, StateStopping,
// StateExited, StateStarting, StateRestarting and StateFailed; its String
// method gives "running", "stopping", "exited", "starting", "restarting" or
// "failed".
type State = messages.State

// The states: StateRunning (the zero value) for a process or task that runs
// or a custom resource that is held; StateStopping while a stop, cancel or
// cleanup is in progress; StateExited for a process that exited or a task
// that returned on its own, still registered.
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

// Event is one thing that happened to a tracked resource, as [WithEventHook]
// and subscribers ([messages.Subscribe]) get it. It is [messages.Event] (an
// alias), with the fields
//
//	Kind     Kind      // KindProcess, KindTask or KindCustomResource
//	Key      string
//	Type     EventType     // EventRegistered, EventExited, EventStopped, EventUnregistered, EventFailed, EventReady, EventRestarting, EventRestarted or EventGaveUp
//	At       time.Time
//	PID      int           // processes: the OS process id
//	ExitCode int           // EventExited of a process: the exit code, -1 if a signal ended it
//	Err      error         // EventExited of a task: its result; EventFailed, EventGaveUp: the failure
//	Delay    time.Duration // EventRestarting: the wait before the next run
//	Restarts int           // the resource's restart count when the event happened
type Event = messages.Event

// EventType says what happened. It is [messages.EventType] (an alias), an
// int whose values are the constants EventRegistered, EventExited,
// EventStopped, EventUnregistered, EventFailed, EventReady, EventRestarting,
// EventRestarted and EventGaveUp; its String method gives the name without
// "Event", in lower case with a hyphen between words ("registered",
// "gave-up", ...).
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
	// Supervision's events. A restart is never Registered, Stopped or
	// Unregistered: one registration spans all its runs.
	EventReady      = messages.EventReady      // a run passed its ready check
	EventRestarting = messages.EventRestarting // a restart is scheduled after Delay
	EventRestarted  = messages.EventRestarted  // a new run started (PID)
	EventGaveUp     = messages.EventGaveUp     // no more restarts: Err wraps ErrRestartLimit
)
