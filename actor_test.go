package resman_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/messages"
)

// newSystem returns a quiet actor system, shut down when the test ends.
// resman must not cause dead letters in it: the test fails if it does.
func newSystem(t testing.TB) *actor.ActorSystem {
	t.Helper()
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterThrottleInterval(time.Millisecond),
	)
	var dead atomic.Value
	system.EventStream.Subscribe(func(evt any) {
		if d, ok := evt.(*actor.DeadLetterEvent); ok {
			dead.CompareAndSwap(nil, fmt.Sprintf("%T to %v", d.Message, d.PID))
		}
	})
	t.Cleanup(func() {
		system.Shutdown()
		if d := dead.Load(); d != nil {
			t.Errorf("dead letter: %v", d)
		}
	})
	return system
}

// ask is an instruction to a probe: send msg to `to` with ctx.Request.
type ask struct {
	to  *actor.PID
	msg any
}

// probe is an actor that makes requests on the test's behalf and passes
// every reply (and event) it receives to the test over a channel: the
// assertions stay on the test goroutine.
type probe struct{ got chan any }

func (p *probe) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *ask:
		ctx.Request(msg.to, msg.msg)
	case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
	default:
		p.got <- msg
	}
}

func spawnProbe(t testing.TB, system *actor.ActorSystem) (*actor.PID, chan any) {
	got := make(chan any, 1024)
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &probe{got: got} }))
	return pid, got
}

// request has the probe actor send msg to the supervisor and returns the reply.
func request[R any](t *testing.T, system *actor.ActorSystem, probePID, to *actor.PID, got chan any, msg any) R {
	t.Helper()
	system.Root.Send(probePID, &ask{to: to, msg: msg})
	select {
	case r := <-got:
		resp, ok := r.(R)
		require.Truef(t, ok, "reply to %T is %T", msg, r)
		return resp
	case <-time.After(20 * time.Second):
		t.Fatalf("no reply to %T", msg)
		panic("unreachable")
	}
}

func TestProtocolLifecycleByMessagesAlone(t *testing.T) {
	system := newSystem(t)
	sup := system.Root.Spawn(resman.Props(resman.WithDefaultTimeout(time.Second)))
	m := resman.Attach(system, sup)
	t.Cleanup(func() { require.NoError(t, m.Shutdown(context.Background())) })
	pp, got := spawnProbe(t, system)

	cmd := started(t, sh("exec sleep 300"))
	r1 := request[*messages.RegisterProcessResponse](t, system, pp, sup, got, &messages.RegisterProcess{Key: "p", Cmd: cmd})
	require.NoError(t, r1.Err)
	task := messages.StartTask(context.Background(), func(ctx context.Context) error { <-ctx.Done(); return nil })
	require.NoError(t, request[*messages.RegisterTaskResponse](t, system, pp, sup, got, &messages.RegisterTask{Key: "t", Task: task}).Err)
	var cleaned atomic.Int32
	require.NoError(t, request[*messages.RegisterCustomResourceResponse](t, system, pp, sup, got, &messages.RegisterCustomResource{
		Key: "c", Resource: 1, Cleanup: func(context.Context, any) error { cleaned.Add(1); return nil }}).Err)
	c := &closer{}
	require.NoError(t, request[*messages.RegisterCloserResponse](t, system, pp, sup, got, &messages.RegisterCloser{Key: "closer", Closer: c}).Err)
	gr := request[*messages.GoResponse](t, system, pp, sup, got, &messages.Go{Key: "go", Context: context.Background(),
		Fn: func(ctx context.Context) error { <-ctx.Done(); return nil }})
	require.NoError(t, gr.Err)
	require.NotNil(t, gr.Task)
	started := sh("exec sleep 300")
	require.NoError(t, request[*messages.StartProcessResponse](t, system, pp, sup, got, &messages.StartProcess{Key: "started", Cmd: started}).Err)

	st := request[*messages.GetStatusResponse](t, system, pp, sup, got, &messages.GetStatus{})
	require.NoError(t, st.Err)
	require.Len(t, st.Status.Processes, 2)
	require.Len(t, st.Status.Tasks, 2)
	require.Len(t, st.Status.CustomResources, 2)

	// Errors are the root package's sentinels.
	dup := request[*messages.RegisterTaskResponse](t, system, pp, sup, got, &messages.RegisterTask{Key: "t", Task: task})
	require.ErrorIs(t, dup.Err, resman.ErrAlreadyRegistered)
	bad := request[*messages.StopProcessResponse](t, system, pp, sup, got, &messages.StopProcess{Key: "p", Timeout: -1})
	require.ErrorIs(t, bad.Err, resman.ErrInvalid)

	require.NoError(t, request[*messages.StopProcessResponse](t, system, pp, sup, got,
		&messages.StopProcess{Key: "p", Timeout: time.Second, Signal: syscall.SIGTERM}).Err)
	require.False(t, exists(cmd.Process.Pid))
	require.ErrorIs(t, request[*messages.StopProcessResponse](t, system, pp, sup, got, &messages.StopProcess{Key: "p"}).Err, resman.ErrNotRegistered)

	ut := request[*messages.UnregisterTaskResponse](t, system, pp, sup, got, &messages.UnregisterTask{Key: "t"})
	require.NoError(t, ut.Err)
	require.Same(t, task, ut.Task)
	task.Cancel()
	require.NoError(t, request[*messages.CancelTaskResponse](t, system, pp, sup, got, &messages.CancelTask{Key: "go"}).Err)
	uc := request[*messages.UnregisterCustomResourceResponse](t, system, pp, sup, got, &messages.UnregisterCustomResource{Key: "closer"})
	require.NoError(t, uc.Err)
	require.Same(t, c, uc.Resource)

	wr := request[*messages.WaitProcessResponse](t, system, pp, sup, got, &messages.WaitProcess{Key: "nope"})
	require.ErrorIs(t, wr.Err, resman.ErrNotRegistered)
	up := request[*messages.UnregisterProcessResponse](t, system, pp, sup, got, &messages.UnregisterProcess{Key: "nope"})
	require.ErrorIs(t, up.Err, resman.ErrNotRegistered)
	cc := request[*messages.CleanupCustomResourceResponse](t, system, pp, sup, got, &messages.CleanupCustomResource{Key: "nope"})
	require.ErrorIs(t, cc.Err, resman.ErrNotRegistered)

	require.NoError(t, request[*messages.CleanupAllResponse](t, system, pp, sup, got, &messages.CleanupAll{}).Err)
	require.EqualValues(t, 1, cleaned.Load())
	require.False(t, exists(started.Process.Pid))
	st = request[*messages.GetStatusResponse](t, system, pp, sup, got, &messages.GetStatus{})
	require.Empty(t, st.Status.Processes)
	require.Empty(t, st.Status.Tasks)
	require.Empty(t, st.Status.CustomResources)

	require.NoError(t, request[*messages.ShutdownResponse](t, system, pp, sup, got, &messages.Shutdown{}).Err)
	closed := request[*messages.RegisterCustomResourceResponse](t, system, pp, sup, got,
		&messages.RegisterCustomResource{Key: "late", Resource: 1, Cleanup: noop})
	require.ErrorIs(t, closed.Err, resman.ErrClosed)
	require.NoError(t, request[*messages.ShutdownResponse](t, system, pp, sup, got, &messages.Shutdown{}).Err, "idempotent")
}

func TestSupervisorSurvivesMalformedRequest(t *testing.T) {
	system := newSystem(t)
	sup := system.Root.Spawn(resman.Props())
	m := resman.Attach(system, sup)
	t.Cleanup(func() { require.NoError(t, m.Shutdown(context.Background())) })
	pp, got := spawnProbe(t, system)

	// A nil request panics inside the supervisor: it recovers and still replies.
	r := request[*messages.StopProcessResponse](t, system, pp, sup, got, (*messages.StopProcess)(nil))
	require.ErrorIs(t, r.Err, resman.ErrPanicked)
	// And it goes on serving.
	require.NoError(t, m.RegisterCustomResource(context.Background(), "k", 1, noop))
	st, err := m.Status(context.Background())
	require.NoError(t, err)
	require.Len(t, st.CustomResources, 1)
}

// treeActor spawns its child props on Started and reports the child's PID.
type treeActor struct {
	child func() *actor.Props
	pids  chan *actor.PID
}

func (a *treeActor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		a.pids <- ctx.Spawn(a.child())
	}
}

// spawnTree spawns top → middle → supervisor (from resman.Props) and returns
// the top's and the supervisor's PIDs.
func spawnTree(t *testing.T, system *actor.ActorSystem, opts ...resman.Option) (top, sup *actor.PID) {
	middles, sups := make(chan *actor.PID, 1), make(chan *actor.PID, 1)
	middle := func() *actor.Props {
		return actor.PropsFromProducer(func() actor.Actor {
			return &treeActor{child: func() *actor.Props { return resman.Props(opts...) }, pids: sups}
		})
	}
	top = system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &treeActor{child: middle, pids: middles} }))
	<-middles
	return top, <-sups
}

// watcher returns a channel closed when pid terminates.
func watcher(system *actor.ActorSystem, pid *actor.PID) <-chan struct{} {
	gone, watching := make(chan struct{}), make(chan struct{})
	system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started:
			ctx.Watch(pid)
			close(watching)
		case *actor.Terminated:
			close(gone)
			ctx.Stop(ctx.Self())
		}
	}))
	// The Watch is in pid's mailbox before the caller can stop it: a watcher
	// started late would make a dead letter.
	<-watching
	return gone
}

func TestStoppingAnAncestorCleansUpTheTree(t *testing.T) {
	system := newSystem(t)
	grace := 300 * time.Millisecond
	top, sup := spawnTree(t, system, resman.WithDefaultTimeout(grace))
	m := resman.Attach(system, sup)
	ctx := ctxT(t)

	// Processes: a stubborn one and a shell with background grandchildren.
	dir := t.TempDir()
	f := filepath.Join(dir, "pids")
	require.NoError(t, m.StartProcess(ctx, "stubborn", sh(`trap "" TERM; echo $$ >> `+f+`; exec sleep 300`)))
	require.NoError(t, m.StartProcess(ctx, "tree", sh(`sleep 300 & echo $! >> `+f+`; (trap "" TERM; exec sleep 300) & echo $! >> `+f+`; echo $$ >> `+f+`; wait`)))
	registered := started(t, exec.Command("sleep", "300"))
	require.NoError(t, m.RegisterProcess(ctx, "registered", registered))
	pids := append(readPIDs(t, f, 4), registered.Process.Pid)

	// Tasks, one of which ignores its context.
	var cancelled atomic.Int32
	for i := range 5 {
		_, err := m.Go(ctx, fmt.Sprint("task", i), func(ctx context.Context) error {
			<-ctx.Done()
			cancelled.Add(1)
			return nil
		})
		require.NoError(t, err)
	}
	release := make(chan struct{})
	defer close(release)
	_, err := m.Go(ctx, "deaf", func(context.Context) error { <-release; return nil })
	require.NoError(t, err)

	// Custom resources.
	var cleanups [5]atomic.Int32
	for i := range cleanups {
		require.NoError(t, m.RegisterCustomResource(ctx, fmt.Sprint("res", i), i, func(context.Context, any) error {
			cleanups[i].Add(1)
			return nil
		}))
	}

	start := time.Now()
	require.NoError(t, system.Root.StopFuture(top).Wait())
	took := time.Since(start)
	require.Less(t, took, grace+2*time.Second)

	requireGone(t, pids...)
	require.EqualValues(t, 5, cancelled.Load())
	for i := range cleanups {
		require.EqualValues(t, 1, cleanups[i].Load(), "cleanup %d ran once", i)
	}
	require.False(t, exists(registered.Process.Pid), "reaped")
	_, err = m.Status(ctx)
	require.ErrorIs(t, err, resman.ErrClosed)
	require.ErrorIs(t, m.RegisterCustomResource(ctx, "late", 1, noop), resman.ErrClosed)
	require.NoError(t, m.Shutdown(ctx), "shutting down a stopped supervisor is fine")
}

func TestRequestsWhileStoppingAreRefused(t *testing.T) {
	system := newSystem(t)
	top, sup := spawnTree(t, system, resman.WithDefaultTimeout(time.Minute))
	m := resman.Attach(system, sup)
	ctx := ctxT(t)
	gone := watcher(system, top)

	gate := make(chan struct{})
	entered := make(chan struct{})
	require.NoError(t, m.RegisterCustomResource(ctx, "slow", 0, func(context.Context, any) error {
		close(entered)
		<-gate
		return nil
	}))
	system.Root.Stop(top)
	<-entered // the supervisor is stopping, held up by this cleanup

	var extra atomic.Int32
	var late int
	require.Eventually(t, func() bool {
		late++
		err := m.RegisterCustomResource(ctx, fmt.Sprint("late", late), late, func(context.Context, any) error {
			extra.Add(1)
			return nil
		})
		if err == nil {
			return false // registered before the stop reached the supervisor: it is cleaned up below
		}
		require.ErrorIs(t, err, resman.ErrClosed)
		return true
	}, 10*time.Second, time.Millisecond)
	_, err := m.Go(ctx, "t", func(context.Context) error { return nil })
	require.ErrorIs(t, err, resman.ErrClosed)
	require.ErrorIs(t, m.StartProcess(ctx, "p", sh("exec sleep 300")), resman.ErrClosed)

	close(gate)
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the tree did not stop")
	}
	require.EqualValues(t, late-1, extra.Load(), "what was registered before the stop was cleaned up")
}

func TestEventHook(t *testing.T) {
	events := make(chan resman.Event, 100)
	m := newManager(t, resman.WithEventHook(func(e resman.Event) { events <- e }), resman.WithDefaultTimeout(200*time.Millisecond))
	ctx := ctxT(t)

	cmd := sh("exit 3")
	require.NoError(t, m.StartProcess(ctx, "p", cmd))
	_, err := m.WaitProcess(ctx, "p")
	require.NoError(t, err)
	require.NoError(t, m.StopProcess(ctx, "p"))
	errTask := errors.New("task result")
	task, err := m.Go(ctx, "t", func(context.Context) error { return errTask })
	require.NoError(t, err)
	<-task.Done()
	require.NoError(t, m.CancelTask(ctx, "t"))
	errCleanup := errors.New("cleanup failed")
	require.NoError(t, m.RegisterCustomResource(ctx, "c", 1, func(context.Context, any) error { return errCleanup }))
	require.Error(t, m.CleanupCustomResource(ctx, "c"))
	require.NoError(t, m.RegisterCloser(ctx, "u", &closer{}))
	_, err = m.UnregisterCustomResource(ctx, "u")
	require.NoError(t, err)

	want := []struct {
		kind resman.Kind
		key  string
		typ  resman.EventType
	}{
		{resman.KindProcess, "p", resman.EventRegistered},
		{resman.KindProcess, "p", resman.EventExited},
		{resman.KindProcess, "p", resman.EventStopped},
		{resman.KindTask, "t", resman.EventRegistered},
		{resman.KindTask, "t", resman.EventExited},
		{resman.KindTask, "t", resman.EventStopped},
		{resman.KindCustomResource, "c", resman.EventRegistered},
		{resman.KindCustomResource, "c", resman.EventFailed},
		{resman.KindCustomResource, "u", resman.EventRegistered},
		{resman.KindCustomResource, "u", resman.EventUnregistered},
	}
	var prev time.Time
	for i, w := range want {
		var e resman.Event
		select {
		case e = <-events:
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d missing", i)
		}
		require.Equal(t, w.kind, e.Kind, "event %d", i)
		require.Equal(t, w.key, e.Key, "event %d", i)
		require.Equal(t, w.typ, e.Type, "event %d: %v", i, e)
		require.False(t, e.At.Before(prev), "in order")
		prev = e.At
		switch {
		case e.Kind == resman.KindProcess:
			require.Equal(t, cmd.Process.Pid, e.PID)
			if e.Type == resman.EventExited {
				require.Equal(t, 3, e.ExitCode)
			}
		case e.Kind == resman.KindTask && e.Type == resman.EventExited:
			require.ErrorIs(t, e.Err, errTask)
		case e.Type == resman.EventFailed:
			require.ErrorIs(t, e.Err, errCleanup)
		}
	}
}

func TestSlowHookNeverBlocksTheSupervisor(t *testing.T) {
	gate := make(chan struct{})
	var seen atomic.Int32
	m := newManager(t, resman.WithEventHook(func(resman.Event) { <-gate; seen.Add(1) }))
	ctx := ctxT(t)
	// Were the supervisor waiting for the hook, these calls would wait for
	// the gate, which opens only after them: the bound only has to be far
	// below never, and above a loaded machine's pauses.
	const bound = 2 * time.Second
	for i := range 50 {
		start := time.Now()
		require.NoError(t, m.RegisterCustomResource(ctx, fmt.Sprint(i), i, noop))
		require.Less(t, time.Since(start), bound)
	}
	start := time.Now()
	_, err := m.Status(ctx)
	require.NoError(t, err)
	require.Less(t, time.Since(start), bound)
	close(gate)
	require.Eventually(t, func() bool { return seen.Load() == 50 }, 10*time.Second, time.Millisecond, "nothing is lost")
}

func TestSubscribe(t *testing.T) {
	system := newSystem(t)
	m, err := resman.New(resman.WithActorSystem(system))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Shutdown(context.Background())) })
	ctx := ctxT(t)
	sub, got := spawnProbe(t, system)
	pp, replies := spawnProbe(t, system)

	r := request[*messages.SubscribeResponse](t, system, pp, m.PID(), replies, &messages.Subscribe{Subscriber: sub})
	require.NoError(t, r.Err)
	require.NoError(t, m.RegisterCustomResource(ctx, "c", 1, noop))
	require.NoError(t, m.CleanupCustomResource(ctx, "c"))
	for _, typ := range []resman.EventType{resman.EventRegistered, resman.EventStopped} {
		select {
		case msg := <-got:
			e, ok := msg.(*messages.Event)
			require.True(t, ok, "%T", msg)
			require.Equal(t, "c", e.Key)
			require.Equal(t, typ, e.Type)
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
	}

	u := request[*messages.UnsubscribeResponse](t, system, pp, m.PID(), replies, &messages.Unsubscribe{Subscriber: sub})
	require.NoError(t, u.Err)
	require.NoError(t, m.RegisterCustomResource(ctx, "d", 1, noop))
	_, err = m.Status(ctx) // the registration's event, if any, was queued before this reply
	require.NoError(t, err)
	select {
	case msg := <-got:
		t.Fatalf("event after unsubscribe: %v", msg)
	case <-time.After(20 * time.Millisecond):
	}
	require.ErrorIs(t, request[*messages.SubscribeResponse](t, system, pp, m.PID(), replies, &messages.Subscribe{}).Err, resman.ErrInvalid)
}

func TestDeadSubscriberIsDropped(t *testing.T) {
	system := newSystem(t)
	var deadLetters atomic.Int32
	system.EventStream.Subscribe(func(evt any) {
		if _, ok := evt.(*actor.DeadLetterEvent); ok {
			deadLetters.Add(1)
		}
	})
	m, err := resman.New(resman.WithActorSystem(system))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Shutdown(context.Background())) })
	ctx := ctxT(t)
	sub, _ := spawnProbe(t, system)
	pp, replies := spawnProbe(t, system)
	require.NoError(t, request[*messages.SubscribeResponse](t, system, pp, m.PID(), replies, &messages.Subscribe{Subscriber: sub}).Err)
	require.NoError(t, system.Root.StopFuture(sub).Wait())

	for i := range 200 {
		require.NoError(t, m.RegisterCustomResource(ctx, fmt.Sprint(i), i, noop))
	}
	require.NoError(t, m.CleanupAll(ctx))
	_, err = m.Status(ctx)
	require.NoError(t, err)
	require.Zero(t, deadLetters.Load(), "a stopped subscriber is dropped: no dead letters")
}

// TestALateReturnAfterShutdownRaisesNoDeadLetter: a task that ignored its
// cancellation past the grace period returns after the manager is gone;
// what its hooks send its child then is dropped quietly (newSystem fails
// the test on a dead letter).
func TestALateReturnAfterShutdownRaisesNoDeadLetter(t *testing.T) {
	system := newSystem(t)
	m, err := resman.New(resman.WithActorSystem(system), resman.WithDefaultTimeout(50*time.Millisecond))
	require.NoError(t, err)
	release := make(chan struct{})
	task, err := m.Go(ctxT(t), "stubborn", func(context.Context) error { <-release; return nil })
	require.NoError(t, err)
	require.ErrorIs(t, m.Shutdown(ctxT(t)), resman.ErrTimeout)
	returned := make(chan struct{})
	task.OnDone(func(error) { close(returned) }) // runs after the hook resman set as it cancelled the task
	close(release)
	<-returned
}
