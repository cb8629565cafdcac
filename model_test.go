package resman_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"reflect"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

// ledger is the model's bookkeeping: every registration gets a token, and
// the ledger counts how each token ended. The invariant: a token that was
// registered ends exactly once, handed back by an unregister or cleaned up
// (stopped, cancelled, cleanup function run) by the manager; a token whose
// registration failed is never touched.
type ledger struct {
	next atomic.Int64

	mu         sync.Mutex
	kind       map[int64]resman.Kind
	key        map[int64]string
	registered map[int64]bool
	gaveUp     map[int64]bool // the caller's context ended before the reply: must end untracked
	handedBack map[int64]int
	tasks      map[*resman.Task]int64
	cmds       map[*exec.Cmd]int64
	cmdOf      map[int64]*exec.Cmd
	taskOf     map[int64]*resman.Task

	cleaned [200000]atomic.Int32 // by token: cleanup ran, or the task saw its cancellation
	ran     [200000]atomic.Int32 // by token: a task's fn started
}

func newLedger() *ledger {
	return &ledger{
		kind: map[int64]resman.Kind{}, key: map[int64]string{}, registered: map[int64]bool{}, gaveUp: map[int64]bool{}, handedBack: map[int64]int{},
		tasks: map[*resman.Task]int64{}, cmds: map[*exec.Cmd]int64{}, cmdOf: map[int64]*exec.Cmd{}, taskOf: map[int64]*resman.Task{},
	}
}

func (l *ledger) token(kind resman.Kind, key string) int64 {
	tok := l.next.Add(1)
	l.mu.Lock()
	l.kind[tok], l.key[tok] = kind, key
	l.mu.Unlock()
	return tok
}

// register books a registration's outcome. An error wrapping the caller's
// context error means the caller gave up: nothing may stay tracked.
func (l *ledger) register(tok int64, err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		l.registered[tok] = true
	case errors.Is(err, context.DeadlineExceeded):
		l.gaveUp[tok] = true
		return nil
	}
	return allowed(err, resman.ErrAlreadyRegistered)
}

// impatient returns ctx, or one in four times a context that ends within
// 300µs: it may end before, while or after the request is served.
func impatient(ctx context.Context, r *rand.Rand) (context.Context, context.CancelFunc) {
	if r.IntN(4) != 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, time.Duration(r.IntN(300))*time.Microsecond)
}

// taskToken finds a task's token. The goroutine whose Go started it books
// it right after Go returns, which may be after another goroutine has
// unregistered it: wait for the booking.
func (l *ledger) taskToken(task *resman.Task) int64 {
	for {
		l.mu.Lock()
		tok, ok := l.tasks[task]
		l.mu.Unlock()
		if ok {
			return tok
		}
		runtime.Gosched()
	}
}

func (l *ledger) handBack(tok int64) {
	l.mu.Lock()
	l.handedBack[tok]++
	l.mu.Unlock()
}

// live is what the model says is registered: per kind, the keys of tokens
// registered and not ended.
func (l *ledger) live() map[resman.Kind][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[resman.Kind][]string{}
	for tok := range l.registered {
		if l.handedBack[tok] == 0 && l.ended(tok) == 0 {
			out[l.kind[tok]] = append(out[l.kind[tok]], l.key[tok])
		}
	}
	for _, keys := range out {
		sortStrings(keys)
	}
	return out
}

func sortStrings(s []string) { sort.Strings(s) }

// ended counts the manager's ends of tok; l.mu is held.
func (l *ledger) ended(tok int64) int {
	if l.kind[tok] == resman.KindProcess {
		if c := l.cmdOf[tok]; c != nil && c.ProcessState != nil && l.handedBack[tok] == 0 {
			return 1 // reaped by the manager's stop
		}
		return 0
	}
	return int(l.cleaned[tok].Load())
}

func statusKeys(st resman.Status) map[resman.Kind][]string {
	out := map[resman.Kind][]string{}
	for _, p := range st.Processes {
		out[resman.KindProcess] = append(out[resman.KindProcess], p.Key)
	}
	for _, t := range st.Tasks {
		out[resman.KindTask] = append(out[resman.KindTask], t.Key)
	}
	for _, c := range st.CustomResources {
		out[resman.KindCustomResource] = append(out[resman.KindCustomResource], c.Key)
	}
	return out
}

// op runs one random operation and books its outcome. It returns an error
// only for an outcome no interleaving allows.
func (l *ledger) op(ctx context.Context, m *resman.Manager, r *rand.Rand, keys []string) error {
	key := keys[r.IntN(len(keys))]
	n := r.IntN(1000)
	rctx, cancel := impatient(ctx, r) // for registrations
	defer cancel()
	switch {
	case n < 150: // register a custom resource
		tok := l.token(resman.KindCustomResource, key)
		err := m.RegisterCustomResource(rctx, key, tok, func(_ context.Context, v any) error {
			l.cleaned[v.(int64)].Add(1)
			return nil
		})
		return l.register(tok, err)
	case n < 250:
		v, err := m.UnregisterCustomResource(ctx, key)
		if err == nil {
			l.handBack(v.(int64))
		}
		return allowed(err, resman.ErrNotRegistered)
	case n < 350:
		return allowed(m.CleanupCustomResource(ctx, key), resman.ErrNotRegistered)
	case n < 500: // start a task
		tok := l.token(resman.KindTask, key)
		fn := func(ctx context.Context) error {
			l.ran[tok].Add(1)
			<-ctx.Done()
			l.cleaned[tok].Add(1)
			return nil
		}
		if rctx != ctx {
			// An impatient caller registers a task it booked first: between
			// the registration and its undo another caller may take it over
			// (UnregisterTask), and must find whose it is.
			task := resman.StartTask(ctx, fn)
			l.mu.Lock()
			l.tasks[task], l.taskOf[tok] = tok, task
			l.mu.Unlock()
			err := m.RegisterTask(rctx, key, task)
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				task.Cancel() // refused: the caller's to end
				<-task.Done()
				l.mu.Lock()
				l.ran[tok].Store(0)
				l.cleaned[tok].Store(0)
				l.mu.Unlock()
			}
			return l.register(tok, err)
		}
		task, err := m.Go(ctx, key, fn)
		if err == nil {
			l.mu.Lock()
			l.tasks[task], l.taskOf[tok] = tok, task
			l.mu.Unlock()
		}
		return l.register(tok, err)
	case n < 600:
		task, err := m.UnregisterTask(ctx, key)
		if err == nil {
			l.handBack(l.taskToken(task))
		}
		return allowed(err, resman.ErrNotRegistered)
	case n < 700:
		return allowed(m.CancelTask(ctx, key), resman.ErrNotRegistered)
	case n < 730: // start a process
		tok := l.token(resman.KindProcess, key)
		cmd := exec.Command("sleep", "300")
		l.mu.Lock()
		l.cmds[cmd], l.cmdOf[tok] = tok, cmd
		l.mu.Unlock()
		err := m.StartProcess(rctx, key, cmd)
		if errors.Is(err, resman.ErrAlreadyRegistered) && cmd.Process != nil {
			return fmt.Errorf("a refused StartProcess started its cmd: %w", err)
		}
		return l.register(tok, err)
	case n < 750:
		cmd, err := m.UnregisterProcess(ctx, key)
		if err == nil {
			l.mu.Lock()
			tok := l.cmds[cmd]
			l.mu.Unlock()
			l.handBack(tok)
		}
		return allowed(err, resman.ErrNotRegistered)
	case n < 780:
		return allowed(m.StopProcess(ctx, key, resman.WithTimeout(2*time.Second)), resman.ErrNotRegistered)
	case n < 995:
		_, err := m.Status(ctx)
		return err
	default:
		return m.CleanupAll(ctx)
	}
}

// allowed passes nil and the given expected error through as nil.
func allowed(err, expected error) error {
	if err == nil || errors.Is(err, expected) {
		return nil
	}
	return err
}

// check verifies the exactly-once invariant over every token.
func (l *ledger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for tok := int64(1); tok <= l.next.Load(); tok++ {
		kind := l.kind[tok]
		if l.gaveUp[tok] {
			// Its caller gave up: never registered, or registered and then
			// undone — unless another caller ended it or took it over first.
			back := l.handedBack[tok]
			require.LessOrEqual(t, back+l.ended(tok), 1, "token %d given up, ended more than once", tok)
			switch kind {
			case resman.KindTask:
				// Cancelled by the undo or another caller, handed back, or
				// (never registered) still the caller's; Status showed it untracked.
				require.LessOrEqual(t, int32(back)+l.cleaned[tok].Load(), l.ran[tok].Load(), "token %d given up", tok)
			case resman.KindProcess:
				c := l.cmdOf[tok]
				require.True(t, back == 1 || c.Process == nil || c.ProcessState != nil,
					"token %d given up: a process that started was stopped and reaped", tok)
			}
			continue
		}
		if !l.registered[tok] {
			require.Zero(t, l.handedBack[tok], "token %d never registered, handed back", tok)
			require.Zero(t, l.cleaned[tok].Load(), "token %d never registered, cleaned", tok)
			require.Zero(t, l.ran[tok].Load(), "a Go refused for its key ran fn (token %d)", tok)
			continue
		}
		ends := l.handedBack[tok] + l.ended(tok)
		require.Equal(t, 1, ends, "token %d (%v %q): handed back %d, cleaned %d", tok, kind, l.key[tok], l.handedBack[tok], l.ended(tok))
		if kind == resman.KindProcess && l.handedBack[tok] == 1 {
			require.True(t, alive(l.cmdOf[tok].Process.Pid), "a handed-back process was not killed")
		}
	}
}

// release ends what was handed back, as its new owner would.
func (l *ledger) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for tok, n := range l.handedBack {
		if n == 0 {
			continue
		}
		if c := l.cmdOf[tok]; c != nil {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		if task := l.taskOf[tok]; task != nil {
			task.Cancel()
			<-task.Done()
		}
	}
	// A task whose registration failed is still its caller's.
	for tok := range l.gaveUp {
		if task := l.taskOf[tok]; task != nil {
			task.Cancel()
			<-task.Done()
		}
	}
}

func TestModelBasedStress(t *testing.T) {
	const goroutines, opsEach, phaseOps = 16, 2000, 500
	m := newManager(t, resman.WithDefaultTimeout(2*time.Second))
	ctx := ctxT(t)
	l := newLedger()
	t.Cleanup(l.release)
	keys := []string{"a", "b", "c", "d", "e"}

	errs := make(chan error, goroutines)
	for phase := 0; phase < opsEach/phaseOps; phase++ {
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(g), uint64(phase)))
				for range phaseOps {
					if err := l.op(ctx, m, r, keys); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait() // quiet: every operation has returned
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		// Undos of given-up registrations may still be ending.
		var st resman.Status
		require.Eventuallyf(t, func() bool {
			var err error
			st, err = m.Status(ctx)
			require.NoError(t, err)
			return reflect.DeepEqual(l.live(), statusKeys(st))
		}, 10*time.Second, time.Millisecond, "phase %d: Status matches the model", phase)
	}
	require.NoError(t, m.CleanupAll(ctx))
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, statusKeys(st))
	l.check(t)
	t.Logf("%d registrations over %d operations, %d given up", l.next.Load(), goroutines*opsEach, len(l.gaveUp))
	require.NotEmpty(t, l.gaveUp, "some callers gave up")
}
