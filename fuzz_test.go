package resman_test

import (
	"context"
	"errors"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

// FuzzOperations drives one manager through a sequence of operations, two
// bytes each (operation, key), and checks every outcome against a model
// that predicts it exactly (one caller: no interleavings), then the
// exactly-once invariant: every registration ends once, handed back or
// cleaned up, and nothing else is touched.
func FuzzOperations(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 0, 0, 0, 1, 0, 1, 0},                     // register, duplicate, unregister, unknown
		{0, 1, 2, 1, 2, 1, 11, 0},                    // register, cleanup, cleanup again, status
		{3, 2, 3, 2, 4, 2, 5, 2, 5, 2},               // go, duplicate, unregister, cancel...
		{0, 0, 3, 0, 6, 0, 9, 0, 12, 0, 11, 0},       // one of each kind, then cleanup all
		{9, 1, 9, 1, 10, 1, 9, 1, 8, 1, 13, 1},       // processes
		{14, 0, 15, 0, 16, 0, 0, 0, 14, 0, 12, 0},    // bad input between
		{6, 3, 0, 3, 3, 3, 12, 3, 0, 3, 3, 3, 12, 3}, // cleanup all, then reuse the keys
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 120 {
			ops = ops[:120]
		}
		m, err := resman.New(resman.WithDefaultTimeout(2 * time.Second))
		require.NoError(t, err)
		defer func() { require.NoError(t, m.Shutdown(context.Background())) }()
		ctx := context.Background()
		keys := []string{"a", "b", "c", "d"}
		var mod fuzzModel
		mod.init()
		defer mod.release()

		for i := 0; i+1 < len(ops); i += 2 {
			key := keys[int(ops[i+1])%len(keys)]
			mod.step(t, ctx, m, ops[i]%17, key)
		}
		require.NoError(t, m.CleanupAll(ctx))
		mod.cleanedAll()
		mod.check(t)
		st, err := m.Status(ctx)
		require.NoError(t, err)
		require.Empty(t, statusKeys(st))
	})
}

type fuzzModel struct {
	live     map[resman.Kind]map[string]int // key → token
	cleaned  map[int]int                    // token → cleanups / cancels seen (booked on the test goroutine)
	calls    map[int]*atomic.Int32          // token → cleanup function calls (counted on the manager's goroutines)
	handed   map[int]int                    // token → hand-backs
	tasks    map[int]*resman.Task
	cmds     map[int]*exec.Cmd
	next     int
	ended    map[int]bool // token → the model says it ended
	closers  map[int]*closer
	byKindOf map[int]resman.Kind
}

func (f *fuzzModel) init() {
	f.live = map[resman.Kind]map[string]int{resman.KindProcess: {}, resman.KindTask: {}, resman.KindCustomResource: {}}
	f.cleaned, f.handed, f.ended, f.calls = map[int]int{}, map[int]int{}, map[int]bool{}, map[int]*atomic.Int32{}
	f.tasks, f.cmds, f.closers, f.byKindOf = map[int]*resman.Task{}, map[int]*exec.Cmd{}, map[int]*closer{}, map[int]resman.Kind{}
}

// expect checks err against the model's prediction: nil, or wrapping want.
func expect(t *testing.T, err, want error, what string) {
	t.Helper()
	if want == nil {
		require.NoError(t, err, what)
		return
	}
	require.ErrorIs(t, err, want, what)
	var re *resman.ResourceError
	require.True(t, errors.As(err, &re), what)
}

func (f *fuzzModel) taken(kind resman.Kind, key string) error {
	if _, ok := f.live[kind][key]; ok {
		return resman.ErrAlreadyRegistered
	}
	return nil
}

func (f *fuzzModel) missing(kind resman.Kind, key string) error {
	if _, ok := f.live[kind][key]; !ok {
		return resman.ErrNotRegistered
	}
	return nil
}

func (f *fuzzModel) add(kind resman.Kind, key string) int {
	f.next++
	f.live[kind][key] = f.next
	f.byKindOf[f.next] = kind
	return f.next
}

func (f *fuzzModel) end(kind resman.Kind, key string) int {
	tok := f.live[kind][key]
	delete(f.live[kind], key)
	f.ended[tok] = true
	return tok
}

func (f *fuzzModel) step(t *testing.T, ctx context.Context, m *resman.Manager, op byte, key string) {
	kindC, kindT, kindP := resman.KindCustomResource, resman.KindTask, resman.KindProcess
	switch op {
	case 0: // register a custom resource
		want := f.taken(kindC, key)
		tok := f.next + 1
		calls := &atomic.Int32{}
		f.calls[tok] = calls
		err := m.RegisterCustomResource(ctx, key, tok, func(context.Context, any) error { calls.Add(1); return nil })
		expect(t, err, want, "register custom")
		if want == nil {
			f.add(kindC, key)
		}
	case 1: // unregister it
		want := f.missing(kindC, key)
		v, err := m.UnregisterCustomResource(ctx, key)
		expect(t, err, want, "unregister custom")
		if want == nil {
			tok := f.end(kindC, key)
			f.handed[tok]++
			if c := f.closers[tok]; c != nil {
				require.Same(t, c, v)
			} else {
				require.Equal(t, tok, v)
			}
		}
	case 2: // clean it up
		want := f.missing(kindC, key)
		expect(t, m.CleanupCustomResource(ctx, key), want, "cleanup")
		if want == nil {
			tok := f.end(kindC, key)
			f.syncCloser(tok)
			require.Equal(t, 1, f.cleaned[tok], "cleanup ran once")
		}
	case 3, 7: // start a task
		want := f.taken(kindT, key)
		tok := f.next + 1
		ran := make(chan struct{}, 1)
		task, err := m.Go(ctx, key, func(ctx context.Context) error {
			ran <- struct{}{}
			<-ctx.Done()
			return nil
		})
		expect(t, err, want, "go")
		if want == nil {
			f.add(kindT, key)
			f.tasks[tok] = task
		} else {
			require.Nil(t, task)
			select {
			case <-ran:
				t.Fatal("a Go refused for its key ran fn")
			default:
			}
		}
	case 4: // unregister a task
		want := f.missing(kindT, key)
		task, err := m.UnregisterTask(ctx, key)
		expect(t, err, want, "unregister task")
		if want == nil {
			tok := f.end(kindT, key)
			f.handed[tok]++
			require.Same(t, f.tasks[tok], task)
			select {
			case <-task.Done():
				t.Fatal("a handed-back task was cancelled")
			default:
			}
		}
	case 5: // cancel a task
		want := f.missing(kindT, key)
		expect(t, m.CancelTask(ctx, key), want, "cancel")
		if want == nil {
			tok := f.end(kindT, key)
			<-f.tasks[tok].Done()
			f.cleaned[tok]++
		}
	case 6: // register a closer
		want := f.taken(kindC, key)
		c := &closer{}
		expect(t, m.RegisterCloser(ctx, key, c), want, "register closer")
		if want == nil {
			tok := f.add(kindC, key)
			f.closers[tok] = c
		}
	case 8, 9: // start a process
		want := f.taken(kindP, key)
		cmd := exec.Command("sleep", "300")
		err := m.StartProcess(ctx, key, cmd)
		expect(t, err, want, "start process")
		if want == nil {
			tok := f.add(kindP, key)
			f.cmds[tok] = cmd
		} else {
			require.Nil(t, cmd.Process, "not started")
		}
	case 10: // unregister a process
		want := f.missing(kindP, key)
		cmd, err := m.UnregisterProcess(ctx, key)
		expect(t, err, want, "unregister process")
		if want == nil {
			tok := f.end(kindP, key)
			f.handed[tok]++
			require.Same(t, f.cmds[tok], cmd)
			require.True(t, alive(cmd.Process.Pid), "handed back running")
		}
	case 11, 13: // status
		st, err := m.Status(ctx)
		require.NoError(t, err)
		require.Equal(t, f.liveKeys(), statusKeys(st))
	case 12: // cleanup all
		require.NoError(t, m.CleanupAll(ctx))
		f.cleanedAll()
	case 14: // bad input: empty key
		expect(t, m.RegisterCustomResource(ctx, "", 1, noop), resman.ErrInvalid, "empty key")
	case 15: // bad input: negative timeout
		expect(t, m.CancelTask(ctx, key, resman.WithTimeout(-time.Second)), resman.ErrInvalid, "negative timeout")
	case 16: // stop a process
		want := f.missing(kindP, key)
		expect(t, m.StopProcess(ctx, key), want, "stop process")
		if want == nil {
			tok := f.end(kindP, key)
			require.False(t, exists(f.cmds[tok].Process.Pid), "killed and reaped")
			f.cleaned[tok]++
		}
	}
}

// syncCloser books the cleanup function's (or Close's) calls as cleanups.
func (f *fuzzModel) syncCloser(tok int) {
	if c := f.closers[tok]; c != nil {
		f.cleaned[tok] = int(c.closed.Load())
	} else if calls := f.calls[tok]; calls != nil {
		f.cleaned[tok] = int(calls.Load())
	}
}

// cleanedAll books what a CleanupAll ended.
func (f *fuzzModel) cleanedAll() {
	for kind, keys := range f.live {
		for key, tok := range keys {
			switch kind {
			case resman.KindTask:
				<-f.tasks[tok].Done()
				f.cleaned[tok]++
			case resman.KindProcess:
				if f.cmds[tok].ProcessState != nil {
					f.cleaned[tok]++
				}
			case resman.KindCustomResource:
				f.syncCloser(tok)
			}
			f.end(kind, key)
		}
	}
}

func (f *fuzzModel) liveKeys() map[resman.Kind][]string {
	out := map[resman.Kind][]string{}
	for kind, keys := range f.live {
		for key := range keys {
			out[kind] = append(out[kind], key)
		}
	}
	for _, keys := range out {
		sortStrings(keys)
	}
	return out
}

func (f *fuzzModel) check(t *testing.T) {
	for tok := 1; tok <= f.next; tok++ {
		require.True(t, f.ended[tok], "token %d ended", tok)
		require.Equal(t, 1, f.handed[tok]+f.cleaned[tok], "token %d (%v): handed back %d, cleaned %d",
			tok, f.byKindOf[tok], f.handed[tok], f.cleaned[tok])
	}
}

// release ends what was handed back, as its new owner would.
func (f *fuzzModel) release() {
	for tok, n := range f.handed {
		if n == 0 {
			continue
		}
		if task := f.tasks[tok]; task != nil {
			task.Cancel()
			<-task.Done()
		}
		if cmd := f.cmds[tok]; cmd != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
}
