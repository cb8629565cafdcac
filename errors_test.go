package resman_test

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

func noop(context.Context, any) error { return nil }

func TestBadInputIsErrInvalid(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)

	// Something tracked of each kind, which no bad call may disturb.
	keep := sh("exec sleep 300")
	require.NoError(t, m.StartProcess(ctx, "keep", keep))
	_, err := m.Go(ctx, "keep", func(ctx context.Context) error { <-ctx.Done(); return nil })
	require.NoError(t, err)
	require.NoError(t, m.RegisterCustomResource(ctx, "keep", 1, noop))

	waited := exec.Command("true")
	require.NoError(t, waited.Run())
	running := started(t, exec.Command("sleep", "300"))
	t.Cleanup(func() { _ = running.Process.Kill(); _ = running.Wait() })
	task := resman.StartTask(ctx, func(context.Context) error { return nil })
	var nilCloser io.Closer

	for _, tc := range []struct {
		name string
		kind resman.Kind
		key  string
		op   string
		call func() error
	}{
		{"register process: empty key", resman.KindProcess, "", "register", func() error { return m.RegisterProcess(ctx, "", running) }},
		{"register process: nil cmd", resman.KindProcess, "k", "register", func() error { return m.RegisterProcess(ctx, "k", nil) }},
		{"register process: unstarted cmd", resman.KindProcess, "k", "register", func() error { return m.RegisterProcess(ctx, "k", exec.Command("true")) }},
		{"register process: waited cmd", resman.KindProcess, "k", "register", func() error { return m.RegisterProcess(ctx, "k", waited) }},
		{"start process: empty key", resman.KindProcess, "", "start", func() error { return m.StartProcess(ctx, "", exec.Command("true")) }},
		{"start process: nil cmd", resman.KindProcess, "k", "start", func() error { return m.StartProcess(ctx, "k", nil) }},
		{"start process: started cmd", resman.KindProcess, "k", "start", func() error { return m.StartProcess(ctx, "k", running) }},
		{"stop process: empty key", resman.KindProcess, "", "stop", func() error { return m.StopProcess(ctx, "") }},
		{"stop process: negative timeout", resman.KindProcess, "keep", "stop", func() error { return m.StopProcess(ctx, "keep", resman.WithTimeout(-time.Second)) }},
		{"stop process: bad signal", resman.KindProcess, "keep", "stop", func() error { return m.StopProcess(ctx, "keep", resman.WithSignal(syscall.Signal(-3))) }},
		{"unregister process: empty key", resman.KindProcess, "", "unregister", func() error { _, err := m.UnregisterProcess(ctx, ""); return err }},
		{"wait process: empty key", resman.KindProcess, "", "wait", func() error { _, err := m.WaitProcess(ctx, ""); return err }},
		{"track process: nil fn", resman.KindProcess, "k", "track", func() error { return m.TrackProcess(ctx, "k", exec.Command("true"), nil) }},
		{"register task: empty key", resman.KindTask, "", "register", func() error { return m.RegisterTask(ctx, "", task) }},
		{"register task: nil task", resman.KindTask, "k", "register", func() error { return m.RegisterTask(ctx, "k", nil) }},
		{"go: nil fn", resman.KindTask, "k", "start", func() error { _, err := m.Go(ctx, "k", nil); return err }},
		{"go: empty key", resman.KindTask, "", "start", func() error { _, err := m.Go(ctx, "", func(context.Context) error { return nil }); return err }},
		{"cancel task: negative timeout", resman.KindTask, "keep", "cancel", func() error { return m.CancelTask(ctx, "keep", resman.WithTimeout(-1)) }},
		{"track task: nil fn", resman.KindTask, "k", "track", func() error { return m.TrackTask(ctx, "k", task, nil) }},
		{"register custom: empty key", resman.KindCustomResource, "", "register", func() error { return m.RegisterCustomResource(ctx, "", 1, noop) }},
		{"register custom: nil cleanup", resman.KindCustomResource, "k", "register", func() error { return m.RegisterCustomResource(ctx, "k", 1, nil) }},
		{"register closer: nil closer", resman.KindCustomResource, "k", "register", func() error { return m.RegisterCloser(ctx, "k", nilCloser) }},
		{"cleanup custom: negative timeout", resman.KindCustomResource, "keep", "cleanup", func() error { return m.CleanupCustomResource(ctx, "keep", resman.WithTimeout(-1)) }},
		{"track custom: nil fn", resman.KindCustomResource, "k", "track", func() error { return m.TrackCustomResource(ctx, "k", 1, noop, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = tc.call() })
			require.ErrorIs(t, err, resman.ErrInvalid)
			var re *resman.ResourceError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.kind, re.Kind)
			require.Equal(t, tc.key, re.Key)
			require.Equal(t, tc.op, re.Op)
			require.True(t, strings.HasPrefix(err.Error(), "resman: "+tc.op+" "+tc.kind.String()+" "), err.Error())
		})
	}

	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Processes, 1)
	require.Equal(t, resman.StateRunning, st.Processes[0].State)
	require.Len(t, st.Tasks, 1)
	require.Len(t, st.CustomResources, 1)
	require.True(t, alive(keep.Process.Pid), "nothing tracked is lost")
	require.True(t, alive(running.Process.Pid), "a rejected cmd is left alone")
}

func TestDuplicateAndUnknownKeys(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	require.NoError(t, m.StartProcess(ctx, "k", sh("exec sleep 300")))
	_, err := m.Go(ctx, "k", func(ctx context.Context) error { <-ctx.Done(); return nil })
	require.NoError(t, err, "the same key may exist once per kind")
	require.NoError(t, m.RegisterCustomResource(ctx, "k", 1, noop))

	dup := []func() error{
		func() error { return m.StartProcess(ctx, "k", sh("true")) },
		func() error {
			cmd := started(t, exec.Command("true"))
			defer func() { _ = cmd.Wait() }() // rejected: still ours to reap
			return m.RegisterProcess(ctx, "k", cmd)
		},
		func() error { _, err := m.Go(ctx, "k", func(context.Context) error { return nil }); return err },
		func() error { return m.RegisterCustomResource(ctx, "k", 2, noop) },
		func() error { return m.RegisterCloser(ctx, "k", &closer{}) },
	}
	for _, call := range dup {
		err := call()
		require.ErrorIs(t, err, resman.ErrAlreadyRegistered)
		var re *resman.ResourceError
		require.ErrorAs(t, err, &re)
		require.Equal(t, "k", re.Key)
	}

	unknown := map[string]func() error{
		"stop":            func() error { return m.StopProcess(ctx, "nope") },
		"unregister":      func() error { _, err := m.UnregisterProcess(ctx, "nope"); return err },
		"wait":            func() error { _, err := m.WaitProcess(ctx, "nope"); return err },
		"cancel":          func() error { return m.CancelTask(ctx, "nope") },
		"unregister task": func() error { _, err := m.UnregisterTask(ctx, "nope"); return err },
		"cleanup":         func() error { return m.CleanupCustomResource(ctx, "nope") },
		"unregister custom": func() error {
			_, err := m.UnregisterCustomResource(ctx, "nope")
			return err
		},
	}
	for name, call := range unknown {
		err := call()
		require.ErrorIs(t, err, resman.ErrNotRegistered, name)
		var re *resman.ResourceError
		require.ErrorAs(t, err, &re, name)
		require.Equal(t, "nope", re.Key)
		require.NotEmpty(t, re.Op)
	}
}

func TestKeysAreOpaque(t *testing.T) {
	m := newManager(t)
	ctx := ctxT(t)
	keys := []string{"a/b", "../x", "ключ ✓", strings.Repeat("k", 1000), " ", "a\x00b"}
	for _, k := range keys {
		require.NoError(t, m.RegisterCustomResource(ctx, k, k, noop), "%q", k)
		_, err := m.Go(ctx, k, func(ctx context.Context) error { <-ctx.Done(); return nil })
		require.NoError(t, err)
	}
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.CustomResources, len(keys))
	for _, k := range keys {
		r, err := m.UnregisterCustomResource(ctx, k)
		require.NoError(t, err)
		require.Equal(t, k, r)
		require.NoError(t, m.CancelTask(ctx, k))
	}
}

func TestEverythingAfterShutdownIsErrClosed(t *testing.T) {
	m, err := resman.New()
	require.NoError(t, err)
	ctx := ctxT(t)
	require.NoError(t, m.Shutdown(ctx))
	task := resman.StartTask(ctx, func(context.Context) error { return nil })
	cmd := sh("exec sleep 300")

	for name, call := range map[string]func() error{
		"register process": func() error { return m.RegisterProcess(ctx, "k", cmd) },
		"start process":    func() error { return m.StartProcess(ctx, "k", cmd) },
		"stop process":     func() error { return m.StopProcess(ctx, "k") },
		"wait process":     func() error { _, err := m.WaitProcess(ctx, "k"); return err },
		"unregister":       func() error { _, err := m.UnregisterProcess(ctx, "k"); return err },
		"track process":    func() error { return m.TrackProcess(ctx, "k", cmd, func(*exec.Cmd) error { return nil }) },
		"register task":    func() error { return m.RegisterTask(ctx, "k", task) },
		"go":               func() error { _, err := m.Go(ctx, "k", func(context.Context) error { return nil }); return err },
		"cancel":           func() error { return m.CancelTask(ctx, "k") },
		"unregister task":  func() error { _, err := m.UnregisterTask(ctx, "k"); return err },
		"register custom":  func() error { return m.RegisterCustomResource(ctx, "k", 1, noop) },
		"register closer":  func() error { return m.RegisterCloser(ctx, "k", &closer{}) },
		"cleanup":          func() error { return m.CleanupCustomResource(ctx, "k") },
		"unregister custom": func() error {
			_, err := m.UnregisterCustomResource(ctx, "k")
			return err
		},
	} {
		err := call()
		require.ErrorIs(t, err, resman.ErrClosed, name)
		var re *resman.ResourceError
		require.ErrorAs(t, err, &re, name)
		require.Equal(t, "k", re.Key, name)
		require.NotEmpty(t, re.Op, name)
	}
	require.Nil(t, cmd.Process, "nothing started after shutdown")
	require.ErrorIs(t, m.CleanupAll(ctx), resman.ErrClosed)
	_, err = m.Status(ctx)
	require.ErrorIs(t, err, resman.ErrClosed)
	require.NoError(t, m.Shutdown(ctx), "Shutdown is idempotent")
	require.NoError(t, m.Close())
}

func TestErrorMessageFormat(t *testing.T) {
	err := &resman.ResourceError{Kind: resman.KindCustomResource, Key: "db", Op: "cleanup", Err: errors.New("boom")}
	require.Equal(t, `resman: cleanup custom resource "db": boom`, err.Error())
	require.Equal(t, "process", resman.KindProcess.String())
	require.Equal(t, "task", resman.KindTask.String())
	require.Equal(t, "running", resman.StateRunning.String())
	require.Equal(t, "stopping", resman.StateStopping.String())
	require.Equal(t, "exited", resman.StateExited.String())
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		m, err := resman.New(resman.WithDefaultTimeout(d))
		require.ErrorIs(t, err, resman.ErrInvalid)
		require.Nil(t, m)
	}
	system := newSystem(t)
	m, err := resman.New(resman.WithActorSystem(system), resman.WithName("taken"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Shutdown(context.Background())) })
	_, err = resman.New(resman.WithActorSystem(system), resman.WithName("taken"))
	require.Error(t, err, "a well-known name is taken once")
	require.Equal(t, "taken", m.PID().Id)
}
