package resman_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

type ctxKey struct{}

func TestStartTask(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	got := make(chan any, 1)
	task := resman.StartTask(parent, func(ctx context.Context) error {
		got <- ctx.Value(ctxKey{})
		<-ctx.Done()
		return errors.New("bye")
	})
	require.Equal(t, "v", <-got, "values are kept")
	cancel() // the parent's cancellation is not inherited
	select {
	case <-task.Done():
		t.Fatal("task must not end with its parent context")
	case <-time.After(20 * time.Millisecond):
	}
	require.NoError(t, task.Err(), "nil until done")
	task.Cancel()
	require.EqualError(t, task.Wait(context.Background()), "bye")
	require.EqualError(t, task.Err(), "bye")

	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	blocked := resman.StartTask(context.Background(), func(ctx context.Context) error { <-ctx.Done(); return nil })
	require.ErrorIs(t, blocked.Wait(short), context.Canceled)
	blocked.Cancel()
	require.NoError(t, blocked.Wait(context.Background()))

	require.ErrorIs(t, resman.StartTask(context.Background(), nil).Wait(context.Background()), resman.ErrInvalid)
}

func TestCancelTaskCooperative(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	task, err := m.Go(ctx, "worker", func(ctx context.Context) error {
		<-ctx.Done()
		return fmt.Errorf("stopped: %w", ctx.Err())
	})
	require.NoError(t, err)

	start := time.Now()
	require.NoError(t, m.CancelTask(ctx, "worker", resman.WithTimeout(10*time.Second)), "fn returned in time: nil, whatever it returned")
	require.Less(t, time.Since(start), time.Second)
	require.ErrorIs(t, task.Err(), context.Canceled)
	_, err = m.UnregisterTask(ctx, "worker")
	require.ErrorIs(t, err, resman.ErrNotRegistered)
}

func TestCancelTaskIgnoringContextTimesOut(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	release := make(chan struct{})
	defer close(release)
	_, err := m.Go(ctx, "deaf", func(context.Context) error { <-release; return nil })
	require.NoError(t, err)

	grace := 200 * time.Millisecond
	start := time.Now()
	err = m.CancelTask(ctx, "deaf", resman.WithTimeout(grace))
	require.GreaterOrEqual(t, time.Since(start), grace)
	require.ErrorIs(t, err, resman.ErrTimeout)
	var re *resman.ResourceError
	require.ErrorAs(t, err, &re)
	require.Equal(t, resman.KindTask, re.Kind)
	require.Equal(t, "deaf", re.Key)
	require.Equal(t, "cancel", re.Op)

	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Tasks, "unregistered even on timeout")
}

func TestPanickingTaskIsRecovered(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	task, err := m.Go(ctx, "boom", func(context.Context) error { panic("kaboom") })
	require.NoError(t, err)
	<-task.Done()
	require.ErrorIs(t, task.Err(), resman.ErrPanicked)
	var pe *resman.PanicError
	require.ErrorAs(t, task.Err(), &pe)
	require.Equal(t, "kaboom", pe.Value)
	require.Contains(t, string(pe.Stack), "task_test.go")

	require.Eventually(t, func() bool {
		st, err := m.Status(ctx)
		return err == nil && len(st.Tasks) == 1 && st.Tasks[0].State == resman.StateExited
	}, 5*time.Second, time.Millisecond)
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, st.Tasks[0].Err, resman.ErrPanicked)

	// The manager keeps working.
	_, err = m.Go(ctx, "next", func(context.Context) error { return nil })
	require.NoError(t, err)
	require.NoError(t, m.CancelTask(ctx, "boom"))
	require.NoError(t, m.CancelTask(ctx, "next"))
}

func TestRegisterAndUnregisterTask(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	task := resman.StartTask(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil })
	defer task.Cancel()
	require.NoError(t, m.RegisterTask(ctx, "t", task))
	require.ErrorIs(t, m.RegisterTask(ctx, "t", task), resman.ErrAlreadyRegistered)

	got, err := m.UnregisterTask(ctx, "t")
	require.NoError(t, err)
	require.Same(t, task, got)
	select {
	case <-task.Done():
		t.Fatal("unregister must not cancel the task")
	default:
	}
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Tasks)
}

func TestGoDuplicateKeyNeverRuns(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	_, err := m.Go(ctx, "t", func(ctx context.Context) error { <-ctx.Done(); return nil })
	require.NoError(t, err)
	ran := make(chan struct{}, 1)
	task, err := m.Go(ctx, "t", func(context.Context) error { ran <- struct{}{}; return nil })
	require.ErrorIs(t, err, resman.ErrAlreadyRegistered)
	require.Nil(t, task)
	require.NoError(t, m.CancelTask(ctx, "t"))
	select {
	case <-ran:
		t.Fatal("fn ran although its key was taken")
	default:
	}
}

func TestTaskReturningOnItsOwnShowsExited(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	_, err := m.Go(ctx, "quick", func(context.Context) error { return errors.New("done early") })
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := m.Status(ctx)
		return err == nil && len(st.Tasks) == 1 && st.Tasks[0].State == resman.StateExited
	}, 5*time.Second, time.Millisecond)
	st, _ := m.Status(ctx)
	require.EqualError(t, st.Tasks[0].Err, "done early")
	require.NoError(t, m.CancelTask(ctx, "quick"))
}
