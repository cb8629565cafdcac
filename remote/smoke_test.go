package remote_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	c, _ := client(t)
	ctx := ctxT(t)
	require.NoError(t, c.Supervise(ctx, "a", sleeper()))
	st, err := c.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Processes, 1)
	pids := pidsOf(t, st)
	require.True(t, alive(pids[0]))
	require.NoError(t, c.StopProcess(ctx, "a"))
	requireGone(t, pids...)
}
