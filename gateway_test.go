package resman_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

// The facade keeps the reply processes whose reply it read for the next
// requests; one whose caller gave up unregisters itself when its reply
// comes. Nothing stays registered in the user's actor system after Shutdown.
func TestReplyProcessesLeaveNothingBehind(t *testing.T) {
	system := newSystem(t)
	before := actorCount(system)
	m, err := resman.New(resman.WithActorSystem(system))
	require.NoError(t, err)
	ctx := ctxT(t)

	release := make(chan struct{})
	require.NoError(t, m.RegisterCustomResource(ctx, "slow", "v", func(context.Context, any) error {
		<-release
		return nil
	}))
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, m.CleanupCustomResource(short, "slow"), context.DeadlineExceeded)
	withAbandoned := actorCount(system)
	close(release) // the reply comes now, to nobody
	require.Eventually(t, func() bool { return actorCount(system) == withAbandoned-1 }, 10*time.Second, time.Millisecond,
		"the abandoned reply process unregistered itself")
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.CustomResources, "the cleanup went on without its caller")

	// Many callers at once: each gets its own reply.
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				key := "t" + string(rune('a'+g)) + string(rune('a'+i%26))
				task := resman.StartTask(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil })
				if !assertNoError(t, m.RegisterTask(ctx, key, task)) {
					return
				}
				got, err := m.UnregisterTask(ctx, key)
				if !assertNoError(t, err) || got != task {
					t.Errorf("got task %p, want %p", got, task)
					return
				}
				task.Cancel()
			}
		}()
	}
	wg.Wait()
	require.NoError(t, m.Shutdown(ctx))
	require.Equal(t, before, actorCount(system), "nothing of resman stays registered")
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}
