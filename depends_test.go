package resman_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
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

func TestStopCascadesToDependents(t *testing.T) {
	m := newManager(t, resman.WithDefaultTimeout(200*time.Millisecond))
	ctx := ctxT(t)
	f := filepath.Join(t.TempDir(), "order")
	chain(t, m, f)
	release := make(chan struct{})
	defer close(release)
	_, err := m.Go(ctx, "deaf", func(context.Context) error { <-release; return nil }, resman.DependsOn(resman.KindProcess, "b"))
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
