package resman_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/messages"
)

// The Manager facade's own behaviour: what a call's error means when the
// caller gives up, what the event hook may do, requests that race the
// supervisor's stop, and the arguments the facade checks. The resources'
// behaviour has files of its own (process_test.go, task_test.go, ...).

// busy keeps m's supervisor busy: it fills the registry with n custom
// resources, then queues k large Status requests (with no sender: nobody
// waits for them). A request sent right after waits in the mailbox behind
// them, long enough for a short context to end first.
type busy struct {
	system *actor.ActorSystem
	m      *resman.Manager
}

func newBusy(t *testing.T, n int, opts ...resman.Option) *busy {
	t.Helper()
	system := newSystem(t)
	m, err := resman.New(append([]resman.Option{resman.WithActorSystem(system), resman.WithDefaultTimeout(time.Second)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Shutdown(context.Background())) })
	ctx := ctxT(t)
	for i := range n {
		require.NoError(t, m.RegisterCustomResource(ctx, fmt.Sprint("filler", i), i, noop))
	}
	return &busy{system: system, m: m}
}

func (b *busy) queue(k int) {
	for range k {
		b.system.Root.Send(b.m.PID(), &messages.GetStatus{})
	}
}

// short returns a context that ends as soon as the caller starts waiting
// for the reply: its Done channel closes the first time it is asked for,
// which the facade does only after it has posted the request. A busy
// supervisor cannot have answered by then, so the request is always in the
// mailbox when the caller gives up. (A timer, however short, may fire before
// the request is posted on a loaded machine: then nothing was sent, and
// there is nothing to undo.)
func short(*testing.T) context.Context { return &expiring{done: make(chan struct{})} }

type expiring struct {
	once sync.Once
	done chan struct{}
}

func (c *expiring) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *expiring) Value(any) any               { return nil }

func (c *expiring) Done() <-chan struct{} {
	c.once.Do(func() { close(c.done) })
	return c.done
}

func (c *expiring) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// TestGivingUpOnARegistrationUndoesIt: an error from a registration means
// nothing is tracked, even when the caller's context ends while the request
// waits in the mailbox (the supervisor registers it, then undoes it).
func TestGivingUpOnARegistrationUndoesIt(t *testing.T) {
	pids := make(chan int, 10)
	b := newBusy(t, 10_000, resman.WithEventHook(func(e resman.Event) {
		if e.Kind == resman.KindProcess && e.Type == resman.EventRegistered {
			pids <- e.PID
		}
	}))
	m, ctx := b.m, ctxT(t)

	requireUndone := func(err error, kind resman.Kind, key string) {
		t.Helper()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		var re *resman.ResourceError
		require.ErrorAs(t, err, &re)
		require.Equal(t, kind, re.Kind)
		require.Equal(t, key, re.Key)
		// The undo was queued before the call returned: this caller's next
		// request finds the key no longer handed out.
		var uerr error
		switch kind {
		case resman.KindProcess:
			_, uerr = m.UnregisterProcess(ctx, key)
		case resman.KindTask:
			_, uerr = m.UnregisterTask(ctx, key)
		default:
			_, uerr = m.UnregisterCustomResource(ctx, key)
		}
		require.ErrorIs(t, uerr, resman.ErrNotRegistered)
	}

	// StartProcess: the process was started, and is stopped.
	b.queue(10)
	requireUndone(m.StartProcess(short(t), "started", exec.Command("sleep", "300")), resman.KindProcess, "started")
	pid := <-pids // it was started (and registered) before the undo
	require.Eventually(t, func() bool { return !exists(pid) }, 10*time.Second, time.Millisecond, "stopped and reaped")

	// RegisterProcess: stopped too.
	cmd := started(t, exec.Command("sleep", "300"))
	b.queue(10)
	requireUndone(m.RegisterProcess(short(t), "registered", cmd), resman.KindProcess, "registered")
	require.Equal(t, cmd.Process.Pid, <-pids)
	require.Eventually(t, func() bool { return !exists(cmd.Process.Pid) }, 10*time.Second, time.Millisecond)

	// Go: the task ran and is cancelled; the caller never saw it.
	cancelled := make(chan struct{})
	b.queue(10)
	task, err := m.Go(short(t), "go", func(ctx context.Context) error { <-ctx.Done(); close(cancelled); return nil })
	require.Nil(t, task)
	requireUndone(err, resman.KindTask, "go")
	<-cancelled

	// RegisterTask: cancelled.
	rt := resman.StartTask(ctx, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	b.queue(10)
	requireUndone(m.RegisterTask(short(t), "task", rt), resman.KindTask, "task")
	require.ErrorIs(t, rt.Wait(ctx), context.Canceled)

	// Custom resources: dropped without their cleanup (the caller, told it
	// failed, cleans it up itself: it must not be cleaned up twice).
	var cleaned atomic.Int32
	b.queue(10)
	requireUndone(m.RegisterCustomResource(short(t), "custom", 1, func(context.Context, any) error { cleaned.Add(1); return nil }),
		resman.KindCustomResource, "custom")
	c := &closer{}
	b.queue(10)
	requireUndone(m.RegisterCloser(short(t), "closer", c), resman.KindCustomResource, "closer")
	require.NoError(t, m.CleanupAll(ctx))
	require.Zero(t, cleaned.Load())
	require.Zero(t, c.closed.Load())

	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Processes)
	require.Empty(t, st.Tasks)
	require.Empty(t, st.CustomResources)
}

// TestUndoTouchesOnlyItsOwnRegistration: an undo that comes after the key
// was ended and taken again by another call leaves the new one alone.
func TestUndoTouchesOnlyItsOwnRegistration(t *testing.T) {
	b := newBusy(t, 10_000)
	m, ctx := b.m, ctxT(t)
	b.queue(10)
	err := m.RegisterCustomResource(short(t), "k", 1, noop)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, m.RegisterCustomResource(ctx, "k", 2, noop))
	v, err := m.UnregisterCustomResource(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, 2, v, "the second registration survived the first's undo")
}

// TestEventHookMayShutDownTheManager: Close from inside the hook neither
// deadlocks nor waits for the hook, and Done tells when the last event
// was delivered.
func TestEventHookMayShutDownTheManager(t *testing.T) {
	mc := make(chan *resman.Manager, 1)
	closed := make(chan error, 1)
	var after atomic.Int32
	m, err := resman.New(resman.WithEventHook(func(e resman.Event) {
		if e.Key != "trigger" || e.Type != resman.EventRegistered {
			after.Add(1)
			return
		}
		m := <-mc
		closed <- m.Close()
		// Methods called after it are refused, not hung.
		_, err := m.Status(context.Background())
		closed <- err
	}))
	require.NoError(t, err)
	mc <- m
	ctx := ctxT(t)
	require.NoError(t, m.RegisterCustomResource(ctx, "other", 1, noop))
	require.NoError(t, m.RegisterCustomResource(ctx, "trigger", 1, noop))
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close called from the event hook did not return")
	}
	require.ErrorIs(t, <-closed, resman.ErrClosed)
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done was not closed")
	}
	require.NoError(t, m.Close(), "closing again is fine")
	// "other" registered and stopped, "trigger" stopped: delivered before Done.
	require.EqualValues(t, 3, after.Load())
}

// TestSlowHookDoesNotDelayShutdown: a hook that is stuck delays only later
// events, never Shutdown's return.
func TestSlowHookDoesNotDelayShutdown(t *testing.T) {
	gate := make(chan struct{})
	var seen atomic.Int32
	m, err := resman.New(resman.WithEventHook(func(resman.Event) { <-gate; seen.Add(1) }))
	require.NoError(t, err)
	ctx := ctxT(t)
	require.NoError(t, m.RegisterCustomResource(ctx, "c", 1, noop))
	start := time.Now()
	require.NoError(t, m.Close())
	require.Less(t, time.Since(start), time.Second, "Close does not wait for the hook")
	select {
	case <-m.Done():
		t.Fatal("Done closed while an event is still being delivered")
	default:
	}
	close(gate)
	<-m.Done()
	require.EqualValues(t, 2, seen.Load(), "registered and stopped, both delivered before Done")
}

// TestStopDuringGroupClearingUsesItsOwnTimeout: a leader that exits on its
// own is shown exited at once while the rest of its group is stopped with
// the default grace period; a stop in that window escalates at its own
// timeout.
func TestStopDuringGroupClearingUsesItsOwnTimeout(t *testing.T) {
	m := newManager(t, resman.WithDefaultTimeout(5*time.Second))
	ctx := ctxT(t)
	f := filepath.Join(t.TempDir(), "pid")
	// The background sleep ignores SIGTERM (ignored signals survive exec).
	cmd := sh(`trap "" TERM; sleep 300 & echo $! > ` + f + `; exit 7`)
	require.NoError(t, m.StartProcess(ctx, "p", cmd))
	rest := readPIDs(t, f, 1)[0]

	var ps resman.ProcessStatus
	require.Eventually(t, func() bool {
		st, err := m.Status(ctx)
		require.NoError(t, err)
		require.Len(t, st.Processes, 1)
		ps = st.Processes[0]
		return ps.State == resman.StateExited
	}, 3*time.Second, time.Millisecond, "the leader's exit shows at once, before its group is cleared")
	require.Equal(t, 7, ps.ExitCode)
	require.True(t, alive(rest), "the rest of the group is still being cleared")

	start := time.Now()
	require.NoError(t, m.StopProcess(ctx, "p", resman.WithTimeout(100*time.Millisecond)))
	took := time.Since(start)
	require.Less(t, took, 2*time.Second, "the stop's own 100ms, not what is left of the default 5s")
	require.False(t, alive(rest), "killed (a zombie of init's until it reaps it: see WithSubreaper)")
	require.False(t, exists(ps.PID), "the leader is reaped")
}

// TestRegisterProcessRefusesAStranger: a Process from os.FindProcess is not
// our child: it can be neither waited for nor told apart from a stranger.
func TestRegisterProcessRefusesAStranger(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	// The shell's child, not ours.
	f := filepath.Join(t.TempDir(), "pid")
	parent := started(t, sh("sleep 300 & echo $! > "+f+"; wait"))
	t.Cleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })
	pid := readPIDs(t, f, 1)[0]
	p, err := os.FindProcess(pid)
	require.NoError(t, err)
	err = m.RegisterProcess(ctx, "stranger", &exec.Cmd{Path: "/bin/sleep", Process: p})
	require.ErrorIs(t, err, resman.ErrInvalid)
	require.Contains(t, err.Error(), "not a child")
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Processes)
	require.True(t, alive(pid), "refused, and left alone")
	require.NoError(t, unixKill(pid))
}

func unixKill(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// TestNoDeadLettersFromRequestsRacingAStop: an attached manager whose
// parent actor stops while requests are on their way answers them with
// ErrClosed and raises no dead letter (newSystem fails the test on one).
func TestNoDeadLettersFromRequestsRacingAStop(t *testing.T) {
	system := newSystem(t)
	var dead atomic.Int32
	sub := system.EventStream.Subscribe(func(evt any) {
		if _, ok := evt.(*actor.DeadLetterEvent); ok {
			dead.Add(1)
		}
	})
	defer system.EventStream.Unsubscribe(sub)
	for round := range 100 {
		top, sup := spawnTree(t, system)
		m := resman.Attach(system, sup)
		asked := make(chan error, 1)
		go func() {
			for {
				if _, err := m.Status(context.Background()); err != nil {
					asked <- err
					return
				}
			}
		}()
		require.NoError(t, system.Root.StopFuture(top).Wait())
		err := <-asked
		require.ErrorIs(t, err, resman.ErrClosed, "round %d", round)
		require.NoError(t, m.Shutdown(context.Background()))
	}
	require.Zero(t, dead.Load(), "dead letters")
}
