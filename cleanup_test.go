package resman_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/messages"
)

func TestExactlyOnceUnderRacingStops(t *testing.T) {
	const n = 30
	m, err := resman.New(resman.WithDefaultTimeout(2 * time.Second))
	require.NoError(t, err)
	ctx := ctxT(t)

	var cleanups, cancels [n]atomic.Int32
	var pids []int
	for i := range n {
		key := fmt.Sprint("r", i)
		require.NoError(t, m.RegisterCustomResource(ctx, key, i, func(context.Context, any) error {
			cleanups[i].Add(1)
			return nil
		}))
		_, err := m.Go(ctx, key, func(ctx context.Context) error {
			<-ctx.Done()
			cancels[i].Add(1)
			return nil
		})
		require.NoError(t, err)
		cmd := sh("exec sleep 300")
		require.NoError(t, m.StartProcess(ctx, key, cmd))
		pids = append(pids, cmd.Process.Pid)
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		key := fmt.Sprint("r", i)
		wg.Add(3)
		go func() { defer wg.Done(); <-start; _ = m.CleanupCustomResource(ctx, key) }()
		go func() { defer wg.Done(); <-start; _ = m.CancelTask(ctx, key) }()
		go func() { defer wg.Done(); <-start; _ = m.StopProcess(ctx, key) }()
	}
	wg.Add(2)
	go func() { defer wg.Done(); <-start; _ = m.CleanupAll(ctx) }()
	go func() { defer wg.Done(); <-start; _ = m.Shutdown(ctx) }()
	close(start)
	wg.Wait()
	require.NoError(t, m.Shutdown(ctx))

	for i := range n {
		require.EqualValues(t, 1, cleanups[i].Load(), "cleanup %d", i)
		require.EqualValues(t, 1, cancels[i].Load(), "task %d", i)
	}
	requireGone(t, pids...)
}

func TestSecondStopWaitsForTheFirst(t *testing.T) {
	system := newSystem(t)
	m := newManager(t, resman.WithActorSystem(system))
	ctx := ctxT(t)
	errSlow := errors.New("slow cleanup failed")
	entered := make(chan struct{})
	gate := make(chan struct{})
	var runs atomic.Int32
	require.NoError(t, m.RegisterCustomResource(ctx, "slow", 1, func(context.Context, any) error {
		runs.Add(1)
		close(entered)
		<-gate
		return errSlow
	}))

	first := make(chan error, 1)
	go func() { first <- m.CleanupCustomResource(ctx, "slow", resman.WithTimeout(time.Minute)) }()
	<-entered
	// The second stop goes through a probe actor, so that the test knows
	// when the supervisor has it: it answers the probe's later GetStatus
	// only after the stop request before it.
	pp, got := spawnProbe(t, system)
	system.Root.Send(pp, &ask{to: m.PID(), msg: &messages.CleanupCustomResource{Key: "slow", Timeout: time.Minute}})
	st := request[*messages.GetStatusResponse](t, system, pp, m.PID(), got, &messages.GetStatus{})
	require.Len(t, st.Status.CustomResources, 1)
	require.Equal(t, resman.StateStopping, st.Status.CustomResources[0].State, "the key is taken while it stops")
	require.ErrorIs(t, m.RegisterCustomResource(ctx, "slow", 2, noop), resman.ErrAlreadyRegistered)
	select {
	case r := <-got:
		t.Fatalf("the second stop returned before the first finished: %v", r)
	default:
	}

	close(gate)
	select {
	case err := <-first:
		require.ErrorIs(t, err, errSlow)
	case <-time.After(10 * time.Second):
		t.Fatal("the first stop did not return")
	}
	select {
	case r := <-got:
		require.ErrorIs(t, r.(*messages.CleanupCustomResourceResponse).Err, errSlow, "both get the one stop's result")
	case <-time.After(10 * time.Second):
		t.Fatal("the second stop did not return")
	}
	require.EqualValues(t, 1, runs.Load())
}

func TestSupervisorNeverBlocks(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	gate := make(chan struct{})
	entered := make(chan struct{})
	require.NoError(t, m.RegisterCustomResource(ctx, "blocker", 1, func(context.Context, any) error {
		close(entered)
		select { // blocks for 2 s unless the test is done sooner
		case <-gate:
		case <-time.After(2 * time.Second):
		}
		return nil
	}))
	require.NoError(t, m.RegisterCustomResource(ctx, "other", 2, noop))
	blocked := make(chan error, 1)
	go func() { blocked <- m.CleanupCustomResource(ctx, "blocker", resman.WithTimeout(time.Minute)) }()
	<-entered

	const limit = 50 * time.Millisecond
	timed := func(name string, f func() error) {
		start := time.Now()
		require.NoError(t, f(), name)
		require.Less(t, time.Since(start), limit, name)
	}
	timed("status", func() error { _, err := m.Status(ctx); return err })
	timed("register", func() error { return m.RegisterCustomResource(ctx, "new", 3, noop) })
	timed("go", func() error { _, err := m.Go(ctx, "t", func(context.Context) error { return nil }); return err })
	timed("stop of another", func() error { return m.CleanupCustomResource(ctx, "other") })
	timed("cancel of another", func() error { return m.CancelTask(ctx, "t") })

	close(gate)
	require.NoError(t, <-blocked)
}

func TestCleanupAllIsConcurrent(t *testing.T) {
	const n = 100
	m := newManager(t, resman.WithDefaultTimeout(time.Second))
	ctx := ctxT(t)
	f := filepath.Join(t.TempDir(), "pids")
	for i := range n {
		require.NoError(t, m.StartProcess(ctx, fmt.Sprint("p", i), sh(`trap "" TERM; echo $$ >> `+f+`; exec sleep 300`)))
	}
	pids := readPIDs(t, f, n) // every trap is installed

	start := time.Now()
	require.NoError(t, m.CleanupAll(ctx), "SIGKILL after the grace period is a normal stop")
	took := time.Since(start)
	require.GreaterOrEqual(t, took, time.Second, "they ignore SIGTERM: the grace period is waited out")
	require.Less(t, took, 1900*time.Millisecond, "stops run concurrently, not one after another")
	requireGone(t, pids...)

	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Processes)
}

func TestCleanupAllReturnsEveryFailure(t *testing.T) {
	m := newManager(t, resman.WithDefaultTimeout(time.Second))
	ctx := ctxT(t)
	release := make(chan struct{})
	defer close(release)
	errA, errB := errors.New("a failed"), errors.New("b failed")
	require.NoError(t, m.RegisterCustomResource(ctx, "a", 1, func(context.Context, any) error { return errA }))
	require.NoError(t, m.RegisterCustomResource(ctx, "b", 2, func(context.Context, any) error { return errB }))
	require.NoError(t, m.RegisterCustomResource(ctx, "p", 3, func(context.Context, any) error { panic("p") }))
	require.NoError(t, m.RegisterCustomResource(ctx, "ok", 4, noop))
	_, err := m.Go(ctx, "deaf", func(context.Context) error { <-release; return nil })
	require.NoError(t, err)
	_, err = m.Go(ctx, "fine", func(ctx context.Context) error { <-ctx.Done(); return nil })
	require.NoError(t, err)
	require.NoError(t, m.StartProcess(ctx, "proc", sh("exec sleep 300")))

	err = m.CleanupAll(ctx)
	require.ErrorIs(t, err, errA)
	require.ErrorIs(t, err, errB)
	require.ErrorIs(t, err, resman.ErrPanicked)
	require.ErrorIs(t, err, resman.ErrTimeout)
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "errors.Join")
	keys := map[string]string{}
	for _, e := range joined.Unwrap() {
		var re *resman.ResourceError
		require.ErrorAs(t, e, &re)
		keys[re.Key] = re.Op
	}
	require.Equal(t, map[string]string{"a": "cleanup", "b": "cleanup", "p": "cleanup", "deaf": "cancel"}, keys, "%v", err)

	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Processes)
	require.Empty(t, st.Tasks)
	require.Empty(t, st.CustomResources)
	// Still usable.
	require.NoError(t, m.RegisterCustomResource(ctx, "a", 1, noop))
	require.NoError(t, m.CleanupAll(ctx))
}

func TestCallerDeadlineDoesNotAbandonTheStop(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	pid := ignorer(t, m, "stubborn")

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := m.StopProcess(short, "stubborn", resman.WithTimeout(500*time.Millisecond))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var re *resman.ResourceError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "stop", re.Op)
	require.Less(t, time.Since(start), 400*time.Millisecond, "the caller's wait ends with its context")

	require.Eventually(t, func() bool { return !exists(pid) }, 10*time.Second, 5*time.Millisecond, "the stop still kills")
	require.Eventually(t, func() bool {
		st, err := m.Status(ctx)
		return err == nil && len(st.Processes) == 0
	}, 10*time.Second, 5*time.Millisecond, "and unregisters")
}

func TestShutdownLeavesNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m, err := resman.New(resman.WithDefaultTimeout(300 * time.Millisecond))
	require.NoError(t, err)
	ctx := ctxT(t)
	pid := ignorer(t, m, "stubborn")
	cmd := sh("exec sleep 300")
	require.NoError(t, m.StartProcess(ctx, "sleeper", cmd))
	_, err = m.Go(ctx, "t", func(ctx context.Context) error { <-ctx.Done(); return nil })
	require.NoError(t, err)
	c := &closer{}
	require.NoError(t, m.RegisterCloser(ctx, "c", c))

	var wg sync.WaitGroup
	errs := make([]error, 4)
	start := time.Now()
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = m.Shutdown(ctx) }()
	}
	wg.Wait()
	require.Less(t, time.Since(start), 300*time.Millisecond+time.Second, "within the grace period plus 1 s")
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, m.Close())
	require.EqualValues(t, 1, c.closed.Load())
	requireGone(t, pid, cmd.Process.Pid)
	require.False(t, exists(cmd.Process.Pid))
}

func TestShutdownCallerDeadline(t *testing.T) {
	m, err := resman.New()
	require.NoError(t, err)
	ctx := ctxT(t)
	gate := make(chan struct{})
	require.NoError(t, m.RegisterCustomResource(ctx, "slow", 1, func(context.Context, any) error { <-gate; return nil }))
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, m.Shutdown(short), context.DeadlineExceeded)
	close(gate)
	require.NoError(t, m.Shutdown(ctx), "the shutdown went on")
}

func TestConcurrentUnregistersHandBackOnce(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	for i := range 50 {
		task, err := m.Go(ctx, "t", func(ctx context.Context) error { <-ctx.Done(); return nil })
		require.NoError(t, err)
		var wg sync.WaitGroup
		tasks := make([]*resman.Task, 4)
		errs := make([]error, 4)
		for j := range tasks {
			wg.Add(1)
			go func() { defer wg.Done(); tasks[j], errs[j] = m.UnregisterTask(ctx, "t") }()
		}
		wg.Wait()
		handedBack := 0
		for j, err := range errs {
			if err == nil {
				handedBack++
				require.Same(t, task, tasks[j])
			} else {
				require.ErrorIs(t, err, resman.ErrNotRegistered)
			}
		}
		require.Equal(t, 1, handedBack, "round %d: one caller gets it back", i)
		task.Cancel()
	}
}

// TestUnregisterRacingShutdownIsOneOrTheOther: an unregister that races a
// CleanupAll or a Shutdown either hands the resource back untouched (the
// task is not cancelled, the cleanup never runs) or fails and the resource
// is ended: never both, never neither. Release goes through the registration's
// child, and its key is free before the child has reported.
func TestUnregisterRacingShutdownIsOneOrTheOther(t *testing.T) {
	ctx := ctxT(t)
	for i := range 60 {
		m, err := resman.New()
		require.NoError(t, err)
		task, err := m.Go(ctx, "t", func(ctx context.Context) error { <-ctx.Done(); return nil })
		require.NoError(t, err)
		var cleanups atomic.Int32
		require.NoError(t, m.RegisterCustomResource(ctx, "c", i, func(context.Context, any) error {
			cleanups.Add(1)
			return nil
		}))
		var wg sync.WaitGroup
		var gotTask *resman.Task
		var gotRes any
		var taskErr, resErr error
		wg.Add(3)
		go func() { defer wg.Done(); gotTask, taskErr = m.UnregisterTask(ctx, "t") }()
		go func() { defer wg.Done(); gotRes, resErr = m.UnregisterCustomResource(ctx, "c") }()
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_ = m.CleanupAll(ctx)
			} else {
				_ = m.Shutdown(ctx)
			}
		}()
		wg.Wait()
		if taskErr == nil {
			require.Same(t, task, gotTask)
			require.False(t, isDone(task), "round %d: a task handed back is not cancelled", i)
		} else {
			require.True(t, errors.Is(taskErr, resman.ErrNotRegistered) || errors.Is(taskErr, resman.ErrClosed), "round %d: %v", i, taskErr)
			<-task.Done() // cancelled by the cleanup: it returns
		}
		if resErr == nil {
			require.Equal(t, i, gotRes)
			require.Zero(t, cleanups.Load(), "round %d: a resource handed back is not cleaned up", i)
		} else {
			require.True(t, errors.Is(resErr, resman.ErrNotRegistered) || errors.Is(resErr, resman.ErrClosed), "round %d: %v", i, resErr)
			require.Equal(t, int32(1), cleanups.Load(), "round %d: cleaned up once", i)
		}
		require.NoError(t, m.Shutdown(ctx))
		require.Equal(t, taskErr == nil, !isDone(task), "round %d: Shutdown does not touch what was handed back", i)
		task.Cancel()
		<-m.Done()
	}
}

// TestCleanupAllDuringAFailingStartReturns: a CleanupAll (or Shutdown) that
// finds a registration whose start is still under way waits for it, and
// returns once that start has failed or been ended; it never waits forever.
// Found by the model-based stress test (its probe, a Supervise that cannot
// start, racing a CleanupAll).
func TestCleanupAllDuringAFailingStartReturns(t *testing.T) {
	t.Run("ended before its ready check passed", func(t *testing.T) {
		m := newManager(t)
		ctx := ctxT(t)
		polled := make(chan struct{})
		var once sync.Once
		supervised := make(chan error, 1)
		go func() {
			supervised <- m.Supervise(ctx, "never-ready", spec("exec sleep 300"), resman.WithReady(resman.ReadyCheck{
				Func:     func(context.Context) error { once.Do(func() { close(polled) }); return errors.New("not ready") },
				Timeout:  time.Minute,
				Interval: 5 * time.Millisecond,
			}))
		}()
		<-polled // the run is up, its registration not yet: the start is under way
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		require.NoError(t, m.CleanupAll(cctx), "CleanupAll ends the start and returns")
		require.Error(t, <-supervised, "Supervise fails: nothing is tracked")
		_, ok := processStatus(t, m, "never-ready")
		require.False(t, ok)
	})
	t.Run("first start fails", func(t *testing.T) {
		m := newManager(t)
		ctx := ctxT(t)
		for i := range 100 {
			key := fmt.Sprint("p", i)
			supervised := make(chan error, 1)
			go func() {
				supervised <- m.Supervise(ctx, key, resman.ProcessSpec{Command: []string{"/nonexistent/resman-test"}})
			}()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := m.CleanupAll(cctx)
			cancel()
			require.Error(t, <-supervised)
			require.NoError(t, err, "round %d: CleanupAll caught the failing start", i)
		}
	})
}
