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
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/messages"
	"github.com/resman-dev/resman/supervisor"
)

// Manager is the facade over a resman supervisor actor: each method is one
// request to it. A Manager is safe for concurrent use. Calls for different
// keys never wait for each other.
type Manager struct {
	system  *actor.ActorSystem
	pid     *actor.PID
	gone    <-chan struct{}     // closed when the supervisor has terminated
	replies *replies            // reply processes ready for the next request
	rt      *supervisor.Runtime // nil when attached: the spawner owns it
	owned   bool                // New created system: Shutdown shuts it down

	closed       atomic.Bool // Shutdown was called: refuse new work
	shutdownOnce sync.Once
	shutdownDone chan struct{} // closed when Shutdown's work is complete
	shutdownErr  error         // written before shutdownDone is closed
}

// New starts a supervisor and returns its Manager. Defaults: an actor system
// of its own (shut down by Shutdown) unless WithActorSystem; silent logs
// unless WithLogger; a 5s grace period unless WithDefaultTimeout; a unique
// supervisor name with the prefix "resman" unless WithName; no events unless
// WithEventHook; process groups, not cgroups, unless WithCgroup; orphans
// left to PID 1 unless WithSubreaper.
func New(opts ...Option) (*Manager, error) {
	cfg := newConfig(opts)
	props, rt, err := supervisorProps(cfg)
	if err != nil {
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
			return nil, fmt.Errorf("resman: new: supervisor name %q: %w", cfg.name, err)
		}
	} else {
		pid = system.Root.SpawnPrefix(props, "resman")
	}
	m := Attach(system, pid)
	m.rt, m.owned = rt, owned
	return m, nil
}

// supervisorConfig checks the options; its error is what New returns.
func supervisorConfig(cfg *config) (supervisor.Config, error) {
	scfg := supervisor.Config{DefaultTimeout: cfg.timeout, Logger: cfg.logger, EventHook: cfg.hook}
	if cfg.timeout <= 0 {
		return scfg, fmt.Errorf("%w: default timeout %v must be positive", ErrInvalid, cfg.timeout)
	}
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
	return &Manager{
		system:       system,
		pid:          pid,
		gone:         watchSupervisor(system, pid),
		replies:      &replies{system: system},
		shutdownDone: make(chan struct{}),
	}
}

// PID is the supervisor's: actors send it the messages package's requests.
func (m *Manager) PID() *actor.PID { return m.pid }

// call sends req and returns the typed reply; transport failures (a closed
// manager, the caller's context) come back as a *ResourceError.
func call[R any](m *Manager, ctx context.Context, kind Kind, key, op string, req any) (R, error) {
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
	r, ok := resp.(R)
	if !ok {
		return zero, messages.NewError(kind, key, op, fmt.Errorf("unexpected reply %T", resp))
	}
	return r, nil
}

// RegisterProcess tracks cmd, which must be started and not yet waited. From
// then on the manager reaps it when it exits; do not call cmd.Wait while it
// is registered. If cmd.WaitDelay is zero it is set to the default grace
// period, so that a grandchild holding an output pipe cannot hang the reap.
func (m *Manager) RegisterProcess(ctx context.Context, key string, cmd *exec.Cmd) error {
	r, err := call[*messages.RegisterProcessResponse](m, ctx, KindProcess, key, "register", &messages.RegisterProcess{Key: key, Cmd: cmd})
	if err != nil {
		return err
	}
	return r.Err
}

// StartProcess starts cmd, which must not be started yet, and registers it,
// atomically: if key is taken, cmd is not started. Unless cmd.SysProcAttr is
// set, cmd gets its own process group (so a stop reaches its whole tree) and
// a parent-death SIGKILL.
func (m *Manager) StartProcess(ctx context.Context, key string, cmd *exec.Cmd) error {
	r, err := call[*messages.StartProcessResponse](m, ctx, KindProcess, key, "start", &messages.StartProcess{Key: key, Cmd: cmd})
	if err != nil {
		return err
	}
	return r.Err
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
// joined with the stop's.
func (m *Manager) TrackProcess(ctx context.Context, key string, cmd *exec.Cmd, fn func(*exec.Cmd) error) error {
	if fn == nil {
		return messages.Invalid(KindProcess, key, "track", "nil function")
	}
	var err error
	if cmd != nil && cmd.Process == nil {
		err = m.StartProcess(ctx, key, cmd)
	} else {
		err = m.RegisterProcess(ctx, key, cmd)
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
func (m *Manager) RegisterTask(ctx context.Context, key string, task *Task) error {
	r, err := call[*messages.RegisterTaskResponse](m, ctx, KindTask, key, "register", &messages.RegisterTask{Key: key, Task: task})
	if err != nil {
		return err
	}
	return r.Err
}

// Go is StartTask and RegisterTask, atomically: if key is taken, fn never
// runs. fn's context keeps ctx's values, not its cancellation.
func (m *Manager) Go(ctx context.Context, key string, fn func(ctx context.Context) error) (*Task, error) {
	r, err := call[*messages.GoResponse](m, ctx, KindTask, key, "start", &messages.Go{Key: key, Context: orBackground(ctx), Fn: fn})
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
// running, and is logged with its key.
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
func (m *Manager) TrackTask(ctx context.Context, key string, task *Task, fn func(*Task) error) error {
	if fn == nil {
		return messages.Invalid(KindTask, key, "track", "nil function")
	}
	if err := m.RegisterTask(ctx, key, task); err != nil {
		return err
	}
	return track(func() error { return fn(task) }, func() error { return m.CancelTask(context.WithoutCancel(orBackground(ctx)), key) })
}

// RegisterCustomResource tracks resource; cleanup releases it.
func (m *Manager) RegisterCustomResource(ctx context.Context, key string, resource any, cleanup CleanupFunc) error {
	r, err := call[*messages.RegisterCustomResourceResponse](m, ctx, KindCustomResource, key, "register",
		&messages.RegisterCustomResource{Key: key, Resource: resource, Cleanup: cleanup})
	if err != nil {
		return err
	}
	return r.Err
}

// RegisterCloser tracks c; its cleanup is c.Close().
func (m *Manager) RegisterCloser(ctx context.Context, key string, c io.Closer) error {
	r, err := call[*messages.RegisterCloserResponse](m, ctx, KindCustomResource, key, "register", &messages.RegisterCloser{Key: key, Closer: c})
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
// cleanup's error (wrapped), ErrPanicked, or ErrTimeout.
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
func (m *Manager) TrackCustomResource(ctx context.Context, key string, resource any, cleanup CleanupFunc, fn func(any) error) error {
	if fn == nil {
		return messages.Invalid(KindCustomResource, key, "track", "nil function")
	}
	if err := m.RegisterCustomResource(ctx, key, resource, cleanup); err != nil {
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
// the shutdown goes on.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.shutdownOnce.Do(func() {
		m.closed.Store(true)
		go m.shutdown() // owned by the Manager; ends when the shutdown is complete
	})
	select {
	case <-m.shutdownDone:
		return m.shutdownErr
	case <-orBackground(ctx).Done():
		return fmt.Errorf("resman: shutdown: %w", ctx.Err())
	}
}

func (m *Manager) shutdown() {
	defer close(m.shutdownDone)
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
}

// Close is Shutdown(context.Background()), for defer and io.Closer.
func (m *Manager) Close() error { return m.Shutdown(context.Background()) }
