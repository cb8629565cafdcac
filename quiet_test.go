package resman_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

// captureOutput runs f with os.Stdout and os.Stderr sent to a pipe and
// returns what was written.
func captureOutput(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&buf, r); close(done) }()
	defer func() {
		os.Stdout, os.Stderr = oldOut, oldErr
	}()
	f()
	os.Stdout, os.Stderr = oldOut, oldErr
	require.NoError(t, w.Close())
	<-done
	require.NoError(t, r.Close())
	return buf.String()
}

func TestQuietByDefault(t *testing.T) {
	out := captureOutput(t, func() {
		m, err := resman.New(resman.WithDefaultTimeout(100 * time.Millisecond))
		require.NoError(t, err)
		ctx := context.Background()
		require.NoError(t, m.StartProcess(ctx, "p", sh("exec sleep 300")))
		release := make(chan struct{})
		_, err = m.Go(ctx, "deaf", func(context.Context) error { <-release; return nil })
		require.NoError(t, err)
		require.ErrorIs(t, m.CancelTask(ctx, "deaf"), resman.ErrTimeout) // logs a warning, to nobody
		close(release)
		_, err = m.Status(ctx)
		require.NoError(t, err)
		require.NoError(t, m.Shutdown(ctx))
	})
	require.Empty(t, out, "New and normal use print nothing")
}

// recorder is a slog.Handler that keeps every record's message.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	r.msgs = append(r.msgs, b.String())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }
func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

func TestWithLoggerReceivesLogs(t *testing.T) {
	rec := &recorder{}
	var m *resman.Manager
	out := captureOutput(t, func() {
		var err error
		m, err = resman.New(resman.WithLogger(slog.New(rec)), resman.WithDefaultTimeout(50*time.Millisecond))
		require.NoError(t, err)
	})
	require.Empty(t, out)
	ctx := ctxT(t)
	release := make(chan struct{})
	_, err := m.Go(ctx, "deaf", func(context.Context) error { <-release; return nil })
	require.NoError(t, err)
	require.ErrorIs(t, m.CancelTask(ctx, "deaf"), resman.ErrTimeout)
	close(release)
	require.NoError(t, m.Shutdown(ctx))

	logs := rec.all()
	require.Contains(t, logs, "actor system started", "protoactor's logs go to the logger")
	require.Contains(t, logs, "task ignored its cancellation", "so do the library's")
	require.Contains(t, logs, "key=deaf", "with the key of the goroutine left running")
}
