package resman_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/messages"
)

// TestFaultsAreContained puts every kind of fault into one manager at once:
// cleanups that panic, hang or fail, tasks that ignore cancellation or
// panic, a process that ignores SIGTERM, a panicking event hook and a
// request that crashes the supervisor's handler. The manager keeps serving
// throughout, Shutdown finishes within the grace period plus 1 s, and every
// failure is reported.
func TestFaultsAreContained(t *testing.T) {
	const grace = 300 * time.Millisecond
	system := newSystem(t)
	m, err := resman.New(
		resman.WithActorSystem(system),
		resman.WithDefaultTimeout(grace),
		resman.WithEventHook(func(e resman.Event) {
			if e.Key == "c-fail" {
				panic("hook bomb")
			}
		}),
	)
	require.NoError(t, err)
	ctx := ctxT(t)
	release := make(chan struct{})
	defer close(release)

	serving := func(step string) {
		t.Helper()
		start := time.Now()
		_, err := m.Status(ctx)
		require.NoError(t, err, step)
		require.NoError(t, m.RegisterCustomResource(ctx, "probe", 1, noop), step)
		require.NoError(t, m.CleanupCustomResource(ctx, "probe"), step)
		require.Less(t, time.Since(start), 100*time.Millisecond, step)
	}

	errFail := errors.New("cleanup failed")
	require.NoError(t, m.RegisterCustomResource(ctx, "c-panic", 1, func(context.Context, any) error { panic("cleanup bomb") }))
	require.NoError(t, m.RegisterCustomResource(ctx, "c-hang", 2, func(context.Context, any) error { <-release; return nil }))
	require.NoError(t, m.RegisterCustomResource(ctx, "c-fail", 3, func(context.Context, any) error { return errFail }))
	serving("after the cleanups")
	_, err = m.Go(ctx, "t-deaf", func(context.Context) error { <-release; return nil })
	require.NoError(t, err)
	panicker, err := m.Go(ctx, "t-panic", func(context.Context) error { panic("task bomb") })
	require.NoError(t, err)
	<-panicker.Done()
	serving("after a task panicked")
	stubborn := ignorer(t, m, "p-stubborn")
	serving("with a stubborn process")

	// A crash inside the supervisor's handler: a nil request.
	pp, got := spawnProbe(t, system)
	crash := request[*messages.CancelTaskResponse](t, system, pp, m.PID(), got, (*messages.CancelTask)(nil))
	require.ErrorIs(t, crash.Err, resman.ErrPanicked)
	serving("after the supervisor recovered")

	// One cleanup fails while the others wait: the manager still serves.
	require.ErrorIs(t, m.CleanupCustomResource(ctx, "c-fail"), errFail)
	serving("after a failed cleanup and a panicking hook")

	start := time.Now()
	err = m.Shutdown(ctx)
	require.Less(t, time.Since(start), grace+time.Second, "Shutdown finishes within the grace period plus 1 s")
	failed := map[string]error{}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var re *resman.ResourceError
		require.ErrorAs(t, e, &re)
		failed[re.Key] = re.Err
	}
	require.Len(t, failed, 3, "%v", err)
	require.ErrorIs(t, failed["c-panic"], resman.ErrPanicked)
	require.ErrorIs(t, failed["c-hang"], resman.ErrTimeout)
	require.ErrorIs(t, failed["t-deaf"], resman.ErrTimeout)
	requireGone(t, stubborn)
	require.Equal(t, err, m.Shutdown(ctx), "a second Shutdown returns the first one's result")
}
