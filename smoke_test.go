package resman_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

func TestSmoke(t *testing.T) {
	m := newManager(t, resman.WithDefaultTimeout(time.Second))
	ctx := ctxT(t)
	cmd := sh("sleep 30")
	require.NoError(t, m.StartProcess(ctx, "p", cmd))
	_, err := m.Go(ctx, "t", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	require.NoError(t, err)
	closed := 0
	require.NoError(t, m.RegisterCustomResource(ctx, "c", 42, func(context.Context, any) error { closed++; return nil }))
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Processes, 1)
	require.Len(t, st.Tasks, 1)
	require.Len(t, st.CustomResources, 1)
	require.Equal(t, "int", st.CustomResources[0].Type)
	pid := cmd.Process.Pid
	start := time.Now()
	require.NoError(t, m.StopProcess(ctx, "p"))
	require.Less(t, time.Since(start), 500*time.Millisecond)
	require.False(t, exists(pid))
	require.NoError(t, m.CancelTask(ctx, "t"))
	require.NoError(t, m.CleanupCustomResource(ctx, "c"))
	require.Equal(t, 1, closed)
	err = m.StopProcess(ctx, "p")
	require.True(t, errors.Is(err, resman.ErrNotRegistered), "%v", err)
}
