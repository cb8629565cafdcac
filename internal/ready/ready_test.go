package ready

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resman-dev/resman/messages"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// result runs wait on a goroutine of its own and hands its error back;
// failed sees each failed poll there.
func result(ctx context.Context, c messages.ReadyCheck, lines <-chan string, failed func(error)) <-chan error {
	done := make(chan error, 1)
	go func() { done <- wait(ctx, c, lines, failed) }() // ends when wait does
	return done
}

// await returns what done delivers, failing the test after d.
func await(t *testing.T, done <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Wait still running after %v", d)
		return nil
	}
}

// freeAddr returns a loopback address nobody listens on (a moment ago).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestTCPReadyOnceListening(t *testing.T) {
	addr := freeAddr(t)
	refused := make(chan error, 1)
	done := result(context.Background(), messages.ReadyCheck{TCP: addr, Interval: 10 * time.Millisecond, Timeout: 10 * time.Second}, nil,
		func(err error) {
			select {
			case refused <- err:
			default:
			}
		})
	// Listen only after a poll has failed.
	require.ErrorContains(t, await(t, refused, 5*time.Second), "connection refused")
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	defer ln.Close()
	require.NoError(t, await(t, done, 5*time.Second))
}

func TestTCPTimeout(t *testing.T) {
	addr := freeAddr(t)
	start := time.Now()
	err := Wait(context.Background(), messages.ReadyCheck{TCP: addr, Timeout: 300 * time.Millisecond}, nil)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, messages.ErrTimeout)
	require.ErrorContains(t, err, "not ready within 300ms")
	require.ErrorContains(t, err, "tcp "+addr)
	require.ErrorContains(t, err, "connection refused")
	require.GreaterOrEqual(t, elapsed, 300*time.Millisecond)
	require.Less(t, elapsed, 2*time.Second)
}

func TestHTTPReadyAfter503(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) <= 2 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	var failures []error
	err := wait(context.Background(), messages.ReadyCheck{HTTP: srv.URL + "/healthz", Interval: 10 * time.Millisecond}, nil,
		func(err error) { failures = append(failures, err) })
	require.NoError(t, err)
	require.EqualValues(t, 3, requests.Load())
	require.Len(t, failures, 2)
	require.ErrorContains(t, failures[0], "503 Service Unavailable")
}

func TestHTTPTimeoutSaysStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	err := Wait(context.Background(), messages.ReadyCheck{HTTP: srv.URL, Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond}, nil)
	require.ErrorIs(t, err, messages.ErrTimeout)
	require.ErrorContains(t, err, "500 Internal Server Error")
}

func TestFuncReadyOnThirdCall(t *testing.T) {
	calls := 0 // fn's calls do not overlap: each poll waits for the one before
	fn := func(ctx context.Context) error {
		calls++
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("no deadline")
		}
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}
	err := Wait(context.Background(), messages.ReadyCheck{Func: fn, Interval: time.Millisecond, Timeout: 10 * time.Second}, nil)
	require.NoError(t, err)
	require.Equal(t, 3, calls)
}

func TestFuncPanic(t *testing.T) {
	fn := func(context.Context) error { panic("boom") }
	err := Wait(context.Background(), messages.ReadyCheck{Func: fn, Interval: 10 * time.Millisecond, Timeout: 100 * time.Millisecond}, nil)
	require.ErrorIs(t, err, messages.ErrTimeout)
	require.ErrorContains(t, err, "func panicked: boom")

	// A panic is one failed poll: the next may pass.
	panicked := false
	fn = func(context.Context) error {
		if !panicked {
			panicked = true
			panic("once")
		}
		return nil
	}
	require.NoError(t, Wait(context.Background(), messages.ReadyCheck{Func: fn, Interval: time.Millisecond}, nil))
}

func TestFuncIgnoringCtxIsAbandoned(t *testing.T) {
	release := make(chan struct{})
	returned := make(chan struct{})
	fn := func(context.Context) error {
		defer close(returned)
		<-release
		return nil
	}
	start := time.Now()
	err := Wait(context.Background(), messages.ReadyCheck{Func: fn, Timeout: 100 * time.Millisecond}, nil)
	require.Less(t, time.Since(start), 2*time.Second)
	require.ErrorIs(t, err, messages.ErrTimeout)
	require.ErrorContains(t, err, "func still running after its ctx ended")
	close(release)
	<-returned // its goroutine ends with it (goleak checks)
}

func TestCtxCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	polled := make(chan error, 1)
	fn := func(context.Context) error { return errors.New("never") }
	done := result(ctx, messages.ReadyCheck{Func: fn, Interval: 10 * time.Millisecond}, nil, func(err error) {
		select {
		case polled <- err:
		default:
		}
	})
	require.ErrorContains(t, await(t, polled, 5*time.Second), "never")
	cancel()
	err := await(t, done, time.Second)
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, messages.ErrTimeout)
	require.ErrorContains(t, err, "func: never")

	// A ctx that has already ended: no poll at all.
	err = Wait(ctx, messages.ReadyCheck{Func: func(context.Context) error { panic("polled") }}, nil)
	require.ErrorIs(t, err, context.Canceled)
}

func TestOutputMatch(t *testing.T) {
	lines := make(chan string, 3)
	lines <- "starting"
	lines <- "loading config"
	lines <- "listening on :8080"
	var seen []error
	err := wait(context.Background(), messages.ReadyCheck{Output: `^listening on :\d+$`}, lines, func(err error) { seen = append(seen, err) })
	require.NoError(t, err)
	require.Len(t, seen, 2)
	require.Empty(t, lines)
}

func TestOutputEnded(t *testing.T) {
	lines := make(chan string, 1)
	lines <- "fatal: no config"
	close(lines)
	start := time.Now()
	err := Wait(context.Background(), messages.ReadyCheck{Output: "listening", Timeout: time.Minute}, lines)
	require.Less(t, time.Since(start), time.Second, "fails at once")
	require.ErrorIs(t, err, ErrOutputEnded)
	require.NotErrorIs(t, err, messages.ErrTimeout)
	require.ErrorContains(t, err, `output ended before a line matched "listening"`)
}

func TestOutputTimeout(t *testing.T) {
	lines := make(chan string, 1)
	err := Wait(context.Background(), messages.ReadyCheck{Output: "listening", Timeout: 50 * time.Millisecond}, lines)
	require.ErrorIs(t, err, messages.ErrTimeout)
	require.ErrorContains(t, err, "no output line yet")

	lines <- "still loading"
	err = Wait(context.Background(), messages.ReadyCheck{Output: "listening", Timeout: 50 * time.Millisecond}, lines)
	require.ErrorIs(t, err, messages.ErrTimeout)
	require.ErrorContains(t, err, `the last was "still loading"`)
}

func TestOutputNeedsLines(t *testing.T) {
	err := Wait(context.Background(), messages.ReadyCheck{Output: "x"}, nil)
	require.ErrorIs(t, err, messages.ErrInvalid)
}

func TestInvalidCheckIsNotPolled(t *testing.T) {
	err := Wait(context.Background(), messages.ReadyCheck{}, nil)
	require.ErrorIs(t, err, messages.ErrInvalid)
}

func TestIntervalRespected(t *testing.T) {
	var calls atomic.Int32
	fn := func(context.Context) error {
		calls.Add(1)
		return errors.New("not yet")
	}
	err := Wait(context.Background(), messages.ReadyCheck{Func: fn, Interval: 50 * time.Millisecond, Timeout: 300 * time.Millisecond}, nil)
	require.ErrorIs(t, err, messages.ErrTimeout)
	n := calls.Load()
	require.GreaterOrEqual(t, n, int32(4), "polls")
	require.LessOrEqual(t, n, int32(8), "polls")
}

func TestDefaultInterval(t *testing.T) {
	var calls atomic.Int32
	fn := func(context.Context) error {
		calls.Add(1)
		return errors.New("not yet")
	}
	// 100ms between polls: at most 4 within 350ms (at 0, 100, 200, 300ms).
	err := Wait(context.Background(), messages.ReadyCheck{Func: fn, Timeout: 350 * time.Millisecond}, nil)
	require.ErrorIs(t, err, messages.ErrTimeout)
	n := calls.Load()
	require.GreaterOrEqual(t, n, int32(2), "polls")
	require.LessOrEqual(t, n, int32(4), "polls")
}
