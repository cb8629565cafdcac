package resman_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/messages"
	"github.com/resman-dev/resman/supervisor"
)

// termRecorder is a shell script that, on SIGTERM, appends its name to f and
// exits; it first touches f.name so a test knows its trap is set.
func termRecorder(f, name string) resman.ProcessSpec {
	return spec(fmt.Sprintf(`trap 'echo %s >> %s; exit 0' TERM; touch %s.%s; while :; do sleep 0.02; done`, name, f, f, name))
}

func waitFiles(t *testing.T, paths ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, p := range paths {
			if _, err := os.Stat(p); err != nil {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond)
}

func readOrder(t *testing.T, f string) []string {
	t.Helper()
	b, err := os.ReadFile(f)
	require.NoError(t, err)
	return strings.Fields(string(b))
}

// chain supervises a ← b ← c (c depends on b, b on a).
func chain(t *testing.T, m *resman.Manager, f string) {
	t.Helper()
	ctx := ctxT(t)
	require.NoError(t, m.Supervise(ctx, "a", termRecorder(f, "a")))
	require.NoError(t, m.Supervise(ctx, "b", termRecorder(f, "b"), resman.DependsOn(resman.KindProcess, "a")))
	require.NoError(t, m.Supervise(ctx, "c", termRecorder(f, "c"), resman.DependsOn(resman.KindProcess, "b")))
	waitFiles(t, f+".a", f+".b", f+".c")
}

func TestCleanupAllEndsDependentsFirst(t *testing.T) {
	const grace = time.Second
	m := newManager(t, resman.WithDefaultTimeout(grace))
	ctx := ctxT(t)
	f := filepath.Join(t.TempDir(), "order")
	chain(t, m, f)
	var ignorers []int
	for i := range 100 {
		ignorers = append(ignorers, ignorer(t, m, fmt.Sprint("ignorer", i)))
	}
	ps, _ := processStatus(t, m, "b")
	require.Equal(t, []resman.Ref{{Kind: resman.KindProcess, Key: "a"}}, ps.DependsOn)

	start := time.Now()
	require.NoError(t, m.CleanupAll(ctx))
	took := time.Since(start)
	require.Equal(t, []string{"c", "b", "a"}, readOrder(t, f), "dependents first")
	require.Less(t, took, 2*grace+500*time.Millisecond, "independent resources end together: about one grace period, not 100")
	requireGone(t, ignorers...)
}

func TestShutdownAndTreeStopEndDependentsFirst(t *testing.T) {
	t.Run("Shutdown", func(t *testing.T) {
		m, err := resman.New()
		require.NoError(t, err)
		f := filepath.Join(t.TempDir(), "order")
		chain(t, m, f)
		require.NoError(t, m.Shutdown(ctxT(t)))
		require.Equal(t, []string{"c", "b", "a"}, readOrder(t, f))
	})
	t.Run("parent actor stop", func(t *testing.T) {
		system := newSystem(t)
		top, sup := spawnTree(t, system)
		m := resman.Attach(system, sup)
		f := filepath.Join(t.TempDir(), "order")
		chain(t, m, f)
		require.NoError(t, system.Root.StopFuture(top).Wait())
		require.Equal(t, []string{"c", "b", "a"}, readOrder(t, f))
		require.NoError(t, m.Shutdown(context.Background()))
	})
}

func TestTreeStopEndsADependedOnCustomResourceAfterItsDependents(t *testing.T) {
	// A custom resource's child learns of it from its End alone, which a
	// stop of the tree holds until the resource's dependents are gone: the
	// child must still be there to read it, and the cleanup runs once,
	// after them.
	system := newSystem(t)
	top, sup := spawnTree(t, system)
	m := resman.Attach(system, sup)
	ctx := ctxT(t)
	f := filepath.Join(t.TempDir(), "order")
	var cleanups atomic.Int32
	require.NoError(t, m.RegisterCustomResource(ctx, "db", f, func(_ context.Context, v any) error {
		cleanups.Add(1)
		out, err := os.OpenFile(v.(string), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = out.WriteString("db\n")
		return errors.Join(err, out.Close())
	}))
	require.NoError(t, m.Supervise(ctx, "app", termRecorder(f, "app"), resman.DependsOn(resman.KindCustomResource, "db")))
	waitFiles(t, f+".app")
	require.NoError(t, system.Root.StopFuture(top).Wait())
	require.EqualValues(t, 1, cleanups.Load(), "the cleanup ran once")
	require.Equal(t, []string{"app", "db"}, readOrder(t, f))
	require.NoError(t, m.Shutdown(context.Background()))
}

func TestStopCascadesToDependents(t *testing.T) {
	// The processes get a grace period a loaded machine cannot miss (b's
	// trap must run for the order to show); the deaf task a short one.
	m := newManager(t, resman.WithDefaultTimeout(5*time.Second))
	ctx := ctxT(t)
	f := filepath.Join(t.TempDir(), "order")
	chain(t, m, f)
	release := make(chan struct{})
	defer close(release)
	_, err := m.Go(ctx, "deaf", func(context.Context) error { <-release; return nil }, resman.DependsOn(resman.KindProcess, "b"),
		resman.WithGracePeriod(200*time.Millisecond))
	require.NoError(t, err)
	require.NoError(t, m.RegisterCustomResource(ctx, "other", 1, noop), "an unrelated resource")

	err = m.StopProcess(ctx, "a")
	require.ErrorIs(t, err, resman.ErrTimeout, "a dependent's failure is returned")
	var re *resman.ResourceError
	require.True(t, errors.As(err, &re))
	require.Equal(t, "deaf", re.Key)
	require.Equal(t, []string{"c", "b", "a"}, readOrder(t, f))
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Processes)
	require.Empty(t, st.Tasks)
	require.Len(t, st.CustomResources, 1, "the unrelated one is untouched")
}

func TestUnregisterOfADependencyIsRefused(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	require.NoError(t, m.Supervise(ctx, "db", spec("exec sleep 300")))
	require.NoError(t, m.RegisterCustomResource(ctx, "pool", 1, noop, resman.DependsOn(resman.KindProcess, "db")))
	_, err := m.UnregisterProcess(ctx, "db")
	require.ErrorIs(t, err, resman.ErrInvalid)
	require.Contains(t, err.Error(), `"pool"`)
	ps, ok := processStatus(t, m, "db")
	require.True(t, ok, "nothing changed")
	require.Equal(t, resman.StateRunning, ps.State)
	_, err = m.UnregisterCustomResource(ctx, "pool")
	require.NoError(t, err)
	cmd, err := m.UnregisterProcess(ctx, "db")
	require.NoError(t, err, "once nothing depends on it")
	require.NoError(t, cmd.Process.Kill())
	_, _ = cmd.Process.Wait()
}

func TestADependencyThatExitsLeavesDependentsAlone(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	require.NoError(t, m.Supervise(ctx, "dep", spec("exit 0")))
	require.NoError(t, m.Supervise(ctx, "user", spec("exec sleep 300"), resman.DependsOn(resman.KindProcess, "dep")))
	_, err := m.WaitProcess(ctx, "dep")
	require.NoError(t, err)
	ps, _ := processStatus(t, m, "user")
	require.Equal(t, resman.StateRunning, ps.State)
	require.NoError(t, m.CleanupAll(ctx))
}

// TestDependentWaitsForItsDependencyToBeReady: a registration that depends
// on a process still starting waits until it passed its ready check.
func TestDependentWaitsForItsDependencyToBeReady(t *testing.T) {
	ev := newEvents()
	m := newManager(t, resman.WithEventHook(ev.hook))
	ctx := ctxT(t)
	addr, server := lateServer(t)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := m.Supervise(ctx, "server", server, resman.WithReady(resman.ReadyCheck{TCP: addr, Interval: 10 * time.Millisecond})); err != nil {
			t.Error(err)
		}
	}()
	// Until the server's registration is in, the client's names an unknown
	// dependency; once it is, the client waits for its ready check.
	require.Eventually(t, func() bool {
		err := m.Supervise(ctx, "client", spec("exec sleep 300"), resman.DependsOn(resman.KindProcess, "server"))
		if errors.Is(err, resman.ErrInvalid) {
			return false
		}
		require.NoError(t, err)
		return true
	}, 10*time.Second, time.Millisecond)
	wg.Wait()
	ready := ev.next(t, "server", resman.EventReady)
	reg := ev.next(t, "client", resman.EventRegistered)
	require.False(t, reg.At.Before(ready.At), "the client started after the server was ready")
	require.NoError(t, m.CleanupAll(ctx))
}

// TestUndoOfARegistrationWaitingForADependency: a caller that gives up on a
// registration waiting for a dependency that is still starting leaves
// nothing tracked, even when the waiting request is queued again (as every
// drop of another registration does) behind the undo its caller sent.
// The requests go in by hand, in the order the facade would send them, so
// that the mailbox order is certain. Found by the model-based stress test.
func TestUndoOfARegistrationWaitingForADependency(t *testing.T) {
	system := newSystem(t)
	m, err := resman.New(resman.WithActorSystem(system))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Shutdown(context.Background())) })
	ctx := ctxT(t)
	var ready atomic.Bool
	polled := make(chan struct{})
	var once sync.Once
	supervised := make(chan error, 1)
	go func() {
		supervised <- m.Supervise(ctx, "db", spec("exec sleep 300"), resman.WithReady(resman.ReadyCheck{
			Func: func(context.Context) error {
				once.Do(func() { close(polled) })
				if ready.Load() {
					return nil
				}
				return errors.New("not yet")
			},
			Interval: time.Millisecond,
		}))
	}()
	<-polled // db is starting: a registration that depends on it waits
	require.NoError(t, m.RegisterCustomResource(ctx, "other", 1, noop))

	var cleaned atomic.Int32
	req := &messages.RegisterCustomResource{Key: "pool", Resource: 2,
		Cleanup:   func(context.Context, any) error { cleaned.Add(1); return nil },
		Lifecycle: messages.Lifecycle{DependsOn: []messages.Ref{{Kind: resman.KindProcess, Key: "db"}}}}
	system.Root.Send(m.PID(), req)                                              // waits for db
	system.Root.Send(m.PID(), &messages.UnregisterCustomResource{Key: "other"}) // a drop: the waiting request is queued again...
	system.Root.Send(m.PID(), &supervisor.Undo{Request: req})                   // ...behind its caller's undo
	ready.Store(true)
	require.NoError(t, <-supervised)

	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.CustomResources, "its caller gave up: pool is not tracked")
	require.NoError(t, m.CleanupAll(ctx))
	require.Zero(t, cleaned.Load(), "nor cleaned up: it is its caller's")
}

// TestUndoOfACustomResourceOthersDependOn: a caller that gives up on
// registering a custom resource leaves nothing tracked, even when another
// registration came to depend on it before the undo was served; its cleanup
// never runs (the caller, told it failed, cleans it up itself). The requests
// go in by hand, in the order two callers would send them, so that the
// mailbox order is certain. Found by the model-based stress test.
func TestUndoOfACustomResourceOthersDependOn(t *testing.T) {
	system := newSystem(t)
	m, err := resman.New(resman.WithActorSystem(system))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Shutdown(context.Background())) })
	ctx := ctxT(t)

	var cleaned atomic.Int32
	req := &messages.RegisterCustomResource{Key: "pool", Resource: 1,
		Cleanup: func(context.Context, any) error { cleaned.Add(1); return nil }}
	system.Root.Send(m.PID(), req) // its caller gives up...
	system.Root.Send(m.PID(), &messages.RegisterCustomResource{Key: "user", Resource: 2, Cleanup: noop,
		Lifecycle: messages.Lifecycle{DependsOn: []messages.Ref{{Kind: resman.KindCustomResource, Key: "pool"}}}}) // ...another caller depends on it...
	system.Root.Send(m.PID(), &supervisor.Undo{Request: req}) // ...and the undo comes

	require.Eventually(t, func() bool {
		st, err := m.Status(ctx)
		require.NoError(t, err)
		for _, c := range st.CustomResources {
			if c.Key == "pool" {
				return false
			}
		}
		return true
	}, 2*time.Second, time.Millisecond, "its caller gave up: pool is not tracked")
	require.NoError(t, m.CleanupAll(ctx))
	require.Zero(t, cleaned.Load(), "nor cleaned up: it is its caller's")
}

func TestCleanupAllGivesADependencyAGracePeriodOfItsOwnOnceItsTurnComes(t *testing.T) {
	// Both tasks ignore their cancellation. The dependent takes the whole
	// of the sweep's grace period; the dependency's turn comes after it,
	// with a grace period of its own, and it too is reported timed out:
	// CleanupAll neither hangs nor cuts the dependency's time short.
	const grace = 300 * time.Millisecond
	m := newManager(t, resman.WithDefaultTimeout(grace))
	ctx := ctxT(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stubborn := func(context.Context) error { <-release; return nil }
	_, err := m.Go(ctx, "dependency", stubborn)
	require.NoError(t, err)
	_, err = m.Go(ctx, "dependent", stubborn, resman.DependsOn(resman.KindTask, "dependency"))
	require.NoError(t, err)

	begun := time.Now()
	err = m.CleanupAll(ctx)
	took := time.Since(begun)
	require.ErrorIs(t, err, resman.ErrTimeout)
	for _, key := range []string{"dependency", "dependent"} {
		require.Contains(t, err.Error(), fmt.Sprintf("%q", key), "each is reported timed out")
	}
	require.GreaterOrEqual(t, took, 2*grace, "one grace period each, one after the other")
	require.Less(t, took, 2*grace+5*time.Second)
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Tasks)
}
