package resman

import (
	"syscall"
	"time"

	"github.com/resman-dev/resman/messages"
)

// ProcessSpec is how to make each run of a supervised process. It is
// [messages.ProcessSpec] (an alias), with the fields
//
//	Command []string // argv; Command[0] is looked up in PATH at each start, as exec.Command does
//	Env     []string // KEY=VALUE added to the host's environment (later entries win)
//	Dir     string   // working directory; "" is the host's
type ProcessSpec = messages.ProcessSpec

// RestartPolicy says when and how fast a supervised process or task is
// restarted: Mode; Backoff (default 100ms) before the first restart,
// doubling per consecutive failure up to MaxBackoff (default 30s), times a
// jitter factor in [1, 1.2); a run that lasted ResetAfter (default 60s)
// resets the delay; with MaxRestarts > 0, a restart that would be the
// (MaxRestarts+1)-th within Window (default 60s) is not made: the resource
// stays registered in StateFailed, EventGaveUp is published and waiters get
// ErrRestartLimit. See [messages.RestartPolicy].
type RestartPolicy = messages.RestartPolicy

// RestartMode says which ends of a run are followed by another run. It is
// [messages.RestartMode] (an alias), an int whose values are the constants
// RestartNever, RestartOnFailure and RestartAlways; its String method gives
// "never", "on-failure" or "always".
type RestartMode = messages.RestartMode

// The restart modes. A run succeeded when a process exited with code 0 or a
// task returned nil; anything else is a failure, an external SIGKILL
// included. A run that resman ended (a stop, cancel, CleanupAll, Shutdown,
// a parent actor's stop) is never restarted.
const (
	RestartNever     = messages.RestartNever     // the zero value: no run is restarted
	RestartOnFailure = messages.RestartOnFailure // failed runs are restarted
	RestartAlways    = messages.RestartAlways    // every run that ends on its own is restarted
)

// ReadyCheck says when a run is ready: exactly one of TCP (host:port
// accepts a connection), HTTP (a GET answers 2xx), Output (an output line
// matches the regexp; Supervise only) or Func (returns nil); polled every
// Interval (default 100ms) for up to Timeout (default 30s). See
// [messages.ReadyCheck].
type ReadyCheck = messages.ReadyCheck

// Ref names a resource, as DependsOn does. It is [messages.Ref] (an alias),
// with the fields
//
//	Kind Kind
//	Key  string
type Ref = messages.Ref

// OutputLine is one line a supervised process wrote. It is
// [messages.OutputLine] (an alias), with the fields
//
//	Key       string
//	PID       int
//	Stream    string    // "stdout" or "stderr"
//	Text      string    // without the '\n' (and a '\r' before it)
//	At        time.Time
//	Truncated bool      // the line was over 64 KiB: this is its first 64 KiB, the rest follows as another line
type OutputLine = messages.OutputLine

// ResourceOption configures one registration: the registration methods take
// them as a trailing variadic. An option that does not apply to that kind
// of registration gives ErrInvalid, and nothing is tracked.
type ResourceOption func(*messages.Lifecycle)

// WithRestart restarts the resource's runs by p: Supervise and Go only (a
// cmd or a Task cannot run twice; elsewhere ErrInvalid).
func WithRestart(p RestartPolicy) ResourceOption {
	return func(l *messages.Lifecycle) { l.Restart = &p }
}

// DependsOn makes the resource depend on the named resources of kind, which
// must be registered already (else ErrInvalid naming the missing one). A
// dependent starts after its process dependencies passed their ready
// checks, and ends before them: CleanupAll, Shutdown and a parent actor's
// stop end dependents first; stopping a resource stops its dependents
// first; unregistering a resource others depend on is ErrInvalid. It may be
// given several times.
func DependsOn(kind Kind, keys ...string) ResourceOption {
	return func(l *messages.Lifecycle) {
		for _, k := range keys {
			l.DependsOn = append(l.DependsOn, Ref{Kind: kind, Key: k})
		}
	}
}

// WithStopSignal sets the first signal of every stop of this process
// (postgres wants SIGINT for a fast shutdown, nginx SIGQUIT), CleanupAll's
// included; a call's WithSignal overrides it. Processes only; 0 means
// SIGTERM.
func WithStopSignal(sig syscall.Signal) ResourceOption {
	return func(l *messages.Lifecycle) { l.StopSignal = sig }
}

// WithGracePeriod sets this resource's grace period for every stop, cancel
// or cleanup, CleanupAll's included; a call's WithTimeout overrides it. 0
// means the manager's default.
func WithGracePeriod(d time.Duration) ResourceOption {
	return func(l *messages.Lifecycle) { l.Grace = d }
}

// WithReady makes a start wait for c: Supervise, StartProcess and Go (an
// Output check needs Supervise's captured output; elsewhere ErrInvalid). A
// run that does not pass within c.Timeout is stopped (a task cancelled),
// nothing stays tracked, and the call returns an error wrapping ErrTimeout.
// Restarted runs are checked too; one that fails its check is a failed run.
func WithReady(c ReadyCheck) ResourceOption {
	return func(l *messages.Lifecycle) { l.Ready = &c }
}

func lifecycleOf(opts []ResourceOption) messages.Lifecycle {
	var l messages.Lifecycle
	for _, o := range opts {
		if o != nil {
			o(&l)
		}
	}
	return l
}
