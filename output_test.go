package resman_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/messages"
)

// lineLog is a slog.Handler that keeps every record with its attributes.
type lineLog struct {
	mu   sync.Mutex
	recs []map[string]string
}

func (h *lineLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *lineLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *lineLog) WithGroup(string) slog.Handler            { return h }
func (h *lineLog) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message, "level": r.Level.String()}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	h.recs = append(h.recs, m)
	h.mu.Unlock()
	return nil
}

func (h *lineLog) withKey(key string) []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.recs {
		if r["key"] == key {
			out = append(out, r)
		}
	}
	return out
}

func TestSuperviseCapturesOutput(t *testing.T) {
	system := newSystem(t)
	var mu sync.Mutex
	var hooked []resman.OutputLine
	logs := &lineLog{}
	m, err := resman.New(resman.WithActorSystem(system), resman.WithLogger(slog.New(logs)),
		resman.WithOutputHook(func(l resman.OutputLine) { mu.Lock(); hooked = append(hooked, l); mu.Unlock() }))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Shutdown(context.Background())) })
	ctx := ctxT(t)
	sub, got := spawnProbe(t, system)
	pp, replies := spawnProbe(t, system)
	require.NoError(t, request[*messages.SubscribeResponse](t, system, pp, m.PID(), replies, &messages.Subscribe{Subscriber: sub, Output: true}).Err)

	require.NoError(t, m.Supervise(ctx, "p", spec(`printf 'a\r\nb\n\n'; printf 'oops\n' >&2; printf 'partial'`)))
	_, err = m.WaitProcess(ctx, "p")
	require.NoError(t, err)
	want := []struct{ stream, text string }{{"stdout", "a"}, {"stdout", "b"}, {"stdout", ""}, {"stderr", "oops"}, {"stdout", "partial"}}
	var tail []resman.OutputLine
	require.Eventually(t, func() bool {
		tail, err = m.Tail(ctx, "p", 100)
		require.NoError(t, err)
		return len(tail) == len(want)
	}, 10*time.Second, time.Millisecond)
	byStream := func(lines []resman.OutputLine, stream string) []string {
		var out []string
		for _, l := range lines {
			if l.Stream == stream {
				out = append(out, l.Text)
			}
		}
		return out
	}
	require.Equal(t, []string{"a", "b", "", "partial"}, byStream(tail, "stdout"), "CR removed, empty line kept, last partial line delivered")
	require.Equal(t, []string{"oops"}, byStream(tail, "stderr"))
	pid := tail[0].PID
	require.NotZero(t, pid)
	for _, l := range tail {
		require.Equal(t, "p", l.Key)
		require.Equal(t, pid, l.PID)
		require.False(t, l.At.IsZero())
	}
	last, err := m.Tail(ctx, "p", 2)
	require.NoError(t, err)
	require.Equal(t, tail[3:], last, "the last n, oldest first")

	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(hooked) == len(want) }, 10*time.Second, time.Millisecond)
	mu.Lock()
	require.Equal(t, byStream(tail, "stdout"), byStream(hooked, "stdout"), "the hook gets them in order")
	mu.Unlock()
	require.Eventually(t, func() bool { return len(logs.withKey("p")) >= len(want)+0 }, 10*time.Second, time.Millisecond)
	var logged []string
	for _, r := range logs.withKey("p") {
		if r["stream"] != "" {
			require.Equal(t, "INFO", r["level"])
			require.NotEmpty(t, r["pid"])
			logged = append(logged, r["msg"])
		}
	}
	require.Contains(t, logged, "oops")
	require.Contains(t, logged, "partial")

	var fromActor []string
	for len(fromActor) < len(want) {
		select {
		case msg := <-got:
			if l, ok := msg.(*messages.OutputLine); ok {
				fromActor = append(fromActor, l.Text)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the subscriber got %v", fromActor)
		}
	}
	require.ElementsMatch(t, []string{"a", "b", "", "oops", "partial"}, fromActor)
	require.NoError(t, m.StopProcess(ctx, "p"))
}

func TestSlowOutputHookNeverSlowsTheProcess(t *testing.T) {
	gate := make(chan struct{})
	var delivered atomic.Int64
	m := newManager(t, resman.WithOutputHook(func(resman.OutputLine) { <-gate; delivered.Add(1) }))
	ctx := ctxT(t)
	const lines = 200_000
	start := time.Now()
	require.NoError(t, m.Supervise(ctx, "seq", resman.ProcessSpec{Command: []string{"seq", "1", "200000"}}))
	_, err := m.WaitProcess(ctx, "seq")
	require.NoError(t, err)
	require.Less(t, time.Since(start), 5*time.Second, "the process ran at its own pace with the hook stuck")
	close(gate)
	require.Eventually(t, func() bool {
		ps, _ := processStatus(t, m, "seq")
		return int64(ps.DroppedLines)+delivered.Load() == lines
	}, 20*time.Second, 5*time.Millisecond, "every line is delivered or counted as dropped")
	ps, _ := processStatus(t, m, "seq")
	require.Positive(t, ps.DroppedLines)
	tail, err := m.Tail(ctx, "seq", 1000)
	require.NoError(t, err)
	require.Len(t, tail, 1000, "the tail keeps the last 1,000 lines")
	require.Equal(t, "200000", tail[999].Text)
}

func TestOutputReadyCheck(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	start := time.Now()
	require.NoError(t, m.Supervise(ctx, "srv", spec(`echo starting; sleep 0.2; echo "listening on :8080"; exec sleep 300`),
		resman.WithReady(resman.ReadyCheck{Output: `listening on :\d+`})))
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	tail, err := m.Tail(ctx, "srv", 10)
	require.NoError(t, err)
	require.Equal(t, "listening on :8080", tail[len(tail)-1].Text)
	require.NoError(t, m.StopProcess(ctx, "srv"))
}

func TestOutputBadInput(t *testing.T) {
	_, err := resman.New(resman.WithOutputHook(nil))
	require.ErrorIs(t, err, resman.ErrInvalid)
	m := newManager(t)
	ctx := ctxT(t)
	require.NoError(t, m.Supervise(ctx, "p", spec("exec sleep 300")))
	require.NoError(t, m.StartProcess(ctx, "plain", sh("exec sleep 300")))
	for _, n := range []int{0, -1} {
		_, err := m.Tail(ctx, "p", n)
		require.ErrorIs(t, err, resman.ErrInvalid)
	}
	_, err = m.Tail(ctx, "nobody", 10)
	require.ErrorIs(t, err, resman.ErrNotRegistered)
	_, err = m.Tail(ctx, "plain", 10)
	require.ErrorIs(t, err, resman.ErrInvalid)
	require.True(t, strings.Contains(err.Error(), "Supervise"))
	require.NoError(t, m.CleanupAll(ctx))
}

func TestOutputHookHasEveryLineWhenWaitProcessReturns(t *testing.T) {
	// A program that exits once its processes have finished (the resman
	// command) must not lose their last lines: by the time WaitProcess
	// returns, the hook has been handed every line of the run.
	const lines = 500
	var mu sync.Mutex
	var seen []string
	m := newManager(t, resman.WithOutputHook(func(l resman.OutputLine) { mu.Lock(); seen = append(seen, l.Text); mu.Unlock() }))
	ctx := ctxT(t)
	require.NoError(t, m.Supervise(ctx, "p", resman.ProcessSpec{Command: []string{"seq", "1", "500"}}))
	_, err := m.WaitProcess(ctx, "p")
	require.NoError(t, err)
	mu.Lock()
	n := len(seen)
	mu.Unlock()
	require.Equal(t, lines, n, "lines the hook had when WaitProcess returned")
}

func TestOutputHookHasTheLastLinesWhenStopProcessReturns(t *testing.T) {
	// The lines a process writes as it stops reach the hook before the
	// stop returns. Only stdout is kept: the shell may report its sleep's
	// SIGTERM ("Terminated") on stderr, whose lines keep no order with
	// stdout's.
	var mu sync.Mutex
	var seen []string
	m := newManager(t, resman.WithOutputHook(func(l resman.OutputLine) {
		if l.Stream == "stdout" {
			mu.Lock()
			seen = append(seen, l.Text)
			mu.Unlock()
		}
	}))
	ctx := ctxT(t)
	require.NoError(t, m.Supervise(ctx, "p", spec(`trap 'seq 1 300; echo bye; exit 0' TERM; echo up; while :; do sleep 0.01; done`),
		resman.WithReady(resman.ReadyCheck{Output: "^up$"})))
	require.NoError(t, m.StopProcess(ctx, "p"))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, "bye", seen[len(seen)-1], "the last line")
	require.GreaterOrEqual(t, len(seen), 302)
	require.Equal(t, "300", seen[len(seen)-2])
}
