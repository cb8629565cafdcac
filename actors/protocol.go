// Package actors holds resman's child actors: one per tracked resource. A
// child owns its resource: it signals, waits, cancels and runs the cleanup
// function, always in a goroutine of its own so that no Receive blocks.
// Those goroutines report to the child by message, and the child reports
// to its parent, the supervisor, with the messages in this file. A task's
// own goroutine is not the child's: the supervisor watches its return on
// its own (TaskReg), and the child, once it ends the task, hears of its
// return by message.
//
// Users who spawn resman's supervisor under their own actor never need this
// package; it is exported for the supervisor package.
package actors

import (
	"log/slog"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/messages"
)

// EndMode says how a registration ends.
type EndMode int

const (
	// EndStop stops a process, cancels a task or runs a cleanup function.
	EndStop EndMode = iota
	// EndRelease hands the resource back to the caller untouched.
	EndRelease
)

// End asks a child to end its resource. The supervisor sends at most one per
// registration; a child also ends its resource itself (EndStop, default
// grace period) when it is stopped, so that stopping an actor tree cleans up.
type End struct {
	H       *Handle // the registration meant; nil: the child's current one
	Mode    EndMode
	Timeout time.Duration  // grace period; zero: the default
	Signal  syscall.Signal // processes: the first signal; zero: SIGTERM
	// Swept: the sweep that sent it (a CleanupAll's, with the default grace
	// period; Timeout is zero) tells the child when that period is over
	// (Child.Lapse), so that a task needs no timer of its own.
	Swept bool
}

// grace is the end's grace period: the request's, else the registration's
// own (zero: the manager's default).
func (e *End) grace(lc messages.Lifecycle) time.Duration {
	if e.Timeout > 0 {
		return e.Timeout
	}
	return lc.Grace
}

// signal is the end's first signal: the request's, else the registration's
// own (zero: SIGTERM).
func (e *End) signal(lc messages.Lifecycle) syscall.Signal {
	if e.Signal != 0 {
		return e.Signal
	}
	return lc.StopSignal
}

// Ended is a registration's final outcome. The child sends it in Done, and
// keeps it in the Handle for the one case Done cannot cover: protoactor
// delivers a stopped child's Terminated ahead of its earlier messages.
type Ended struct {
	Mode     EndMode
	Err      error            // the reason, not yet wrapped in a *ResourceError
	Cmd      *exec.Cmd        // process, EndRelease
	State    *os.ProcessState // process: the reaped state, if it was reaped
	Task     *messages.Task   // task, EndRelease
	Resource any              // custom resource, EndRelease
}

// Done reports that a registration has ended, with its outcome.
type Done struct {
	H   *Handle
	Out *Ended
}

// Exited reports that a process exited or a task returned on its own. A
// process leader whose group outlives it is reported twice: at its exit
// (State nil), and once it is reaped.
type Exited struct {
	H        *Handle          // which registration
	State    *os.ProcessState // process, once reaped
	ExitCode int              // process: -1 if a signal ended it
	Err      error            // task: fn's result; a supervised run that could not start: why
	More     bool             // supervised: another run follows (a restart, or a give-up report)
	Restarts int              // supervised: the restart count
}

// Started reports the outcome of a start (StartProcess, Supervise, Go).
type Started struct {
	H     *Handle        // which registration
	PID   int            // process
	Task  *messages.Task // Go
	Ready bool           // its ready check passed
	Err   error
}

// Restarting reports that a supervised resource's next run is scheduled.
type Restarting struct {
	H        *Handle
	Delay    time.Duration
	Restarts int
}

// Restarted reports that a supervised resource's new run started.
type Restarted struct {
	H        *Handle
	PID      int // process
	Restarts int
	Starting bool // its ready check runs
}

// Ready reports that a restarted run passed its ready check.
type Ready struct {
	H *Handle
}

// GaveUp reports that a supervised resource reached its restart limit: it
// stays registered, failed.
type GaveUp struct {
	H        *Handle
	State    *os.ProcessState // process: the last run's
	Restarts int
	Err      error // wraps ErrRestartLimit
}

// RestartDone answers a Restart: the new run started (or why not).
type RestartDone struct {
	H   *Handle
	Err error
}

// Handle is what the supervisor and a child share about one registration.
type Handle struct {
	Kind  messages.Kind
	Key   string
	Owner any                     // the parent's record of the registration: only the parent touches it
	final atomic.Pointer[Ended]   // set once, by the child's Receive, before it reports Done
	start atomic.Pointer[Started] // set once, by the child, before it reports Started
}

// StartResult returns the outcome of a start (StartProcess, Go) once the
// child has one, else nil. protoactor delivers a child's Terminated ahead of
// its earlier user messages, so the supervisor may see a child gone before
// its Started message: it reads the outcome here.
func (h *Handle) StartResult() *Started { return h.start.Load() }

// Final returns the registration's outcome once the child has one, else nil.
// The child's Receive sets it before it reports Done, and before it can
// stop. The supervisor reads it only for a child whose Terminated came
// before its Done (and at its own Stopped): this is the one atomic the
// supervisor and a child share about an outcome. Which of several outcomes
// counts (a task's return, its grace period's end) the child decides in its
// Receive: the first it reads (Reg.conclude).
func (h *Handle) Final() *Ended {
	if e := h.final.Load(); e != abandoned {
		return e
	}
	return nil
}

// abandoned is the final value of a registration whose start failed:
// nothing to end. Final reports nil for it.
var abandoned = &Ended{}

// Options configure a child.
type Options struct {
	DefaultTimeout time.Duration    // grace period when End.Timeout is zero
	Logger         *slog.Logger     // never nil after Spawn
	Dispatcher     actor.Dispatcher // runs the child's mailbox; nil: protoactor's default
}

func (o Options) timeout(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return o.DefaultTimeout
}
