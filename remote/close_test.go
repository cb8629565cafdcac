package remote_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resman-dev/resman"
)

// TestCloseIsIdempotent closes a node that served, drove and subscribed,
// twice, and checks that nothing of it is left running (goleak) — in a
// child test process, whose shared node is the one closed (a process
// starts one protoactor remote: see shared).
func TestCloseIsIdempotent(t *testing.T) {
	if os.Getenv("RESMAN_REMOTE_CLOSE_CHILD") == "1" {
		closeChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCloseIsIdempotent$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "RESMAN_REMOTE_CLOSE_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoErrorf(t, err, "child:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestCloseIsIdempotent")
}

func closeChild(t *testing.T) {
	c, p := client(t)
	ctx := ctxT(t)
	require.NoError(t, c.Supervise(ctx, "a", sleeper()))
	stop, err := c.Subscribe(ctx, func(resman.Event) {})
	require.NoError(t, err)
	m, err := resman.New(resman.WithActorSystem(shared.System()))
	require.NoError(t, err)
	require.NoError(t, shared.Serve(m))

	require.NoError(t, shared.Close())
	require.NoError(t, shared.Close())
	stop()
	require.NoError(t, m.Close())

	require.ErrorIs(t, c.StopProcess(ctx, "a"), resman.ErrClosed)
	_, err = c.Status(ctx)
	require.ErrorIs(t, err, resman.ErrClosed)
	_, err = shared.Manager("127.0.0.1:1").Status(ctx)
	require.ErrorIs(t, err, resman.ErrClosed)
	_, err = c.Subscribe(ctx, func(resman.Event) {})
	require.ErrorIs(t, err, resman.ErrClosed)
	require.ErrorIs(t, shared.Serve(m), resman.ErrClosed)
	require.NoError(t, p.stdin.Close()) // the other node, and the test's goroutine that reaps it
	<-p.done
	goleak.VerifyNone(t)
}
