package remote_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

// waitEvent reads events until one of key and typ comes (bounded).
func waitEvent(t *testing.T, ch <-chan resman.Event, key string, typ resman.EventType) resman.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-ch:
			if e.Key == key && e.Type == typ {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event for %q", typ, key)
		}
	}
}

// TestEveryClientMethod drives a node in another OS process through each
// Client method and checks /proc for what it started and stopped.
func TestEveryClientMethod(t *testing.T) {
	c, _ := client(t)
	ctx := ctxT(t)

	events := make(chan resman.Event, 1000)
	stop, err := c.Subscribe(ctx, func(e resman.Event) { events <- e })
	require.NoError(t, err)
	defer stop()

	// Supervise, with options that travel: a grace period and an output ready check.
	spec := resman.ProcessSpec{Command: []string{"sh", "-c", "echo hello; echo $GREETING; exec sleep 1000"}, Env: []string{"GREETING=world"}}
	require.NoError(t, c.Supervise(ctx, "echo", spec,
		resman.WithGracePeriod(2*time.Second), resman.WithReady(resman.ReadyCheck{Output: "^world$"})))
	reg := waitEvent(t, events, "echo", resman.EventRegistered)
	require.Equal(t, resman.KindProcess, reg.Kind)
	ready := waitEvent(t, events, "echo", resman.EventReady)
	require.NotZero(t, ready.PID)

	// Status and Tail.
	st, err := c.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Processes, 1)
	p := st.Processes[0]
	require.Equal(t, "echo", p.Key)
	require.Equal(t, resman.StateRunning, p.State)
	require.Equal(t, ready.PID, p.PID)
	require.False(t, p.RegisteredAt.IsZero())
	require.True(t, alive(p.PID))
	lines, err := c.Tail(ctx, "echo", 10)
	require.NoError(t, err)
	require.Len(t, lines, 2)
	require.Equal(t, "hello", lines[0].Text)
	require.Equal(t, "world", lines[1].Text)
	require.Equal(t, "stdout", lines[1].Stream)
	require.Equal(t, p.PID, lines[1].PID)

	// RestartProcess: a new run, the old one gone.
	require.NoError(t, c.RestartProcess(ctx, "echo"))
	re := waitEvent(t, events, "echo", resman.EventRestarted)
	require.NotEqual(t, p.PID, re.PID)
	requireGone(t, p.PID)
	st, err = c.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, re.PID, st.Processes[0].PID)
	require.Equal(t, 1, st.Processes[0].Restarts)

	// StopProcess with a signal: gone when it returns.
	require.NoError(t, c.StopProcess(ctx, "echo", resman.WithSignal(syscall.SIGKILL)))
	requireGone(t, re.PID)
	waitEvent(t, events, "echo", resman.EventStopped)

	// WaitProcess returns the exit code.
	require.NoError(t, c.Supervise(ctx, "three", resman.ProcessSpec{Command: []string{"sh", "-c", "exit 3"}}))
	code, err := c.WaitProcess(ctx, "three")
	require.NoError(t, err)
	require.Equal(t, 3, code)
	ex := waitEvent(t, events, "three", resman.EventExited)
	require.Equal(t, 3, ex.ExitCode)

	// CleanupAll: everything gone.
	require.NoError(t, c.Supervise(ctx, "a", sleeper()))
	require.NoError(t, c.Supervise(ctx, "b", sleeper(), resman.DependsOn(resman.KindProcess, "a")))
	st, err = c.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Processes, 3)
	require.Equal(t, []resman.Ref{{Kind: resman.KindProcess, Key: "a"}}, st.Processes[1].DependsOn)
	pids := []int{st.Processes[0].PID, st.Processes[1].PID}
	require.NoError(t, c.CleanupAll(ctx))
	requireGone(t, pids...)
	st, err = c.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Processes)

	// After stop, no more events reach fn.
	stop()
	stop() // idempotent
}

// TestErrorsKeepTheirIdentity: errors.Is and errors.As hold on a Client's
// errors as on a local Manager's, and they print the same.
func TestErrorsKeepTheirIdentity(t *testing.T) {
	c, _ := client(t)
	ctx := ctxT(t)
	local, err := resman.New()
	require.NoError(t, err)
	defer local.Close()

	err = c.StopProcess(ctx, "nope")
	require.ErrorIs(t, err, resman.ErrNotRegistered)
	var re *resman.ResourceError
	require.ErrorAs(t, err, &re)
	require.Equal(t, resman.KindProcess, re.Kind)
	require.Equal(t, "nope", re.Key)
	require.Equal(t, "stop", re.Op)
	require.Equal(t, local.StopProcess(ctx, "nope").Error(), err.Error())

	require.ErrorIs(t, c.RestartProcess(ctx, "nope"), resman.ErrNotRegistered)
	code, err := c.WaitProcess(ctx, "nope")
	require.ErrorIs(t, err, resman.ErrNotRegistered)
	require.Equal(t, -1, code)
	_, err = c.Tail(ctx, "nope", 1)
	require.ErrorIs(t, err, resman.ErrNotRegistered)

	require.NoError(t, c.Supervise(ctx, "a", sleeper()))
	err = c.Supervise(ctx, "a", sleeper())
	require.ErrorIs(t, err, resman.ErrAlreadyRegistered)
	require.ErrorAs(t, err, &re)
	require.Equal(t, "supervise", re.Op)

	err = c.Supervise(ctx, "empty", resman.ProcessSpec{})
	require.ErrorIs(t, err, resman.ErrInvalid)
	require.ErrorIs(t, c.StopProcess(ctx, "a", resman.WithTimeout(-time.Second)), resman.ErrInvalid)
	require.ErrorIs(t, c.Supervise(ctx, "bad", sleeper(), resman.WithRestart(resman.RestartPolicy{Backoff: -1})), resman.ErrInvalid)

	// A Func ready check cannot travel: refused here, nothing sent.
	err = c.Supervise(ctx, "func", sleeper(), resman.WithReady(resman.ReadyCheck{Func: func(context.Context) error { return nil }}))
	require.ErrorIs(t, err, resman.ErrInvalid)
	st, err := c.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Processes, 1)

	// A give-up: ErrRestartLimit with the last exit code.
	require.NoError(t, c.Supervise(ctx, "flaky", resman.ProcessSpec{Command: []string{"sh", "-c", "exit 1"}},
		resman.WithRestart(resman.RestartPolicy{Mode: resman.RestartOnFailure, Backoff: time.Millisecond, MaxRestarts: 1, Window: time.Minute})))
	code, err = c.WaitProcess(ctx, "flaky")
	require.ErrorIs(t, err, resman.ErrRestartLimit)
	require.Equal(t, 1, code)

	// The caller's deadline travels: the node's wait ends with it.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = c.WaitProcess(short, "a")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorAs(t, err, &re)
	require.Equal(t, "wait", re.Op)

	// CleanupAll's failures come back joined, each a *ResourceError.
	require.NoError(t, c.CleanupAll(ctx))
	require.True(t, errors.Is(c.StopProcess(ctx, "a"), resman.ErrNotRegistered))
}

// TestBigStatus: a Status of more than 4 MiB (gRPC's default limit) comes
// through.
func TestBigStatus(t *testing.T) {
	c, _ := client(t)
	ctx := ctxT(t)
	const n = 16
	long := strings.Repeat("k", 300<<10)
	for i := range n {
		require.NoError(t, c.Supervise(ctx, long+string(rune('a'+i)), sleeper()))
	}
	st, err := c.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Processes, n)
	size := 0
	for _, p := range st.Processes {
		size += len(p.Key)
		require.True(t, alive(p.PID))
	}
	require.Greater(t, size, 4<<20)
	pids := pidsOf(t, st)
	require.NoError(t, c.CleanupAll(ctx))
	requireGone(t, pids...)
}

// TestMessageLimits: a reply over a node's share of MaxMessageBytes is
// refused with ErrInvalid, and so is a request over the client's; the
// connection and the node carry on.
func TestMessageLimits(t *testing.T) {
	c, _ := client(t, "-max", "1048576") // an eighth, less the envelope's slack: 112 KiB per reply
	ctx := ctxT(t)
	long := strings.Repeat("k", 80<<10)
	require.NoError(t, c.Supervise(ctx, long+"a", sleeper()))
	st, err := c.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Processes, 1)
	require.NoError(t, c.Supervise(ctx, long+"b", sleeper()))
	_, err = c.Status(ctx)
	require.ErrorIs(t, err, resman.ErrInvalid)
	require.Contains(t, err.Error(), "limit")

	huge := resman.ProcessSpec{Command: []string{"true"}, Env: []string{"X=" + strings.Repeat("x", 9<<20)}}
	err = c.Supervise(ctx, "huge", huge)
	require.ErrorIs(t, err, resman.ErrInvalid)

	require.NoError(t, c.StopProcess(ctx, long+"b"))
	st, err = c.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Processes, 1)
	require.NoError(t, c.CleanupAll(ctx))
}
