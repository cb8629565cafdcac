package resman_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
)

// ledger is the model's bookkeeping: every registration gets a token, and
// the ledger counts how each token ended. The invariant: a token that was
// registered ends exactly once, handed back by an unregister or cleaned up
// (stopped, cancelled, cleanup function run) by the manager; a token whose
// registration failed is never touched.
//
// Supervised registrations (Supervise, and Go with a restart policy) run
// more than once and cannot all be watched from the test's side, so the
// ledger also reads the event stream (replay): a supervised process's
// registration is the one whose EventRegistered falls in its Supervise
// call's time window (Supervise calls on one key never overlap), a
// supervised task's is the one whose EventExited carry its runs' errors.
// When the replay sees such a registration end it raises a flag that each
// later run checks as it starts: a run that finds it started after the end.
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

	rp      *replay
	nonce   string                 // marks this test's supervised runs in their environment
	sup     map[int64]*supervision // the tokens of Supervise and of Go with a restart policy
	unregOK map[resman.Ref]int     // successful unregisters
	nilBack map[string]int         // UnregisterProcess of a supervised process between runs: no cmd to hand back

	cleaned   [200000]atomic.Int32 // by token: cleanup ran, or the task saw its cancellation
	ran       [200000]atomic.Int32 // by token: a task's fn started (once per run)
	taskEnded [200000]atomic.Bool  // by token: the replay saw the registration that ran it end
	afterEnd  atomic.Int32         // supervised task runs that started after their registration ended
	// Restarted task runs that began with their context already cancelled:
	// a cancel that came after the backoff timer fired but before the run
	// (TestGoCancelAfterBackoffTimerStartsNoRun). Counted, not failed on:
	// even a loop that checks its context just before each run can lose that
	// race by a hair.
	cancelledRuns atomic.Int32

	states map[string]int // at quiet points: supervised keys' states as Status shows them
}

// supervision is what the model knows of a supervised token.
type supervision struct {
	sleeps bool      // processes: each run sleeps (else it exits 1 at once)
	runs   string    // processes: each run appends its PID to this file
	giveUp bool      // tasks: the policy gives up before the run that would block
	cmd    *exec.Cmd // processes: the run UnregisterProcess handed back
}

// newLedger returns a ledger whose replay is to be the manager's event hook.
func newLedger(t *testing.T) *ledger {
	l := &ledger{
		kind: map[int64]resman.Kind{}, key: map[int64]string{}, registered: map[int64]bool{}, gaveUp: map[int64]bool{}, handedBack: map[int64]int{},
		tasks: map[*resman.Task]int64{}, cmds: map[*exec.Cmd]int64{}, cmdOf: map[int64]*exec.Cmd{}, taskOf: map[int64]*resman.Task{},
		nonce: strconv.FormatInt(time.Now().UnixNano(), 36), sup: map[int64]*supervision{},
		unregOK: map[resman.Ref]int{}, nilBack: map[string]int{}, states: map[string]int{},
	}
	l.rp = newReplay(t.TempDir(), func(tok int64) { l.taskEnded[tok].Store(true) })
	return l
}

func (l *ledger) token(kind resman.Kind, key string) int64 {
	tok := l.next.Add(1)
	l.mu.Lock()
	l.kind[tok], l.key[tok] = kind, key
	l.mu.Unlock()
	return tok
}

// register books a registration's outcome. An error wrapping the caller's
// context error means the caller gave up: nothing may stay tracked. A key
// with a dependency may be refused with ErrInvalid: the dependency is not
// registered at the moment.
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
	if _, ok := dependency(l.key[tok]); ok && errors.Is(err, resman.ErrInvalid) {
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
	l.rp.mu.Lock()
	defer l.rp.mu.Unlock()
	out := map[resman.Kind][]string{}
	for tok := range l.registered {
		if l.liveToken(tok) {
			out[l.kind[tok]] = append(out[l.kind[tok]], l.key[tok])
		}
	}
	for _, keys := range out {
		sortStrings(keys)
	}
	return out
}

// liveToken reports whether a registered token is still registered; l.mu
// and l.rp.mu are held.
func (l *ledger) liveToken(tok int64) bool {
	s := l.sup[tok]
	switch {
	case s == nil:
		return l.handedBack[tok] == 0 && l.ended(tok) == 0
	case l.kind[tok] == resman.KindProcess:
		// Registered until ended by the manager or handed back, whether it
		// runs, waits out a backoff, exited or gave up.
		for _, iv := range l.rp.supIv[tok] {
			if !iv.closed {
				return true
			}
		}
		return false
	default:
		if l.handedBack[tok] > 0 {
			return false
		}
		if !isDone(l.taskOf[tok]) {
			return true // runs or waits out a backoff: nothing but a cancel ends it
		}
		// Done: cancelled, or it gave up and stays registered as failed
		// until a cancel or CleanupAll removes it.
		return s.giveUp && l.rp.openNaming(tok)
	}
}

func isDone(task *resman.Task) bool {
	select {
	case <-task.Done():
		return true
	default:
		return false
	}
}

func sortStrings(s []string) { sort.Strings(s) }

// ended counts the manager's ends of a token that is not supervised; l.mu
// is held.
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

// pickKey picks a key without a dependency three times in five.
func pickKey(r *rand.Rand) string {
	if r.IntN(5) < 3 {
		return baseKeys[r.IntN(len(baseKeys))]
	}
	return depKeys[r.IntN(len(depKeys))]
}

// pickProcessKey picks a key StartProcess (supervised false) or Supervise uses.
func pickProcessKey(r *rand.Rand, supervised bool) string {
	for {
		if key := pickKey(r); supervisedKeys[key] == supervised {
			return key
		}
	}
}

// depends returns the option that names key's dependency, if it has one.
func depends(key string) []resman.ResourceOption {
	if d, ok := dependency(key); ok {
		return []resman.ResourceOption{resman.DependsOn(d.Kind, d.Key)}
	}
	return nil
}

// unregistered allows what an unregister may answer: not registered, or
// refused because others depend on it.
func unregistered(err error, kind resman.Kind, key string) error {
	if dependedOn(kind, key) && errors.Is(err, resman.ErrInvalid) {
		return nil
	}
	return allowed(err, resman.ErrNotRegistered)
}

// undoWithDependencies lets callers give up on any registration, those
// with dependencies included (TestUndoOfARegistrationWaitingForADependency,
// TestUndoOfACustomResourceOthersDependOn cover the two cases alone).
const undoWithDependencies = true

// mayGiveUp reports whether a caller of a registration of kind under key
// may give up (see undoWithDependencies).
func mayGiveUp(kind resman.Kind, key string) bool {
	_, dependent := dependency(key)
	return undoWithDependencies || !dependent && !(kind == resman.KindCustomResource && dependedOn(kind, key))
}

// op runs one random operation and books its outcome. It returns an error
// only for an outcome no interleaving allows.
func (l *ledger) op(ctx context.Context, m *resman.Manager, r *rand.Rand) error {
	key := pickKey(r)
	n := r.IntN(1000)
	rctx, cancel := impatient(ctx, r) // for registrations
	defer cancel()
	switch {
	case n < 150: // register a custom resource
		if !mayGiveUp(resman.KindCustomResource, key) {
			rctx = ctx
		}
		tok := l.token(resman.KindCustomResource, key)
		err := m.RegisterCustomResource(rctx, key, tok, func(_ context.Context, v any) error {
			l.cleaned[v.(int64)].Add(1)
			return nil
		}, depends(key)...)
		return l.register(tok, err)
	case n < 250:
		v, err := m.UnregisterCustomResource(ctx, key)
		if err == nil {
			l.unregisteredOK(resman.KindCustomResource, key)
			l.handBack(v.(int64))
		}
		return unregistered(err, resman.KindCustomResource, key)
	case n < 350:
		return allowed(m.CleanupCustomResource(ctx, key), resman.ErrNotRegistered)
	case n < 500: // start a task
		if !mayGiveUp(resman.KindTask, key) {
			rctx = ctx
		}
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
			err := m.RegisterTask(rctx, key, task, depends(key)...)
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
		task, err := m.Go(ctx, key, fn, depends(key)...)
		if err == nil {
			l.mu.Lock()
			l.tasks[task], l.taskOf[tok] = tok, task
			l.mu.Unlock()
		}
		return l.register(tok, err)
	case n < 600:
		task, err := m.UnregisterTask(ctx, key)
		if err == nil {
			l.unregisteredOK(resman.KindTask, key)
			l.handBack(l.taskToken(task))
		}
		return unregistered(err, resman.KindTask, key)
	case n < 700:
		return allowed(m.CancelTask(ctx, key), resman.ErrNotRegistered)
	case n < 730: // start a process
		key = pickProcessKey(r, false)
		if !mayGiveUp(resman.KindProcess, key) {
			rctx = ctx
		}
		tok := l.token(resman.KindProcess, key)
		cmd := exec.Command("sleep", "300")
		l.mu.Lock()
		l.cmds[cmd], l.cmdOf[tok] = tok, cmd
		l.mu.Unlock()
		err := m.StartProcess(rctx, key, cmd, depends(key)...)
		if errors.Is(err, resman.ErrAlreadyRegistered) && cmd.Process != nil {
			return fmt.Errorf("a refused StartProcess started its cmd: %w", err)
		}
		return l.register(tok, err)
	case n < 750:
		cmd, err := m.UnregisterProcess(ctx, key)
		if err == nil {
			l.unregisteredOK(resman.KindProcess, key)
			l.mu.Lock()
			tok, plain := l.cmds[cmd]
			switch {
			case plain:
			case cmd == nil: // a supervised process between runs
				l.nilBack[key]++
			default:
				tok = tokenOfCmd(cmd, l.nonce)
				if s := l.sup[tok]; s == nil || s.cmd != nil {
					l.mu.Unlock()
					return fmt.Errorf("UnregisterProcess %q handed back a run of token %d, not one of ours or twice", key, tok)
				}
				l.sup[tok].cmd = cmd
			}
			l.mu.Unlock()
			if tok != 0 {
				l.handBack(tok)
			}
		}
		return unregistered(err, resman.KindProcess, key)
	case n < 780:
		return allowed(m.StopProcess(ctx, key, resman.WithTimeout(2*time.Second)), resman.ErrNotRegistered)
	case n < 840:
		if r.IntN(3) != 0 {
			// Fewer impatient callers than elsewhere: until a quiet point,
			// nobody else supervises a key whose caller gave up.
			rctx = ctx
		}
		return l.supervise(ctx, rctx, m, r)
	case n < 860:
		err := m.RestartProcess(ctx, key)
		if !supervisedKeys[key] && errors.Is(err, resman.ErrInvalid) {
			return nil // a process StartProcess started
		}
		return allowed(err, resman.ErrNotRegistered)
	case n < 900:
		return l.goRestarting(ctx, m, r, key)
	case n < 995:
		_, err := m.Status(ctx)
		return err
	default:
		return m.CleanupAll(ctx)
	}
}

func (l *ledger) unregisteredOK(kind resman.Kind, key string) {
	l.mu.Lock()
	l.unregOK[resman.Ref{Kind: kind, Key: key}]++
	l.mu.Unlock()
}

// supervise supervises a process whose runs exit 1 at once or sleep, under
// a random restart policy (or none), as the only Supervise on its key.
func (l *ledger) supervise(ctx, rctx context.Context, m *resman.Manager, r *rand.Rand) error {
	key := pickProcessKey(r, true)
	if !mayGiveUp(resman.KindProcess, key) {
		rctx = ctx
	}
	if ok, err := l.claimSupervise(ctx, m, key); !ok || err != nil {
		return err
	}
	tok := l.token(resman.KindProcess, key)
	s := &supervision{sleeps: r.IntN(2) == 0, runs: runsFile(l.rp.dir, tok)}
	body := "exit 1"
	if s.sleeps {
		body = "exec sleep 300"
	}
	spec := resman.ProcessSpec{
		Command: []string{"/bin/sh", "-c", `[ -e "$MODEL_RUNS.ended" ] && echo $$ >> "$MODEL_RUNS.late"; echo $$ >> "$MODEL_RUNS"; ` + body},
		Env:     []string{"MODEL_RUNS=" + s.runs, "MODEL_TOKEN=" + l.nonce + "-" + strconv.FormatInt(tok, 10)},
	}
	opts := depends(key)
	if mode := r.IntN(5); mode > 0 { // else RestartNever: it stays registered as exited
		p := resman.RestartPolicy{Mode: resman.RestartOnFailure, Backoff: time.Duration(1+r.IntN(5)) * time.Millisecond}
		if mode > 2 {
			p.Mode = resman.RestartAlways
		}
		if r.IntN(2) == 0 {
			p.MaxRestarts = 2 + r.IntN(2) // then it gives up, and stays registered as failed
		}
		opts = append(opts, resman.WithRestart(p))
	}
	l.mu.Lock()
	l.sup[tok] = s
	l.mu.Unlock()
	l.rp.begin(key, tok)
	err := m.Supervise(rctx, key, spec, opts...)
	l.rp.release(key, errors.Is(err, context.DeadlineExceeded))
	return l.register(tok, err)
}

// tail supervises a process or starts a restarting task, patiently.
func (l *ledger) tail(ctx context.Context, m *resman.Manager, r *rand.Rand) error {
	if r.IntN(2) == 0 {
		return l.supervise(ctx, ctx, m, r)
	}
	return l.goRestarting(ctx, m, r, pickKey(r))
}

// probeUnderLoad lets claimSupervise probe a key under load, with a start
// that fails while a CleanupAll may be under way
// (TestCleanupAllDuringAFailingStartReturns covers it alone).
const probeUnderLoad = true

// claimSupervise takes key for one Supervise call. After a call on key that
// gave up, whose registration may still be on its way, it first probes the
// key with a Supervise that cannot start: the supervisor serves the probe
// after that call's request and undo, so a free key means that
// registration has come and gone, if it came at all. Without
// probeUnderLoad, the key waits for the next quiet point instead.
func (l *ledger) claimSupervise(ctx context.Context, m *resman.Manager, key string) (bool, error) {
	ok, tainted := l.rp.claim(key)
	if !ok || !tainted {
		return ok, nil
	}
	if !probeUnderLoad {
		l.rp.abandon(key)
		return false, nil
	}
	err := m.Supervise(ctx, key, unstartable)
	switch {
	case errors.Is(err, resman.ErrAlreadyRegistered):
		l.rp.abandon(key)
		return false, nil
	case err == nil:
		l.rp.abandon(key)
		return false, fmt.Errorf("a probe that cannot start was supervised under %q", key)
	}
	l.rp.resolve(key)
	return true, nil
}

// unstartable is the probe's spec: its first start fails, so nothing is
// registered, and a taken key refuses it first.
var unstartable = resman.ProcessSpec{Command: []string{"/nonexistent/resman-model-probe"}}

// goRestarting starts a task whose first runs fail and whose last one waits
// for its cancellation, under a restart policy that may give up first.
func (l *ledger) goRestarting(ctx context.Context, m *resman.Manager, r *rand.Rand, key string) error {
	tok := l.token(resman.KindTask, key)
	fails := int32(1 + r.IntN(4))
	p := resman.RestartPolicy{Mode: resman.RestartOnFailure, Backoff: time.Duration(1+r.IntN(5)) * time.Millisecond}
	if r.IntN(2) == 0 {
		p.Mode = resman.RestartAlways
	}
	if r.IntN(3) == 0 {
		p.MaxRestarts = 2 + r.IntN(2)
	}
	l.mu.Lock()
	l.sup[tok] = &supervision{giveUp: p.MaxRestarts > 0 && int(fails) > p.MaxRestarts}
	l.mu.Unlock()
	fn := func(ctx context.Context) error {
		n := l.ran[tok].Add(1)
		if l.taskEnded[tok].Load() {
			l.afterEnd.Add(1)
		}
		if n > 1 && ctx.Err() != nil {
			l.cancelledRuns.Add(1)
		}
		if n <= fails {
			return &runError{tok: tok, run: n}
		}
		<-ctx.Done()
		return nil
	}
	// A patient caller: the model finds a handed-back Task by the booking
	// below, which a caller that gave up could not make.
	task, err := m.Go(ctx, key, fn, append(depends(key), resman.WithRestart(p))...)
	if err == nil {
		l.mu.Lock()
		l.tasks[task], l.taskOf[tok] = tok, task
		l.mu.Unlock()
	}
	return l.register(tok, err)
}

// allowed passes nil and the given expected error through as nil.
func allowed(err, expected error) error {
	if err == nil || errors.Is(err, expected) {
		return nil
	}
	return err
}

// quiet reports, at a quiet point (every operation has returned), what
// still differs from the model; "" once nothing does. Undos of given-up
// registrations may still be ending, and the event hook may lag.
func (l *ledger) quiet(ctx context.Context, m *resman.Manager) (string, error) {
	st, err := m.Status(ctx)
	if err != nil {
		return "", err
	}
	if model := l.live(); !reflect.DeepEqual(model, statusKeys(st)) {
		return fmt.Sprintf("Status %v, the model %v; %s", statusKeys(st), model, l.explain(model, statusKeys(st))), nil
	}
	l.mu.Lock()
	l.rp.mu.Lock()
	var tainted []string
	for key := range l.rp.tainted {
		if l.rp.open[resman.Ref{Kind: resman.KindProcess, Key: key}] == nil {
			tainted = append(tainted, key)
		}
	}
	if len(l.rp.violations) > 0 {
		v := l.rp.violations
		l.rp.mu.Unlock()
		l.mu.Unlock()
		return "", fmt.Errorf("the event stream: %s", strings.Join(v, "; "))
	}
	l.rp.mu.Unlock()
	l.mu.Unlock()
	if late := l.runsAfterEnd(); late != "" {
		return "", fmt.Errorf("runs started after their registration ended: %s", late)
	}
	// A Supervise whose caller gave up may still be starting (a pending
	// start is not in Status): a probe that cannot start finds its key taken.
	for _, key := range tainted {
		err := m.Supervise(ctx, key, unstartable)
		if errors.Is(err, resman.ErrAlreadyRegistered) {
			return fmt.Sprintf("process %q: a registration is still starting", key), nil
		}
		if err == nil {
			return "", fmt.Errorf("a probe that cannot start was supervised under %q", key)
		}
	}
	// Every sleeping run belongs to a live registration (as its current
	// run) or was handed back.
	pids := map[string]int{}
	for _, p := range st.Processes {
		pids[p.Key] = p.PID
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rp.mu.Lock()
	defer l.rp.mu.Unlock()
	for pid, p := range modelProcs(l.nonce) {
		s := l.sup[p.tok]
		if p.comm != "sleep" || s == nil || s.cmd != nil && s.cmd.Process.Pid == pid {
			continue
		}
		if pids[l.key[p.tok]] != pid || !l.registered[p.tok] || !l.liveToken(p.tok) {
			return fmt.Sprintf("pid %d (token %d, %q) runs, but is no live registration's run", pid, p.tok, l.key[p.tok]), nil
		}
	}
	return "", nil
}

// runsAfterEnd describes the runs of supervised registrations that started
// after the replay saw their registration end; "" if none did. A process
// run handed back may find its flag: it is the caller's, not a later run.
func (l *ledger) runsAfterEnd() string {
	var out []string
	if n := l.afterEnd.Load(); n > 0 {
		out = append(out, fmt.Sprintf("%d task runs", n))
	}
	files, _ := filepath.Glob(filepath.Join(l.rp.dir, "*.late"))
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range files {
		tok, _ := strconv.ParseInt(strings.TrimSuffix(filepath.Base(f), ".late"), 10, 64)
		b, _ := os.ReadFile(f)
		for _, pid := range strings.Fields(string(b)) {
			if s := l.sup[tok]; s != nil && s.cmd != nil && strconv.Itoa(s.cmd.Process.Pid) == pid {
				continue
			}
			out = append(out, fmt.Sprintf("pid %s of process token %d (%q)", pid, tok, l.key[tok]))
		}
	}
	return strings.Join(out, ", ")
}

// explain describes the tokens and the event stream of the keys where the
// model and Status differ.
func (l *ledger) explain(model, status map[resman.Kind][]string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rp.mu.Lock()
	defer l.rp.mu.Unlock()
	count := func(keys map[resman.Kind][]string) map[resman.Ref]int {
		out := map[resman.Ref]int{}
		for kind, ks := range keys {
			for _, k := range ks {
				out[resman.Ref{Kind: kind, Key: k}]++
			}
		}
		return out
	}
	a, b := count(model), count(status)
	var out []string
	for _, m := range []map[resman.Ref]int{a, b} {
		for ref := range m {
			if a[ref] == b[ref] {
				continue
			}
			delete(a, ref)
			delete(b, ref)
			var toks []string
			for tok := int64(1); tok <= l.next.Load(); tok++ {
				if l.kind[tok] == ref.Kind && l.key[tok] == ref.Key && (l.registered[tok] || l.gaveUp[tok]) {
					toks = append(toks, fmt.Sprintf("%d(registered %v, gave up %v, handed back %d, cleaned %d, ran %d)",
						tok, l.registered[tok], l.gaveUp[tok], l.handedBack[tok], l.cleaned[tok].Load(), l.ran[tok].Load()))
				}
			}
			if len(toks) > 4 {
				toks = toks[len(toks)-4:]
			}
			open := l.rp.open[ref] != nil
			out = append(out, fmt.Sprintf("%v %q: open in the event stream %v, last tokens %s", ref.Kind, ref.Key, open, strings.Join(toks, " ")))
		}
	}
	return strings.Join(out, "; ")
}

// settle waits for a quiet point to match the model, then closes the
// windows of given-up Supervise calls.
func (l *ledger) settle(t *testing.T, ctx context.Context, m *resman.Manager, phase int) {
	t.Helper()
	var err error // an outcome no interleaving allows: no use waiting
	require.EventuallyWithTf(t, func(c *assert.CollectT) {
		var diff string
		if diff, err = l.quiet(ctx, m); err == nil {
			assert.Empty(c, diff)
		}
	}, 10*time.Second, time.Millisecond, "phase %d: Status matches the model", phase)
	require.NoError(t, err, "phase %d", phase)
	l.rp.quiet()
	st, err := m.Status(ctx)
	require.NoError(t, err)
	for _, p := range st.Processes {
		if supervisedKeys[p.Key] {
			l.states["process "+p.State.String()]++
		}
	}
	for _, ts := range st.Tasks {
		l.states["task "+ts.State.String()]++
	}
}

// check verifies the exactly-once invariant over every token.
func (l *ledger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rp.mu.Lock()
	defer l.rp.mu.Unlock()
	require.Empty(t, l.rp.violations, "the event stream")
	require.Empty(t, l.rp.open, "every registration ended")
	named := map[int64][]*interval{} // supervised tasks: the registrations that ran each token
	for _, iv := range l.rp.all {
		for tok := range iv.taskToks {
			named[tok] = append(named[tok], iv)
		}
	}
	succeeded, gaveUp := map[resman.Ref]int{}, map[resman.Ref]int{}
	for tok := int64(1); tok <= l.next.Load(); tok++ {
		kind := l.kind[tok]
		ref := resman.Ref{Kind: kind, Key: l.key[tok]}
		if l.registered[tok] {
			succeeded[ref]++
		}
		if l.gaveUp[tok] {
			gaveUp[ref]++
		}
		if s := l.sup[tok]; s != nil {
			l.checkSupervised(t, tok, s, named[tok])
			continue
		}
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
	// Each registration the callers made shows in the event stream, and
	// each hand-back ends one there.
	for ref, n := range l.rp.registered {
		require.GreaterOrEqual(t, n, succeeded[ref], "%v %q: registrations in the event stream", ref.Kind, ref.Key)
		require.LessOrEqual(t, n, succeeded[ref]+gaveUp[ref], "%v %q: registrations nobody made", ref.Kind, ref.Key)
	}
	for ref, n := range succeeded {
		require.GreaterOrEqual(t, l.rp.registered[ref], n, "%v %q: registrations missing from the event stream", ref.Kind, ref.Key)
	}
	refs := map[resman.Ref]bool{}
	for ref := range l.unregOK {
		refs[ref] = true
	}
	for ref := range l.rp.unregistered {
		refs[ref] = true
	}
	for ref := range refs {
		if ref.Kind == resman.KindCustomResource {
			// The undo of a given-up registration hands a custom resource
			// back to nobody: EventUnregistered too.
			require.GreaterOrEqual(t, l.rp.unregistered[ref], l.unregOK[ref], "%v %q: unregisters", ref.Kind, ref.Key)
			require.LessOrEqual(t, l.rp.unregistered[ref], l.unregOK[ref]+gaveUp[ref], "%v %q: unregisters", ref.Kind, ref.Key)
			continue
		}
		require.Equal(t, l.unregOK[ref], l.rp.unregistered[ref], "%v %q: unregisters and EventUnregistered", ref.Kind, ref.Key)
	}
	// A supervised process handed back between runs comes without a cmd:
	// each such hand-back is a registration that ended unregistered, yet
	// whose token got no cmd.
	noCmd := map[string]int{}
	for tok, s := range l.sup {
		for _, iv := range l.rp.supIv[tok] {
			if iv.end == resman.EventUnregistered && s.cmd == nil {
				noCmd[l.key[tok]]++
			}
		}
	}
	for key := range supervisedKeys {
		require.Equal(t, l.nilBack[key], noCmd[key], "process %q: hand-backs without a cmd", key)
	}
}

// checkSupervised checks a supervised token; l.mu and l.rp.mu are held.
func (l *ledger) checkSupervised(t *testing.T, tok int64, s *supervision, named []*interval) {
	t.Helper()
	back := l.handedBack[tok]
	require.LessOrEqual(t, back, 1, "token %d handed back twice", tok)
	if l.kind[tok] == resman.KindTask {
		if !l.registered[tok] {
			require.Zero(t, l.ran[tok].Load(), "a Go refused for its key ran fn (token %d)", tok)
			require.Zero(t, back, "token %d never registered, handed back", tok)
			return
		}
		if back == 0 {
			require.True(t, isDone(l.taskOf[tok]), "token %d: a supervised task still runs after CleanupAll", tok)
		}
		require.LessOrEqual(t, len(named), 1, "token %d ran in two registrations", tok)
		for _, iv := range named {
			require.Equal(t, back == 1, iv.end == resman.EventUnregistered, "token %d: handed back %d, ended by %v", tok, back, iv.end)
		}
		return
	}
	ivs := l.rp.supIv[tok]
	switch {
	case l.gaveUp[tok]:
		require.LessOrEqual(t, len(ivs), 1, "token %d given up, registered twice", tok)
	case !l.registered[tok]:
		require.Empty(t, ivs, "token %d refused, yet registered", tok)
		require.Zero(t, back, "token %d never registered, handed back", tok)
		require.Zero(t, runsOf(s.runs), "token %d refused, yet it ran", tok)
	default:
		require.Len(t, ivs, 1, "token %d: one registration", tok)
		if back == 1 {
			require.Equal(t, resman.EventUnregistered, ivs[0].end, "token %d was handed back", tok)
		}
	}
	if s.cmd != nil && s.sleeps && s.cmd.ProcessState == nil {
		require.True(t, alive(s.cmd.Process.Pid), "token %d: a handed-back run was killed", tok)
	}
}

// checkRuns checks, once everything has ended, that no run of a supervised
// registration outlived it: the only runs left are those handed back, and
// no run starts any more.
func (l *ledger) checkRuns(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	handed := map[int]bool{}
	files := map[int64]string{}
	var tasks []int64
	for tok, s := range l.sup {
		if s.cmd != nil && s.cmd.ProcessState == nil {
			handed[s.cmd.Process.Pid] = true
		}
		if s.runs != "" {
			files[tok] = s.runs
		} else if l.registered[tok] && l.handedBack[tok] == 0 {
			tasks = append(tasks, tok)
		}
	}
	l.rp.mu.Lock()
	var eventPIDs []int
	for _, iv := range l.rp.all {
		if iv.ref.Kind == resman.KindProcess && supervisedKeys[iv.ref.Key] {
			eventPIDs = append(eventPIDs, iv.pids...)
		}
	}
	l.rp.mu.Unlock()
	l.mu.Unlock()

	runs := map[int64]int{}
	for tok, f := range files {
		runs[tok] = runsOf(f)
	}
	taskRuns := map[int64]int32{}
	for _, tok := range tasks {
		taskRuns[tok] = l.ran[tok].Load()
	}
	procs := modelProcs(l.nonce)
	for pid, p := range procs {
		require.True(t, handed[pid], "pid %d (token %d, %s) outlived its registration", pid, p.tok, p.comm)
	}
	for _, pid := range eventPIDs {
		if _, ok := procs[pid]; ok {
			require.True(t, handed[pid], "pid %d, named by an event, outlived its registration", pid)
		}
	}
	// Not a synchronisation: time for a restart that should not come (the
	// backoffs are 1-5ms, doubling) to show.
	<-time.After(100 * time.Millisecond)
	for tok, f := range files {
		require.Equal(t, runs[tok], runsOf(f), "token %d: a run started after its registration ended", tok)
	}
	for _, tok := range tasks {
		require.Equal(t, taskRuns[tok], l.ran[tok].Load(), "token %d: a task run started after its registration ended", tok)
	}
	for pid, p := range modelProcs(l.nonce) {
		require.True(t, handed[pid], "pid %d (token %d, %s) started after its registration ended", pid, p.tok, p.comm)
	}
	require.Empty(t, l.runsAfterEnd(), "runs started after their registration ended")
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
		if s := l.sup[tok]; s != nil && s.cmd != nil && s.cmd.ProcessState == nil {
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL) // its own group
			_ = s.cmd.Wait()
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

// TestModelBasedStress runs random operations from many goroutines against
// a model: plain registrations of every kind, supervised processes and
// tasks that restart, registrations that depend on others (so stops
// cascade and CleanupAll ends resources in order), and callers that give
// up. At each quiet point Status must match the model; at the end every
// registration has ended exactly once, the event stream was consistent
// (dependents ended before what they depend on, no run after an end), and
// no run of a supervised registration is left or starts again.
func TestModelBasedStress(t *testing.T) {
	const goroutines, opsEach, phaseOps = 16, 2000, 125
	l := newLedger(t)
	rp := l.rp
	m := newManager(t, resman.WithDefaultTimeout(2*time.Second), resman.WithEventHook(rp.hook))
	ctx := ctxT(t)
	t.Cleanup(l.release)

	errs := make(chan error, goroutines)
	for phase := 0; phase < opsEach/phaseOps; phase++ {
		var wg, ops sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			ops.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(g), uint64(phase)))
				for range phaseOps {
					if err := l.op(ctx, m, r); err != nil {
						errs <- err
						ops.Done()
						return
					}
				}
				// Once every goroutine is done, one more supervised
				// registration each: quiet points see them in every state.
				ops.Done()
				ops.Wait()
				if err := l.tail(ctx, m, r); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait() // quiet: every operation has returned
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		l.settle(t, ctx, m, phase)
	}
	require.NoError(t, m.CleanupAll(ctx))
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, statusKeys(st))
	require.Eventually(t, func() bool { // the hook may lag
		rp.mu.Lock()
		defer rp.mu.Unlock()
		return len(rp.open) == 0 || len(rp.violations) > 0
	}, 10*time.Second, time.Millisecond)
	l.check(t)
	l.checkRuns(t)

	rp.mu.Lock()
	defer rp.mu.Unlock()
	var supervised int
	for tok := range l.sup {
		if l.registered[tok] {
			supervised++
		}
	}
	t.Logf("%d registrations (%d supervised) over %d operations, %d given up; %d events, restarts %v, gave up %v, %d dependents linked, %d ends held for dependents; at quiet points %v; %d restarted task runs began cancelled",
		l.next.Load(), supervised, goroutines*opsEach, len(l.gaveUp), rp.events, rp.restarts, rp.gaveUp, rp.links, rp.heldEnds, l.states, l.cancelledRuns.Load())
	require.NotEmpty(t, l.gaveUp, "some callers gave up")
	require.NotZero(t, rp.restarts[resman.KindProcess], "processes restarted")
	require.NotZero(t, rp.restarts[resman.KindTask], "tasks restarted")
	require.NotZero(t, rp.heldEnds, "dependencies ended after their dependents")
}
