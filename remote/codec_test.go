package remote

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/messages"
	"github.com/resman-dev/resman/remote/internal/wire"
)

// roundTrip encodes err, marshals and unmarshals it as a peer would, and
// decodes it.
func roundTrip(t *testing.T, err error) error {
	t.Helper()
	b, merr := proto.Marshal(&wire.Reply{Errors: encodeErr(err)})
	require.NoError(t, merr)
	var r wire.Reply
	require.NoError(t, proto.Unmarshal(b, &r))
	return decodeErr(r.Errors)
}

func TestErrorsRoundTrip(t *testing.T) {
	sentinels := []error{resman.ErrAlreadyRegistered, resman.ErrNotRegistered, resman.ErrInvalid, resman.ErrTimeout,
		resman.ErrPanicked, resman.ErrClosed, resman.ErrRestartLimit, resman.ErrUnreachable, context.Canceled, context.DeadlineExceeded}
	for _, s := range sentinels {
		t.Run(s.Error(), func(t *testing.T) {
			in := messages.NewError(resman.KindProcess, "k", "stop", s)
			out := roundTrip(t, in)
			require.ErrorIs(t, out, s)
			var re *resman.ResourceError
			require.ErrorAs(t, out, &re)
			require.Equal(t, in, out) // the very sentinel value, not a copy
			// Wrapped with a detail, as ErrInvalid usually is.
			in = messages.Invalid(resman.KindTask, "t", "supervise", "a detail")
			out = roundTrip(t, in)
			require.ErrorIs(t, out, resman.ErrInvalid)
			require.Equal(t, in.Error(), out.Error())
		})
	}

	cases := []struct {
		name string
		err  error
		is   []error
	}{
		{"nil", nil, nil},
		{"plain", errors.New("boom"), nil},
		{"wrapped sentinel", fmt.Errorf("resman: status: %w", resman.ErrClosed), []error{resman.ErrClosed}},
		{"joined", errors.Join(messages.NewError(resman.KindProcess, "a", "stop", resman.ErrTimeout),
			messages.NewError(resman.KindCustomResource, "b", "cleanup", errors.New("disk full"))), []error{resman.ErrTimeout}},
		{"panic", &resman.PanicError{Value: "oops", Stack: []byte("stack")}, []error{resman.ErrPanicked}},
		{"wrapper of a resource error", fmt.Errorf("context: %w", messages.NewError(resman.KindProcess, "a", "wait", resman.ErrNotRegistered)), []error{resman.ErrNotRegistered}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := roundTrip(t, c.err)
			if c.err == nil {
				require.NoError(t, out)
				return
			}
			require.Error(t, out)
			for _, s := range c.is {
				require.ErrorIs(t, out, s)
			}
			if c.name != "wrapper of a resource error" {
				require.Equal(t, c.err.Error(), out.Error())
			}
		})
	}
}

func TestStatusAndEventRoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 123456789)
	st := resman.Status{
		Processes: []resman.ProcessStatus{{Key: "p", PID: 42, State: resman.StateRestarting, RegisteredAt: now, ExitCode: -1,
			Restarts: 3, LastExit: now.Add(time.Second), DependsOn: []resman.Ref{{Kind: resman.KindTask, Key: "t"}}, DroppedLines: 7}},
		Tasks: []resman.TaskStatus{{Key: "t", State: resman.StateExited, RegisteredAt: now,
			Err: messages.NewError(resman.KindTask, "t", "run", resman.ErrPanicked)}},
		CustomResources: []resman.CustomResourceStatus{{Key: "c", Type: "*os.File", State: resman.StateStopping, RegisteredAt: now}},
	}
	b, err := proto.Marshal(encodeStatus(st))
	require.NoError(t, err)
	var w wire.Status
	require.NoError(t, proto.Unmarshal(b, &w))
	got := decodeStatus(&w)
	require.ErrorIs(t, got.Tasks[0].Err, resman.ErrPanicked)
	got.Tasks[0].Err, st.Tasks[0].Err = nil, nil
	require.Equal(t, st.Processes[0].RegisteredAt.UnixNano(), got.Processes[0].RegisteredAt.UnixNano())
	for _, s := range []*resman.Status{&st, &got} { // compare instants, not monotonic readings or locations
		s.Processes[0].RegisteredAt, s.Processes[0].LastExit = s.Processes[0].RegisteredAt.UTC(), s.Processes[0].LastExit.UTC()
		s.Tasks[0].RegisteredAt = s.Tasks[0].RegisteredAt.UTC()
		s.CustomResources[0].RegisteredAt = s.CustomResources[0].RegisteredAt.UTC()
	}
	require.Equal(t, st, got)
	require.Equal(t, resman.Status{}, decodeStatus(encodeStatus(resman.Status{})))
	require.True(t, decodeStatus(&wire.Status{Processes: []*wire.ProcessStatus{{Key: "z"}}}).Processes[0].LastExit.IsZero())

	e := resman.Event{Kind: resman.KindProcess, Key: "p", Type: resman.EventRestarting, At: now, PID: 9, ExitCode: 1,
		Err: resman.ErrRestartLimit, Delay: time.Second, Restarts: 2}
	ge := decodeEvent(encodeEvent(&e))
	require.ErrorIs(t, ge.Err, resman.ErrRestartLimit)
	require.True(t, ge.At.Equal(e.At))
	ge.At, e.At = time.Time{}, time.Time{}
	require.Equal(t, e, ge)
}

func TestLifecycleRoundTrip(t *testing.T) {
	var l messages.Lifecycle
	for _, o := range []resman.ResourceOption{
		resman.WithRestart(resman.RestartPolicy{Mode: resman.RestartAlways, Backoff: time.Millisecond, MaxBackoff: time.Second,
			ResetAfter: time.Minute, MaxRestarts: 4, Window: time.Hour}),
		resman.DependsOn(resman.KindProcess, "a", "b"),
		resman.WithStopSignal(syscall.SIGINT),
		resman.WithGracePeriod(3 * time.Second),
		resman.WithReady(resman.ReadyCheck{HTTP: "http://127.0.0.1:1/", Timeout: time.Second, Interval: time.Millisecond}),
	} {
		o(&l)
	}
	w, err := encodeLifecycle("k", l)
	require.NoError(t, err)
	var back messages.Lifecycle
	for _, o := range decodeLifecycle(w) {
		o(&back)
	}
	require.Equal(t, l, back)

	l.Ready = &resman.ReadyCheck{Func: func(context.Context) error { return nil }}
	_, err = encodeLifecycle("k", l)
	require.ErrorIs(t, err, resman.ErrInvalid)
	require.Nil(t, decodeLifecycle(nil))
}
