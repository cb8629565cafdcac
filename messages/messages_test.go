package messages_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resman-dev/resman/messages"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStrings(t *testing.T) {
	for want, s := range map[string]interface{ String() string }{
		"process":         messages.KindProcess,
		"task":            messages.KindTask,
		"custom resource": messages.KindCustomResource,
		"running":         messages.StateRunning,
		"stopping":        messages.StateStopping,
		"exited":          messages.StateExited,
		"registered":      messages.EventRegistered,
	} {
		require.Equal(t, want, s.String())
	}
	require.Equal(t, "stopped", messages.EventStopped.String())
	require.Equal(t, "unregistered", messages.EventUnregistered.String())
	require.Equal(t, "failed", messages.EventFailed.String())
	require.Equal(t, "exited", messages.EventExited.String())
}

func TestResourceError(t *testing.T) {
	err := messages.Invalid(messages.KindProcess, "k", "register", "nil cmd")
	require.EqualError(t, err, `resman: register process "k": invalid argument: nil cmd`)
	require.ErrorIs(t, err, messages.ErrInvalid)
	var re *messages.ResourceError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "register", re.Op)
}

func TestPanicError(t *testing.T) {
	cause := errors.New("inner")
	task := messages.StartTask(context.Background(), func(context.Context) error { panic(cause) })
	err := task.Wait(context.Background())
	require.ErrorIs(t, err, messages.ErrPanicked)
	require.ErrorIs(t, err, cause, "an error panic value is matched too")
	var pe *messages.PanicError
	require.ErrorAs(t, err, &pe)
	require.Contains(t, pe.Error(), "panicked: inner")
}

func TestOnDone(t *testing.T) {
	gate := make(chan struct{})
	task := messages.StartTask(context.Background(), func(context.Context) error { <-gate; return errors.New("r") })
	got := make(chan error, 2)
	task.OnReturn(func(err error) { got <- err })
	after := make(chan bool, 1)
	task.OnDone(func(error) {
		select {
		case <-task.Done():
			after <- true
		default:
			after <- false
		}
	})
	remove := task.OnDone(func(error) { t.Error("removed hook ran") })
	remove()
	close(gate)
	<-task.Done()
	select {
	case err := <-got:
		require.EqualError(t, err, "r")
	default:
		t.Fatal("the hook must have run before Done closed")
	}
	require.True(t, <-after, "OnDone hooks see Done closed")
	task.OnDone(func(err error) { got <- err }) // already done: runs at once
	require.EqualError(t, <-got, "r")
}

func TestNilContextAndNilTask(t *testing.T) {
	//lint:ignore SA1012 a nil context is bad input that must not panic
	task := messages.StartTask(nil, func(ctx context.Context) error { return ctx.Err() })
	require.NoError(t, task.Wait(context.Background()))
	var nilTask *messages.Task
	require.NotPanics(t, nilTask.Cancel)
}
