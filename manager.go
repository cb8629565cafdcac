package resman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/internal/hooks"
	"github.com/resman-dev/resman/internal/output"
	"github.com/resman-dev/resman/messages"
	"github.com/resman-dev/resman/supervisor"
)

// Manager is the facade over a resman supervisor actor: each method is one
// request to it. A Manager is safe for concurrent use. Calls for different
// keys never wait for each other.
type Manager struct {
	system  *actor.ActorSystem
	pid     *actor.PID
	sup     actor.Process       // the supervisor's process: see post
	gone    <-chan struct{}     // closed when the supervisor has terminated
	replies replySource         // a reply process per request
	rt      *supervisor.Runtime // nil when attached: the spawner owns it
	owned   bool                // New created system: Shutdown shuts it down
	cgroup  string              // WithCgroup's dir, "" if none
	metrics *metrics            // WithMeterProvider's instruments; nil: none

	closed       atomic.Bool // Shutdown was called: refuse new work
	shutdownOnce sync.Once
	shutdownDone chan struct{} // closed when Shutdown's work is complete
	shutdownErr  error         // written before shutdownDone is closed
	done         chan struct{} // closed after shutdownDone, once the last event was delivered
}

// New starts a supervisor and returns its Manager. Defaults: an actor system
// of its own (shut down by Shutdown) unless WithActorSystem; silent logs
// unless WithLogger; a 5s grace period unless WithDefaultTimeout; a unique
// supervisor name with the prefix "resman" unless WithName; no events unless
// WithEventHook; process groups, not cgroups, unless WithCgroup; orphans
// left to PID 1 unless WithSubreaper; no metrics unless WithMeterProvider.
func New(opts ...Option) (*Manager, error) {
	cfg := newConfig(opts)
	mt, err := newMetrics(cfg) // before the supervisor's config: it counts restarts in the event hook
	if err != nil {
		return nil, err
	}
	props, rt, err := supervisorProps(cfg)
	if err != nil {
		mt.close()
		return nil, err
	}
	system, owned := cfg.system, false
	if system == nil {
		owned = true
		logger := cfg.logger
		system = actor.NewActorSystem(
			actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }),
			actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
		)
	}
	var pid *actor.PID
	if cfg.name != "" {
		pid, err = system.Root.SpawnNamed(props, cfg.name)
		if err != nil {
			if owned {
				system.Shutdown()
			}
			mt.close()
			return nil, fmt.Errorf("resman: new: supervisor name %q: %w", cfg.name, err)
		}
	} else {
		pid = system.Root.SpawnPrefix(props, "resman")
	}
	m := Attach(system, pid)
	m.rt, m.owned = rt, owned
	if scfg := rt.Config(); scfg.Cgroup != nil {
		m.cgroup = scfg.Cgroup.Dir()
	}
	if mt != nil {
		m.metrics = mt
		mt.m.Store(m)
	}
	return m, nil
}

// supervisorConfig checks the options; its error is what New returns.
func supervisorConfig(cfg *config) (supervisor.Config, error) {
	scfg := supervisor.Config{DefaultTimeout: cfg.timeout, Logger: cfg.logger, EventHook: cfg.hook}
	if cfg.timeout <= 0 {
		return scfg, fmt.Errorf("%w: default timeout %v must be positive", ErrInvalid, cfg.timeout)
	}
	if cfg.output != nil {
		if *cfg.output == nil {
			return scfg, fmt.Errorf("%w: nil output hook", ErrInvalid)
		}
		scfg.OutputHook = *cfg.output
	}
	scfg.OutputBytes = cfg.bytes
	if cfg.cgroup != "" {
		cg, err := supervisor.OpenCgroupRoot(cfg.cgroup)
		if err != nil {
			return scfg, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		scfg.Cgroup = cg
	}
	if cfg.reaper {
		if err := supervisor.BecomeSubreaper(); err != nil {
			return scfg, fmt.Errorf("%w: subreaper: %v", ErrInvalid, err)
		}
		scfg.Subreaper = true
	}
	return scfg, nil
}

func supervisorProps(cfg *config) (*actor.Props, *supervisor.Runtime, error) {
	scfg, err := supervisorConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("resman: new: %w", err)
	}
	props, rt := supervisor.Props(scfg)
	return props, rt, nil
}

func init() {
	hooks.CgroupRoot = func(m any) string { return m.(*Manager).cgroup }
	hooks.ActorSystem = func(m any) *actor.ActorSystem { return m.(*Manager).system }
	hooks.OutputBytes = func(fn func(*output.Batch)) any { return Option(func(c *config) { c.bytes = fn }) }
	hooks.StopSettings = func(opts any) (time.Duration, syscall.Signal) {
		c := stopConfigOf(opts.([]StopOption))
		return c.timeout, c.signal
	}
}

// Props returns the supervisor's props, to spawn under an actor of your own;
// Attach then gives a Manager over it. Stopping any ancestor cleans up
// everything the supervisor tracks before it reports Stopped. Call Props once
// per spawn. WithActorSystem and WithName do not apply. Options New would
// refuse (a non-positive timeout, an unusable cgroup dir) give a supervisor
// that refuses every registration with that error, wrapping ErrInvalid.
func Props(opts ...Option) *actor.Props {
	scfg, err := supervisorConfig(newConfig(opts))
	if err != nil {
		scfg.DefaultTimeout = DefaultTimeout
		scfg.Refuse = err
	}
	props, _ := supervisor.Props(scfg)
	return props
}

// Attach returns a Manager over a supervisor spawned from Props. Its
// Shutdown cleans up and stops that supervisor, not the actor system.
func Attach(system *actor.ActorSystem, pid *actor.PID) *Manager {
	gone, sup := watchSupervisor(system, pid)
	return &Manager{
		system:       system,
		pid:          pid,
		sup:          sup,
		gone:         gone,
		replies:      &replies{system: system},
		shutdownDone: make(chan struct{}),
		done:         make(chan struct{}),
	}
}

// PID is the supervisor's: actors send it the messages package's requests.
func (m *Manager) PID() *actor.PID { return m.pid }

// call sends req and returns the typed reply; transport failures (a closed
// manager, the caller's context) come back as a *ResourceError. With
// WithMeterProvider it counts and times the operation (metrics.go).
func call[R any](m *Manager, ctx context.Context, kind Kind, key, op string, req any) (r R, err error) {
	if m.metrics != nil {
		defer func(start time.Time) {
			failure := err
			if failure == nil {
				failure = replyErr(r)
			}
			m.metrics.record(kind, op, start, failure)
		}(time.Now())
	}
	var zero R
	if ctx == nil {
		ctx = context.Background()
	}
	if m.closed.Load() {
		return zero, messages.NewError(kind, key, op, ErrClosed)
	}
	resp, err := m.request(ctx, req)
	if err != nil {
		return zero, messages.NewError(kind, key, op, err)
	}
	reply, ok := resp.(R)
	if !ok {
		return zero, messages.NewError(kind, key, op, fmt.Errorf("unexpected reply %T", resp))
	}
	return reply, nil
}

// RegisterProcess tracks cmd, which must be started, not yet waited, and a
// child of this program (a Process from os.FindProcess is ErrInvalid: it
// can be neither reaped nor told apart from a stranger). From
// then on the manager reaps it when it exits; do not call cmd.Wait while it
// is registered. If cmd.WaitDelay is zero it is set to the default grace
// period, so that a grandchild holding an output pipe cannot hang the reap.
func (m *Manager) RegisterProcess(ctx context.Context, key string, cmd *exec.Cmd, opts ...ResourceOption) error {
	r, err := call[*messages.RegisterProcessResponse](m, ctx, KindProcess, key, "register",
		&messages.RegisterProcess{Key: key, Cmd: cmd, Lifecycle: lifecycleOf(opts)})
	if err != nil {
		return err
	}
	return r.Err
}

// StartProcess starts cmd, which must not be started yet, and registers it,
// atomically: if key is taken, cmd is not started. Unless cmd.SysProcAttr is
// set, cmd gets its own process group (so a stop reaches its whole tree) and
// a parent-death SIGKILL.
func (m *Manager) StartProcess(ctx context.Context, key string, cmd *exec.Cmd, opts ...ResourceOption) error {
	r, err := call[*messages.StartProcessResponse](m, ctx, KindProcess, key, "start",
		&messages.StartProcess{Key: key, Cmd: cmd, Lifecycle: lifecycleOf(opts)})
	if err != nil {
		return err
	}
	return r.Err
}

// Supervise starts spec's first run (its own process group, a cgroup with
// WithCgroup, a parent-death signal, stdout and stderr captured) and
// registers it in the processes namespace, atomically: on a taken key
// nothing starts. It returns once the run has started and, with WithReady,
// passed its ready check (if the check fails within its timeout the run is
// stopped, nothing stays tracked, and the error wraps ErrTimeout). A first
// start that fails is not retried. WithRestart says which ends of a run are
// followed by another. Every other process method applies to it; one
// registration spans all its runs.
func (m *Manager) Supervise(ctx context.Context, key string, spec ProcessSpec, opts ...ResourceOption) error {
	r, err := call[*messages.SuperviseResponse](m, ctx, KindProcess, key, "supervise",
		&messages.Supervise{Key: key, Spec: spec, Lifecycle: lifecycleOf(opts)})
	if err != nil {
		return err
	}
	return r.Err
}

// RestartProcess stops the current run of a supervised process (as
// StopProcess does, with its grace period and stop signal) and starts a new
// one at once, resetting its backoff; it does not count toward MaxRestarts,
// and it revives a process that gave up or exited. ErrInvalid for a process
// that Supervise did not start.
func (m *Manager) RestartProcess(ctx context.Context, key string) error {
	r, err := call[*messages.RestartProcessResponse](m, ctx, KindProcess, key, "restart", &messages.RestartProcess{Key: key})
	if err != nil {
		return err
	}
	return r.Err
}

// Tail returns the last n output lines (n > 0) of a supervised process,
// oldest first, across its runs: up to 1,000 lines and 1 MiB are kept per
// process. ErrInvalid for n ≤ 0 or a process that Supervise did not start;
// ErrNotRegistered for an unknown key.
func (m *Manager) Tail(ctx context.Context, key string, n int) ([]OutputLine, error) {
	r, err := call[*messages.TailResponse](m, ctx, KindProcess, key, "tail", &messages.Tail{Key: key, N: n})
	if err != nil {
		return nil, err
	}
	return r.Lines, r.Err
}

// UnregisterProcess stops tracking a process and hands its cmd back: if it
// still runs, cmd.Wait works as usual; if it exited, cmd.ProcessState is set.
func (m *Manager) UnregisterProcess(ctx context.Context, key string) (*exec.Cmd, error) {
	r, err := call[*messages.UnregisterProcessResponse](m, ctx, KindProcess, key, "unregister", &messages.UnregisterProcess{Key: key})
	if err != nil {
		return nil, err
	}
	return r.Cmd, r.Err
}

// StopProcess sends the signal (SIGTERM unless WithSignal) to the process
// group if the process leads its own group, else to the process alone; waits
// up to the grace period; then SIGKILLs the group, waits until none of it is
// left, reaps and unregisters it (always, even on error). A process that
// needed SIGKILL is a normal stop: nil. One that already exited is reaped
// and unregistered: nil. If ctx ends first StopProcess returns ctx's error at
// once; the stop still completes.
func (m *Manager) StopProcess(ctx context.Context, key string, opts ...StopOption) error {
	so := stopConfigOf(opts)
	r, err := call[*messages.StopProcessResponse](m, ctx, KindProcess, key, "stop",
		&messages.StopProcess{Key: key, Timeout: so.timeout, Signal: so.signal})
	if err != nil {
		return err
	}
	return r.Err
}

// WaitProcess blocks until the process exits or ctx ends; the process stays
// registered, as exited.
func (m *Manager) WaitProcess(ctx context.Context, key string) (*os.ProcessState, error) {
	r, err := call[*messages.WaitProcessResponse](m, ctx, KindProcess, key, "wait", &messages.WaitProcess{Key: key})
	if err != nil {
		return nil, err
	}
	return r.State, r.Err
}

// TrackProcess starts cmd if it is not started (as StartProcess does) or
// registers it, runs fn, then stops the process if it is still registered —
// also when fn panics, and then the panic goes on. It returns fn's error
// joined with the stop's. fn must not call cmd.Wait: the manager reaps the
// process, and a second Wait races with it (a data race on cmd). To wait for
// the exit, fn calls WaitProcess with key, which returns the process state.
func (m *Manager) TrackProcess(ctx context.Context, key string, cmd *exec.Cmd, fn func(*exec.Cmd) error, opts ...ResourceOption) error {
	if fn == nil {
		return messages.Invalid(KindProcess, key, "track", "nil function")
	}
	var err error
	if cmd != nil && cmd.Process == nil {
		err = m.StartProcess(ctx, key, cmd, opts...)
	} else {
		err = m.RegisterProcess(ctx, key, cmd, opts...)
	}
	if err != nil {
		return err
	}
	return track(func() error { return fn(cmd) }, func() error { return m.StopProcess(context.WithoutCancel(orBackground(ctx)), key) })
}

// track runs fn and then end, whatever fn does; end's ErrNotRegistered (fn
// already ended the resource itself) is no failure.
func track(fn, end func() error) (err error) {
	defer func() {
		endErr := end()
		if errors.Is(endErr, ErrNotRegistered) {
			endErr = nil
		}
		err = errors.Join(err, endErr)
	}()
	return fn()
}

func orBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

// RegisterTask tracks a task started with StartTask.
func (m *Manager) RegisterTask(ctx context.Context, key string, task *Task, opts ...ResourceOption) error {
	r, err := call[*messages.RegisterTaskResponse](m, ctx, KindTask, key, "register",
		&messages.RegisterTask{Key: key, Task: task, Lifecycle: lifecycleOf(opts)})
	if err != nil {
		return err
	}
	return r.Err
}

// Go is StartTask and RegisterTask, atomically: if key is taken, fn never
// runs. fn's context keeps ctx's values, not its cancellation. With
// WithRestart, fn is run again by the policy, and the Task stands for the
// whole supervision: Done closes when no restart will follow, Err is the
// last run's result, Cancel ends it (no run starts after a cancel).
func (m *Manager) Go(ctx context.Context, key string, fn func(ctx context.Context) error, opts ...ResourceOption) (*Task, error) {
	r, err := call[*messages.GoResponse](m, ctx, KindTask, key, "start",
		&messages.Go{Key: key, Context: orBackground(ctx), Fn: fn, Lifecycle: lifecycleOf(opts)})
	if err != nil {
		return nil, err
	}
	return r.Task, r.Err
}

// UnregisterTask stops tracking a task and hands it back, still running.
func (m *Manager) UnregisterTask(ctx context.Context, key string) (*Task, error) {
	r, err := call[*messages.UnregisterTaskResponse](m, ctx, KindTask, key, "unregister", &messages.UnregisterTask{Key: key})
	if err != nil {
		return nil, err
	}
	return r.Task, r.Err
}

// CancelTask cancels a task, waits up to the grace period for fn to return
// and unregisters it (always). It returns nil if fn returned in time,
// whatever fn returned, and ErrTimeout if not: the goroutine is still
// running, and is logged with its key. An fn that returns right at the
// deadline may be reported either way.
func (m *Manager) CancelTask(ctx context.Context, key string, opts ...StopOption) error {
	so := stopConfigOf(opts)
	r, err := call[*messages.CancelTaskResponse](m, ctx, KindTask, key, "cancel", &messages.CancelTask{Key: key, Timeout: so.timeout})
	if err != nil {
		return err
	}
	return r.Err
}

// TrackTask registers task, runs fn, then cancels the task if it is still
// registered — also when fn panics, and then the panic goes on. It returns
// fn's error joined with the cancel's.
func (m *Manager) TrackTask(ctx context.Context, key string, task *Task, fn func(*Task) error, opts ...ResourceOption) error {
	if fn == nil {
		return messages.Invalid(KindTask, key, "track", "nil function")
	}
	if err := m.RegisterTask(ctx, key, task, opts...); err != nil {
		return err
	}
	return track(func() error { return fn(task) }, func() error { return m.CancelTask(context.WithoutCancel(orBackground(ctx)), key) })
}

// RegisterCustomResource tracks resource; cleanup releases it.
func (m *Manager) RegisterCustomResource(ctx context.Context, key string, resource any, cleanup CleanupFunc, opts ...ResourceOption) error {
	r, err := call[*messages.RegisterCustomResourceResponse](m, ctx, KindCustomResource, key, "register",
		&messages.RegisterCustomResource{Key: key, Resource: resource, Cleanup: cleanup, Lifecycle: lifecycleOf(opts)})
	if err != nil {
		return err
	}
	return r.Err
}

// RegisterCloser tracks c; its cleanup is c.Close().
func (m *Manager) RegisterCloser(ctx context.Context, key string, c io.Closer, opts ...ResourceOption) error {
	r, err := call[*messages.RegisterCloserResponse](m, ctx, KindCustomResource, key, "register",
		&messages.RegisterCloser{Key: key, Closer: c, Lifecycle: lifecycleOf(opts)})
	if err != nil {
		return err
	}
	return r.Err
}

// UnregisterCustomResource stops tracking a resource, without cleaning it
// up, and hands it back.
func (m *Manager) UnregisterCustomResource(ctx context.Context, key string) (any, error) {
	r, err := call[*messages.UnregisterCustomResourceResponse](m, ctx, KindCustomResource, key, "unregister",
		&messages.UnregisterCustomResource{Key: key})
	if err != nil {
		return nil, err
	}
	return r.Resource, r.Err
}

// CleanupCustomResource calls the resource's cleanup with a context carrying
// the grace-period deadline and unregisters it (always). It returns the
// cleanup's error (wrapped), ErrPanicked, or ErrTimeout. ErrTimeout means the
// deadline passed before the cleanup returned: it is waited for no longer (it
// goes on running; what it returns later is dropped). So a cleanup that
// returns because its deadline passed (with ctx.Err()) is reported as
// ErrTimeout, not context.DeadlineExceeded, and one that returns at its
// deadline may be reported as ErrTimeout.
func (m *Manager) CleanupCustomResource(ctx context.Context, key string, opts ...StopOption) error {
	so := stopConfigOf(opts)
	r, err := call[*messages.CleanupCustomResourceResponse](m, ctx, KindCustomResource, key, "cleanup",
		&messages.CleanupCustomResource{Key: key, Timeout: so.timeout})
	if err != nil {
		return err
	}
	return r.Err
}

// TrackCustomResource registers resource, runs fn, then cleans it up if it
// is still registered — also when fn panics, and then the panic goes on. It
// returns fn's error joined with the cleanup's.
func (m *Manager) TrackCustomResource(ctx context.Context, key string, resource any, cleanup CleanupFunc, fn func(any) error, opts ...ResourceOption) error {
	if fn == nil {
		return messages.Invalid(KindCustomResource, key, "track", "nil function")
	}
	if err := m.RegisterCustomResource(ctx, key, resource, cleanup, opts...); err != nil {
		return err
	}
	return track(func() error { return fn(resource) },
		func() error { return m.CleanupCustomResource(context.WithoutCancel(orBackground(ctx)), key) })
}

// CleanupAll stops, cancels and cleans up everything tracked, concurrently,
// each with the default grace period: it takes about as long as the slowest
// one. It returns every failure (errors.Join of *ResourceError). The
// registry is empty after, and the manager stays usable.
func (m *Manager) CleanupAll(ctx context.Context) error {
	if m.closed.Load() {
		return fmt.Errorf("resman: cleanup all: %w", ErrClosed)
	}
	resp, err := m.request(orBackground(ctx), &messages.CleanupAll{})
	if err != nil {
		return fmt.Errorf("resman: cleanup all: %w", err)
	}
	return resp.(*messages.CleanupAllResponse).Err
}

// Status returns a snapshot of everything tracked, each slice sorted by key.
func (m *Manager) Status(ctx context.Context) (Status, error) {
	if m.closed.Load() {
		return Status{}, fmt.Errorf("resman: status: %w", ErrClosed)
	}
	resp, err := m.request(orBackground(ctx), &messages.GetStatus{})
	if err != nil {
		return Status{}, fmt.Errorf("resman: status: %w", err)
	}
	r := resp.(*messages.GetStatusResponse)
	return r.Status, r.Err
}

// Shutdown refuses new work (ErrClosed), cleans up everything as CleanupAll
// does, stops the supervisor and its children, and shuts the actor system
// down if New created it. It is idempotent: later calls wait for the first
// and return its result. If ctx ends first, Shutdown returns ctx's error and
// the shutdown goes on. It may be called from the event hook; it never waits
// for the hook (events still queued are delivered after it returns: Done
// tells when the last one was).
func (m *Manager) Shutdown(ctx context.Context) error {
	m.startShutdown()
	select {
	case <-m.shutdownDone:
		return m.shutdownErr
	case <-orBackground(ctx).Done():
		return fmt.Errorf("resman: shutdown: %w", ctx.Err())
	}
}

// startShutdown begins the shutdown, once; Shutdown and HandleSignals call it.
func (m *Manager) startShutdown() {
	m.shutdownOnce.Do(func() {
		m.closed.Store(true)
		go m.shutdown() // owned by the Manager; ends when the shutdown is complete
	})
}

func (m *Manager) shutdown() {
	resp, err := m.request(context.Background(), &messages.Shutdown{})
	switch {
	case errors.Is(err, ErrClosed): // the supervisor is already gone: nothing left to clean
	case err != nil:
		m.shutdownErr = fmt.Errorf("resman: shutdown: %w", err)
	default:
		m.shutdownErr = resp.(*messages.ShutdownResponse).Err
	}
	select {
	case <-m.gone:
	default:
		m.system.Root.Stop(m.pid)
		<-m.gone
	}
	m.replies.close()
	if m.rt != nil {
		m.rt.Wait()
	}
	if m.owned {
		m.system.Shutdown()
	}
	close(m.shutdownDone)
	if m.rt != nil {
		<-m.rt.EventsDelivered() // the hook may be the one that called Shutdown: wait here, not there
	}
	close(m.done)
}

// Close is Shutdown(context.Background()), for defer and io.Closer.
func (m *Manager) Close() error { return m.Shutdown(context.Background()) }

// Done is closed once Shutdown has finished, whoever called it, and (for a
// manager made by New) the event hook has returned from the last event. A
// program that wants every event delivered before it exits waits for it
// after Shutdown; the goroutine that delivers events has ended by then.
func (m *Manager) Done() <-chan struct{} { return m.done }
