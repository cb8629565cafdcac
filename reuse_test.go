package resman_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

// actorCount is how many processes (actors, futures) the system has.
func actorCount(system *actor.ActorSystem) int {
	n := 0
	for _, m := range system.ProcessRegistry.LocalPIDs.LocalPIDs {
		n += m.Count()
	}
	return n
}

func TestChildActorsAreReusedThenTrimmed(t *testing.T) {
	system := newSystem(t)
	m := newManager(t, resman.WithActorSystem(system))
	ctx := ctxT(t)
	task := resman.StartTask(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil })
	defer task.Cancel()

	_, err := m.Status(ctx) // a request: its reply process is kept for the next
	require.NoError(t, err)
	base := actorCount(system)
	for range 1000 {
		require.NoError(t, m.RegisterTask(ctx, "k", task))
		got, err := m.UnregisterTask(ctx, "k")
		require.NoError(t, err)
		require.Same(t, task, got)
	}
	require.LessOrEqual(t, actorCount(system), base+1, "one child actor served a thousand registrations")
	require.NoError(t, task.Err(), "handed back untouched")

	// A burst needs a child each; once it is over, the children left
	// unused are stopped, but for a few kept for the next registrations.
	const burst = 300
	for i := range burst {
		_, err := m.Go(ctx, strconv.Itoa(i), func(ctx context.Context) error { <-ctx.Done(); return nil })
		require.NoError(t, err)
	}
	require.GreaterOrEqual(t, actorCount(system), base+burst)
	require.NoError(t, m.CleanupAll(ctx))
	require.Eventually(t, func() bool { return actorCount(system) <= base+64 }, 10*time.Second, 10*time.Millisecond,
		"unused children are stopped within a few seconds")

	// And they still serve.
	require.NoError(t, m.RegisterTask(ctx, "again", task))
	require.NoError(t, m.CancelTask(ctx, "again"))
	require.NoError(t, task.Wait(ctx), "cancelled and returned")
}
