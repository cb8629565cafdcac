package resman_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

func TestCleanupCustomResource(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	var got any
	var deadline time.Time
	var hasDeadline bool
	require.NoError(t, m.RegisterCustomResource(ctx, "conn", "a connection", func(ctx context.Context, r any) error {
		got = r
		deadline, hasDeadline = ctx.Deadline()
		return nil
	}))
	start := time.Now()
	require.NoError(t, m.CleanupCustomResource(ctx, "conn", resman.WithTimeout(3*time.Second)))
	require.Equal(t, "a connection", got)
	require.True(t, hasDeadline, "the cleanup gets the grace-period deadline")
	require.WithinDuration(t, start.Add(3*time.Second), deadline, time.Second)
	require.ErrorIs(t, m.CleanupCustomResource(ctx, "conn"), resman.ErrNotRegistered)
}

func TestCleanupCustomResourceFailures(t *testing.T) {
	errDisk := errors.New("disk on fire")
	release := make(chan struct{})
	defer close(release)
	for _, tc := range []struct {
		name    string
		cleanup resman.CleanupFunc
		is      error
	}{
		{"error", func(context.Context, any) error { return errDisk }, errDisk},
		{"panic", func(context.Context, any) error { panic("oops") }, resman.ErrPanicked},
		{"hang", func(context.Context, any) error { <-release; return nil }, resman.ErrTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t)
			ctx := ctxT(t)
			require.NoError(t, m.RegisterCustomResource(ctx, "r", 1, tc.cleanup))
			start := time.Now()
			err := m.CleanupCustomResource(ctx, "r", resman.WithTimeout(200*time.Millisecond))
			require.Less(t, time.Since(start), 2*time.Second)
			require.ErrorIs(t, err, tc.is)
			var re *resman.ResourceError
			require.ErrorAs(t, err, &re)
			require.Equal(t, resman.KindCustomResource, re.Kind)
			require.Equal(t, "r", re.Key)
			require.Equal(t, "cleanup", re.Op)
			st, err := m.Status(ctx)
			require.NoError(t, err)
			require.Empty(t, st.CustomResources, "unregistered in every case")
		})
	}
}

type closer struct{ closed atomic.Int32 }

func (c *closer) Close() error { c.closed.Add(1); return nil }

func TestRegisterCloser(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	c := &closer{}
	require.NoError(t, m.RegisterCloser(ctx, "file", c))
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, "*resman_test.closer", st.CustomResources[0].Type)
	require.NoError(t, m.CleanupCustomResource(ctx, "file"))
	require.EqualValues(t, 1, c.closed.Load())
}

func TestUnregisterCustomResourceDoesNotClean(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	c := &closer{}
	require.NoError(t, m.RegisterCloser(ctx, "file", c))
	got, err := m.UnregisterCustomResource(ctx, "file")
	require.NoError(t, err)
	require.Same(t, c, got)
	require.NoError(t, m.CleanupAll(ctx))
	require.EqualValues(t, 0, c.closed.Load())
}
