package resman_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/resman-dev/resman"
)

// The model's keys. A key "x:rest" names its own dependency: a registration
// under it, of any kind, depends on the resource of kind x (p process, t
// task, c custom resource) under the key rest. Since the key says what a
// registration depends on, the event stream, which carries only kinds and
// keys, is enough to rebuild the dependency graph.
var (
	baseKeys = []string{"a", "b", "c", "d", "e"}
	depKeys  = []string{"p:a", "t:b", "c:c", "p:d", "t:p:a", "c:t:b", "p:c:c"}
	// supervisedKeys are the process keys Supervise uses; StartProcess uses
	// the others. Supervise calls on one key never overlap (see
	// ledger.claimSupervise), which is how the model tells its registrations
	// apart in the event stream.
	supervisedKeys = map[string]bool{"c": true, "d": true, "e": true, "c:c": true, "p:d": true, "p:c:c": true}
)

var kindOfLetter = map[byte]resman.Kind{'p': resman.KindProcess, 't': resman.KindTask, 'c': resman.KindCustomResource}

// dependency returns what a registration under key depends on.
func dependency(key string) (resman.Ref, bool) {
	if len(key) < 3 || key[1] != ':' {
		return resman.Ref{}, false
	}
	return resman.Ref{Kind: kindOfLetter[key[0]], Key: key[2:]}, true
}

// dependedOn reports whether some key depends on kind's key: unregistering
// it may be refused.
func dependedOn(kind resman.Kind, key string) bool {
	for _, k := range depKeys {
		if d, _ := dependency(k); d == (resman.Ref{Kind: kind, Key: key}) {
			return true
		}
	}
	return false
}

// runError is a supervised task's failed run: its token travels in the
// EventExited of that run.
type runError struct {
	tok int64
	run int32
}

func (e *runError) Error() string { return fmt.Sprintf("token %d: run %d failed", e.tok, e.run) }

// replay rebuilds the registry from the event hook's stream alone, and
// checks the stream as it goes. The hook is called in order, so under each
// kind and key the stream is a sequence of registrations, each an
// EventRegistered, then run events, then exactly one end (EventStopped,
// EventFailed or EventUnregistered). Anything else is a violation: a second
// registration while one is open, an end of nothing, a run event after the
// end (a run that started after its registration ended), a dependent
// registered without its dependency, or a registration that ends while a
// registration that depends on it is still open.
type replay struct {
	mu           sync.Mutex
	open         map[resman.Ref]*interval
	all          []*interval
	violations   []string
	registered   map[resman.Ref]int
	unregistered map[resman.Ref]int
	events       int
	links        int                 // dependents registered under an open dependency
	heldEnds     int                 // ends of a registration that had dependents
	restarts     map[resman.Kind]int // EventRestarted
	gaveUp       map[resman.Kind]int // EventGaveUp

	// Supervise calls, by key: a registration of a supervised key is the
	// one whose EventRegistered is stamped within a call's window. Calls on
	// one key never overlap, and after a call that gave up (whose
	// registration may still come) none is made until that registration has
	// come and gone, or a probe finds the key free, or a quiet point passes.
	windows  map[string][]window
	inflight map[string]*window // the call under way, if any
	tainted  map[string]bool    // a call gave up in this phase
	supIv    map[int64][]*interval

	dir     string          // supervised processes: runs files, and an end flag beside each
	taskEnd func(tok int64) // called when the manager ends the registration that ran tok's function
}

// window is a Supervise call's time.
type window struct {
	tok        int64
	start, end time.Time // end zero: under way, or the caller gave up (open until the phase's quiet point)
}

// interval is one registration as the event stream shows it.
type interval struct {
	ref        resman.Ref
	at         time.Time // its EventRegistered's
	closed     bool
	end        resman.EventType
	dependents []*interval
	pids       []int          // processes: the PIDs its events named (first run, restarts)
	taskToks   map[int64]bool // tasks: the tokens named by its runs' errors
	tok        int64          // supervised processes: the token whose Supervise window holds at
}

// runsFile is where each run of a supervised process token appends its
// PID; the model creates runsFile+".ended" as soon as it sees the
// registration end, and a run that finds it appends its PID to
// runsFile+".late".
func runsFile(dir string, tok int64) string { return filepath.Join(dir, strconv.FormatInt(tok, 10)) }

func newReplay(dir string, taskEnd func(tok int64)) *replay {
	return &replay{open: map[resman.Ref]*interval{}, registered: map[resman.Ref]int{}, unregistered: map[resman.Ref]int{},
		restarts: map[resman.Kind]int{}, gaveUp: map[resman.Kind]int{}, windows: map[string][]window{}, inflight: map[string]*window{}, tainted: map[string]bool{}, supIv: map[int64][]*interval{},
		dir: dir, taskEnd: taskEnd}
}

// claim takes key for one Supervise call, unless a call on it is under
// way. tainted says a call gave up since the last quiet point: the caller
// must resolve (or abandon) the key before it begins.
func (rp *replay) claim(key string) (ok, tainted bool) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.inflight[key] != nil {
		return false, false
	}
	rp.inflight[key] = &window{} // no token yet: attributes nothing
	if rp.tainted[key] && rp.over(key) {
		rp.closeOpen(key)
	}
	return true, rp.tainted[key]
}

// over reports whether every given-up call on key made a registration that
// has ended since: such a call can make no other. rp.mu is held.
func (rp *replay) over(key string) bool {
	for _, w := range rp.windows[key] {
		if !w.end.IsZero() {
			continue
		}
		ivs := rp.supIv[w.tok]
		if len(ivs) == 0 || !ivs[len(ivs)-1].closed {
			return false
		}
	}
	return true
}

// closeOpen closes the windows of given-up calls on key; rp.mu is held.
func (rp *replay) closeOpen(key string) {
	now := time.Now()
	for i, w := range rp.windows[key] {
		if w.end.IsZero() {
			rp.windows[key][i].end = now
		}
	}
	delete(rp.tainted, key)
}

// abandon gives a claimed key up.
func (rp *replay) abandon(key string) {
	rp.mu.Lock()
	delete(rp.inflight, key)
	rp.mu.Unlock()
}

// resolve closes the windows of given-up calls on key, whose registrations
// (if any) are known to be over.
func (rp *replay) resolve(key string) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.closeOpen(key)
}

// begin opens the window of tok's call on a claimed key.
func (rp *replay) begin(key string, tok int64) {
	rp.mu.Lock()
	rp.inflight[key].tok, rp.inflight[key].start = tok, time.Now()
	rp.mu.Unlock()
}

// release ends key's call; gaveUp leaves its window open.
func (rp *replay) release(key string, gaveUp bool) {
	end := time.Now()
	rp.mu.Lock()
	defer rp.mu.Unlock()
	w := *rp.inflight[key]
	delete(rp.inflight, key)
	if gaveUp {
		rp.tainted[key] = true
	} else {
		w.end = end
	}
	rp.windows[key] = append(rp.windows[key], w)
}

// quiet closes the windows of calls that gave up: at a quiet point their
// registrations, if any, have come and gone.
func (rp *replay) quiet() {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	now := time.Now()
	for key, ws := range rp.windows {
		for i := range ws {
			if ws[i].end.IsZero() {
				ws[i].end = now
			}
		}
		delete(rp.tainted, key)
	}
}

// attribute returns the token of the Supervise call whose window holds at;
// rp.mu is held.
func (rp *replay) attribute(key string, at time.Time) int64 {
	var in []int64
	for _, w := range rp.windows[key] {
		if !at.Before(w.start) && (w.end.IsZero() || !at.After(w.end)) {
			in = append(in, w.tok)
		}
	}
	if w := rp.inflight[key]; w != nil && w.tok != 0 && !at.Before(w.start) {
		in = append(in, w.tok)
	}
	if len(in) != 1 {
		rp.violate("process %q registered at %v within %d Supervise calls (tokens %v)", key, at, len(in), in)
		return 0
	}
	return in[0]
}

func (rp *replay) violate(format string, args ...any) {
	if len(rp.violations) < 20 {
		rp.violations = append(rp.violations, fmt.Sprintf(format, args...))
	}
}

// hook is the manager's event hook.
func (rp *replay) hook(e resman.Event) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.events++
	ref := resman.Ref{Kind: e.Kind, Key: e.Key}
	iv := rp.open[ref]
	switch e.Type {
	case resman.EventRegistered:
		if iv != nil {
			rp.violate("%v %q registered while its earlier registration is open", e.Kind, e.Key)
		}
		iv = &interval{ref: ref, at: e.At, taskToks: map[int64]bool{}}
		if e.PID != 0 {
			iv.pids = append(iv.pids, e.PID)
		}
		if d, ok := dependency(e.Key); ok {
			if dep := rp.open[d]; dep == nil {
				rp.violate("%v %q registered, but its dependency %v %q is not", e.Kind, e.Key, d.Kind, d.Key)
			} else {
				dep.dependents = append(dep.dependents, iv)
				rp.links++
			}
		}
		if e.Kind == resman.KindProcess && supervisedKeys[e.Key] {
			if iv.tok = rp.attribute(e.Key, e.At); iv.tok != 0 {
				rp.supIv[iv.tok] = append(rp.supIv[iv.tok], iv)
			}
		}
		rp.open[ref] = iv
		rp.all = append(rp.all, iv)
		rp.registered[ref]++
	case resman.EventStopped, resman.EventFailed, resman.EventUnregistered:
		if iv == nil {
			rp.violate("%v %q: %v, but nothing is registered", e.Kind, e.Key, e.Type)
			return
		}
		if len(iv.dependents) > 0 {
			rp.heldEnds++
		}
		for _, d := range iv.dependents {
			if !d.closed {
				rp.violate("%v %q: %v while its dependent %v %q is still registered", e.Kind, e.Key, e.Type, d.ref.Kind, d.ref.Key)
			}
		}
		if e.Type == resman.EventFailed {
			rp.violate("%v %q failed to end: %v", e.Kind, e.Key, e.Err)
		}
		if e.Type == resman.EventUnregistered {
			rp.unregistered[ref]++
		}
		iv.closed, iv.end = true, e.Type
		delete(rp.open, ref)
		if iv.tok != 0 {
			if err := os.WriteFile(runsFile(rp.dir, iv.tok)+".ended", nil, 0o644); err != nil {
				rp.violate("end flag: %v", err)
			}
		}
		if e.Type != resman.EventUnregistered {
			// A Task handed back goes on with its runs: it is its caller's.
			for tok := range iv.taskToks {
				rp.taskEnd(tok)
			}
		}
	default: // a run's events: Exited, Restarting, Restarted, Ready, GaveUp
		if iv == nil {
			rp.violate("%v %q: %v (pid %d) after its registration ended", e.Kind, e.Key, e.Type, e.PID)
			return
		}
		switch e.Type {
		case resman.EventRestarted:
			rp.restarts[e.Kind]++
			if e.PID != 0 {
				iv.pids = append(iv.pids, e.PID)
			}
		case resman.EventGaveUp:
			rp.gaveUp[e.Kind]++
		case resman.EventExited:
			var re *runError
			if errors.As(e.Err, &re) {
				iv.taskToks[re.tok] = true
				if len(iv.taskToks) > 1 {
					rp.violate("task %q: one registration ran the functions of tokens %v", e.Key, iv.taskToks)
				}
			}
		}
	}
}

// openNaming reports whether an open task registration ran tok's function.
func (rp *replay) openNaming(tok int64) bool {
	for _, iv := range rp.open {
		if iv.taskToks[tok] {
			return true
		}
	}
	return false
}

// modelProcs returns this test's runs that are alive (zombies left out):
// children of the test process whose environment carries the nonce, each
// with its token and command name.
func modelProcs(nonce string) map[int]modelProc {
	out := map[int]modelProc{}
	dirs, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // state, ppid, ...
		if len(f) < 2 || f[0] == "Z" || f[0] == "X" || f[1] != strconv.Itoa(self) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil {
			continue
		}
		tok := int64(0)
		for _, kv := range strings.Split(string(env), "\x00") {
			if v, ok := strings.CutPrefix(kv, "MODEL_TOKEN="+nonce+"-"); ok {
				tok, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		if tok == 0 {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "comm"))
		out[pid] = modelProc{tok: tok, comm: strings.TrimSpace(string(comm))}
	}
	return out
}

type modelProc struct {
	tok  int64
	comm string
}

// tokenOfCmd reads the token a supervised run carries in its environment.
func tokenOfCmd(cmd *exec.Cmd, nonce string) int64 {
	var tok int64
	for _, kv := range cmd.Env {
		if v, ok := strings.CutPrefix(kv, "MODEL_TOKEN="+nonce+"-"); ok {
			tok, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return tok
}

// runsOf counts the runs a supervised process's token started: each run
// appends its PID to the token's file before anything else.
func runsOf(path string) int {
	b, _ := os.ReadFile(path)
	return len(strings.Fields(string(b)))
}
