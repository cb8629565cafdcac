package messages

import (
	"context"
	"syscall"
	"time"
)

// ProcessSpec is how to make each run of a supervised process: plain data,
// so a Procfile line or a remote request can carry it.
type ProcessSpec struct {
	Command []string // argv; Command[0] is looked up in PATH at each start, as exec.Command does
	Env     []string // KEY=VALUE added to the host's environment for this process (later entries win)
	Dir     string   // working directory; "" is the host's
}

// RestartMode says which ends of a run are followed by another run.
type RestartMode int

// The restart modes.
const (
	RestartNever     RestartMode = iota // no run is restarted (the zero value)
	RestartOnFailure                    // a failed run is restarted: a non-zero exit, a signal resman did not send, a task's error or panic
	RestartAlways                       // every run that ends on its own is restarted
)

// String returns "never", "on-failure" or "always".
func (m RestartMode) String() string {
	switch m {
	case RestartNever:
		return "never"
	case RestartOnFailure:
		return "on-failure"
	case RestartAlways:
		return "always"
	default:
		return "unknown"
	}
}

// RestartPolicy says when and how fast a supervised process or task is
// restarted. Zero durations mean the defaults.
type RestartPolicy struct {
	Mode        RestartMode
	Backoff     time.Duration // delay before the first restart; default 100ms
	MaxBackoff  time.Duration // the delay doubles per consecutive failure up to this; default 30s
	ResetAfter  time.Duration // a run that lasts this long resets the delay; default 60s
	MaxRestarts int           // give up after more than MaxRestarts restarts within Window; 0: never give up
	Window      time.Duration // default 60s
}

// The restart policy's defaults.
const (
	DefaultBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	DefaultResetAfter = 60 * time.Second
	DefaultWindow     = 60 * time.Second
)

// ReadyCheck says when a run is ready. Exactly one target is set.
type ReadyCheck struct {
	TCP      string                          // ready when host:port accepts a connection
	HTTP     string                          // ready when a GET of this URL answers 2xx
	Output   string                          // ready when an output line matches this regexp (Supervise)
	Func     func(ctx context.Context) error // ready when it returns nil
	Timeout  time.Duration                   // default 30s
	Interval time.Duration                   // between polls; default 100ms
}

// The ready check's defaults.
const (
	DefaultReadyTimeout  = 30 * time.Second
	DefaultReadyInterval = 100 * time.Millisecond
)

// Ref names a resource: its kind and key.
type Ref struct {
	Kind Kind
	Key  string
}

// Lifecycle is what a registration's options say beyond the resource itself.
// The zero value is the seed's semantics: no restart, no dependency, the
// manager's default grace period and SIGTERM.
type Lifecycle struct {
	Restart    *RestartPolicy // Supervise and Go only
	DependsOn  []Ref          // each must be registered when the dependent registers
	StopSignal syscall.Signal // processes: the first signal of every stop; 0: SIGTERM
	Grace      time.Duration  // this resource's grace period; 0: the manager's default
	Ready      *ReadyCheck    // Supervise, StartProcess and Go
}

// OutputLine is one line a supervised process wrote.
type OutputLine struct {
	Key       string
	PID       int
	Stream    string // "stdout" or "stderr"
	Text      string // without the '\n' (and a '\r' before it)
	At        time.Time
	Truncated bool // the line was over 64 KiB: this is its first 64 KiB, and the rest follows as another line
}
