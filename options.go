package resman

import (
	"log/slog"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.opentelemetry.io/otel/metric"

	"github.com/resman-dev/resman/internal/output"
)

// Option configures New, Props and their supervisor.
type Option func(*config)

type config struct {
	system  *actor.ActorSystem
	logger  *slog.Logger
	timeout time.Duration
	name    string
	hook    func(Event)
	output  *func(OutputLine)   // WithOutputHook's, if given (a nil func is refused)
	bytes   func(*output.Batch) // hooks.OutputBytes's (the resman command's printer)
	cgroup  string
	reaper  bool
	meter   *metric.MeterProvider // WithMeterProvider's, if given (a nil provider is refused)
}

// DefaultTimeout is the grace period of stops, cancels and cleanups when
// neither WithDefaultTimeout nor WithTimeout says otherwise.
const DefaultTimeout = 5 * time.Second

func newConfig(opts []Option) *config {
	c := &config{timeout: DefaultTimeout}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// WithActorSystem runs the supervisor in system instead of an actor system
// of the manager's own. Shutdown then leaves system running.
func WithActorSystem(system *actor.ActorSystem) Option {
	return func(c *config) { c.system = system }
}

// WithLogger sends the library's logs, and protoactor's when the manager owns
// the actor system, to logger. The default is silent.
func WithLogger(logger *slog.Logger) Option {
	return func(c *config) { c.logger = logger }
}

// WithDefaultTimeout sets the grace period of stops, cancels and cleanups
// (default 5s). It must be positive.
func WithDefaultTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithName gives the supervisor a well-known name in its actor system; by
// default the name is unique, with the prefix "resman".
func WithName(name string) Option {
	return func(c *config) { c.name = name }
}

// WithEventHook calls hook for every event, in order, on a goroutine of the
// supervisor's (never the supervisor's own): a slow hook delays later events,
// not the manager, and never Shutdown's return. The hook may call any
// Manager method, Shutdown and Close included. After Shutdown, wait for
// [Manager.Done] to know the hook has seen the last event.
func WithEventHook(hook func(Event)) Option {
	return func(c *config) { c.hook = hook }
}

// WithOutputHook calls hook for every output line of every supervised
// process, in order per process, on a goroutine of that process's output
// (never the supervisor's). A slow hook never slows the process: its
// oldest lines are dropped meanwhile (ProcessStatus.DroppedLines counts
// them). WaitProcess and StopProcess return once the hook has had the
// run's last lines, or after at most 2 s when the hook is slow or a stray
// descendant still holds the output open. A nil hook is ErrInvalid.
func WithOutputHook(hook func(OutputLine)) Option {
	return func(c *config) { c.output = &hook }
}

// WithCgroup puts each process that StartProcess starts into a cgroup v2 of
// its own below dir (named p<host pid>-<n>), at clone time, so that a stop
// also reaches descendants that left the process group with setsid or a
// double fork: it signals every member of the cgroup, then writes
// cgroup.kill. dir is created if missing; New fails when it is not on a
// writable cgroup v2 hierarchy with cgroup.kill (Linux 5.14 or later).
// RegisterProcess puts nothing in a cgroup.
//
// What holds: setsid, setpgid and forking do not take a process out of its
// cgroup. Writing its PID to another cgroup's cgroup.procs does, and the
// kernel lets a process do that when it may write that file and the
// cgroup.procs of the common ancestor: a descendant running as root can, and
// so can one running as the user dir's subtree is delegated to (an
// unprivileged host's own user); one running as another unprivileged user,
// without write access to those files, cannot. A descendant that left is
// out of reach of stops and of the host-death watcher.
//
// A stop removes the process's cgroup once it is empty; dir is never
// removed. If the host dies, even by SIGKILL, the host-death watcher writes
// cgroup.kill in every tracked cgroup but removes nothing: dir and the
// per-process cgroups remain, empty, and no later New sweeps them. Whoever
// owns dir removes them (rmdir each empty child, then dir), and should
// before reusing dir: a later host with the same PID (PID 1 in a container,
// say) cannot start a process while a cgroup of the name it picks is there.
func WithCgroup(dir string) Option {
	return func(c *config) { c.cgroup = dir }
}

// WithSubreaper makes the program a child subreaper (Linux's
// PR_SET_CHILD_SUBREAPER), so that the orphans of the process trees it
// tracks become its children instead of PID 1's, and the manager reaps
// them: when a stopped or exited tree is gone, nothing of it is left, not
// even a zombie, whatever PID 1 does. Use it in a Go program that is PID 1
// (a container's init: every orphan comes to it anyway, and nothing else
// reaps them) or one that starts children that daemonise or leave
// background processes behind.
//
// A zombie is reaped only if it belongs to a tracked tree: its process
// group is a tracked process's (StartProcess gives each one) or its cgroup
// is (WithCgroup; that catches orphans that left the group with setsid).
// resman never waits for any child (wait(-1)), so a process that other code
// in the program started keeps its exit status for that code's cmd.Wait,
// unless that code put it into a tracked process's group or cgroup on
// purpose. Orphans of trees resman does not track (unregistered ones
// included) also come to the program and are left alone: they stay zombies
// until the program exits. The setting is process-wide and stays for the
// life of the program.
func WithSubreaper() Option {
	return func(c *config) { c.reaper = true }
}

// StopOption configures one stop, cancel or cleanup.
type StopOption func(*stopConfig)

type stopConfig struct {
	timeout time.Duration
	signal  syscall.Signal
}

// WithTimeout sets this call's grace period: for StopProcess, how long the
// process (and what is left of its group or cgroup) has after the first
// signal before SIGKILL; for CancelTask, how long fn has to return; for
// CleanupCustomResource, the deadline of the cleanup's context. Zero, like
// no WithTimeout, means the manager's default grace period
// (WithDefaultTimeout, else DefaultTimeout); a negative one is ErrInvalid. A
// stop that finds the same resource already stopping waits for that stop,
// whose settings apply.
func WithTimeout(d time.Duration) StopOption {
	return func(c *stopConfig) { c.timeout = d }
}

// WithSignal sets the first signal StopProcess sends. Zero, like no
// WithSignal, means SIGTERM; SIGKILL kills at once, without a grace period;
// a negative signal or one above 64 (SIGRTMAX) is ErrInvalid. CancelTask and
// CleanupCustomResource ignore it.
func WithSignal(sig syscall.Signal) StopOption {
	return func(c *stopConfig) { c.signal = sig }
}

func stopConfigOf(opts []StopOption) stopConfig {
	var c stopConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}
