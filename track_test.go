package resman_test

import (
	"context"
	"errors"
	"os/exec"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

func TestTrackProcess(t *testing.T) {
	errFn := errors.New("fn failed")
	for _, tc := range []struct {
		name  string
		fn    func(*exec.Cmd) error
		want  error
		panic bool
	}{
		{"return", func(*exec.Cmd) error { return nil }, nil, false},
		{"error", func(*exec.Cmd) error { return errFn }, errFn, false},
		{"panic", func(*exec.Cmd) error { panic("in fn") }, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t)
			ctx := ctxT(t)
			cmd := sh("exec sleep 300")
			var pid int
			fn := func(c *exec.Cmd) error {
				pid = c.Process.Pid
				require.True(t, alive(pid), "running inside the scope")
				return tc.fn(c)
			}
			if tc.panic {
				require.PanicsWithValue(t, "in fn", func() { _ = m.TrackProcess(ctx, "p", cmd, fn) })
			} else {
				err := m.TrackProcess(ctx, "p", cmd, fn)
				if tc.want == nil {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, tc.want)
				}
			}
			require.False(t, exists(pid), "stopped and reaped after the scope")
			st, err := m.Status(ctx)
			require.NoError(t, err)
			require.Empty(t, st.Processes)
		})
	}
}

func TestTrackProcessAlreadyStarted(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	cmd := started(t, exec.Command("sleep", "300"))
	require.NoError(t, m.TrackProcess(ctx, "p", cmd, func(*exec.Cmd) error { return nil }))
	require.False(t, exists(cmd.Process.Pid))
}

func TestTrackTask(t *testing.T) {
	errFn := errors.New("fn failed")
	for _, tc := range []struct {
		name  string
		fn    func(*resman.Task) error
		want  error
		panic bool
	}{
		{"return", func(*resman.Task) error { return nil }, nil, false},
		{"error", func(*resman.Task) error { return errFn }, errFn, false},
		{"panic", func(*resman.Task) error { panic("in fn") }, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t)
			ctx := ctxT(t)
			task := resman.StartTask(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil })
			if tc.panic {
				require.PanicsWithValue(t, "in fn", func() { _ = m.TrackTask(ctx, "t", task, tc.fn) })
			} else {
				err := m.TrackTask(ctx, "t", task, tc.fn)
				if tc.want == nil {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, tc.want)
				}
			}
			select {
			case <-task.Done():
			default:
				t.Fatal("the task must be cancelled and done after the scope")
			}
		})
	}
}

func TestTrackCustomResource(t *testing.T) {
	errFn := errors.New("fn failed")
	errCleanup := errors.New("cleanup failed")
	for _, tc := range []struct {
		name       string
		fn         func(any) error
		cleanupErr error
		panic      bool
	}{
		{"return", func(any) error { return nil }, nil, false},
		{"error", func(any) error { return errFn }, nil, false},
		{"error and cleanup error", func(any) error { return errFn }, errCleanup, false},
		{"panic", func(any) error { panic("in fn") }, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t)
			ctx := ctxT(t)
			var cleaned atomic.Int32
			cleanup := func(context.Context, any) error { cleaned.Add(1); return tc.cleanupErr }
			if tc.panic {
				require.PanicsWithValue(t, "in fn", func() { _ = m.TrackCustomResource(ctx, "r", 1, cleanup, tc.fn) })
			} else {
				err := m.TrackCustomResource(ctx, "r", 1, cleanup, tc.fn)
				want := tc.fn(nil)
				if want == nil && tc.cleanupErr == nil {
					require.NoError(t, err)
				}
				if want != nil {
					require.ErrorIs(t, err, want)
				}
				if tc.cleanupErr != nil {
					require.ErrorIs(t, err, tc.cleanupErr, "fn's error is joined with the cleanup's")
				}
			}
			require.EqualValues(t, 1, cleaned.Load())
		})
	}
}

func TestTrackScopeEndedByFnItself(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	var cleaned atomic.Int32
	err := m.TrackCustomResource(ctx, "r", 1, func(context.Context, any) error { cleaned.Add(1); return nil },
		func(any) error { return m.CleanupCustomResource(ctx, "r") })
	require.NoError(t, err, "a scope whose fn already cleaned up is fine")
	require.EqualValues(t, 1, cleaned.Load())
}
