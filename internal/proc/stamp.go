package proc

// The stamped probe: a speed trick that BenchmarkExitLatency (exit →
// WaitProcess ≤ 1 ms), BenchmarkCleanupAllProcesses (≤ 1.5× raw) and
// BenchmarkCleanupAllDependencyTree (≤ 1.5× raw) need: without it every
// group check of a stop is a pass over /proc (about 10 µs a process),
// shared by concurrent stops. A Stamp of the pid counter, taken
// just before a leader starts, bounds where its descendants' pids can be,
// so GroupEmpty probes the few pids handed out since (kill(pid, 0), then
// their stat) instead. The stamp is not trusted when the counter may have
// wrapped. To remove the trick, make Stamp an empty struct whose probe
// answers "not sure": GroupEmpty then always makes the pass.

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// maxProbe is the most pids a probe reads (those neither tracked nor gone)
// before it leaves the answer to a pass over /proc; maxSpan bounds the pids
// it considers at all (a kill(pid, 0) each, 0.3 µs): past either, a pass
// is cheaper.
const (
	maxProbe = 256
	maxSpan  = 4096
)

// forkRate bounds how many pids a machine hands out per second; it only
// serves to rule out a wrap of the pid counter before a registration.
const forkRate = 2_000_000

// Stamp is the pid counter's state before a leader started: where its
// descendants' pids begin. The zero Stamp makes GroupEmpty use a pass.
type Stamp struct {
	leader  int
	last    int // the newest pid then
	forks   int // forks since boot then
	tasks   int // tasks (threads) alive then
	pidMax  int
	trusted bool
}

// NewStamp reads the counters; call it just before starting the leader and
// set the leader with Leader once it has started.
func NewStamp() Stamp {
	var st Stamp
	st.last, st.tasks, st.trusted = readLoadavg()
	forks, ok := readForks()
	st.forks, st.pidMax = forks, pidMax()
	st.trusted = st.trusted && ok && st.pidMax > 0
	return st
}

// Leader returns st for the leader pid, which started after st was taken.
func (st Stamp) Leader(pid int) Stamp {
	st.leader = pid
	return st
}

// StampRegistered returns a Stamp for a leader that started before it was
// registered: good only if it is young enough that the pid counter cannot
// have wrapped since it started.
func StampRegistered(pid int) Stamp {
	st := NewStamp().Leader(pid)
	if !st.trusted || st.last < pid {
		st.trusted = false
		return st
	}
	age, ok := processAge(pid)
	window := time.Duration(float64(st.pidMax-300-st.tasks) / forkRate * float64(time.Second))
	st.trusted = ok && age >= 0 && age < window
	return st
}

// Probes are shared: leaders started together have overlapping spans, so
// when many of them are stopped together, a probe each would read again
// what the others read: O(n²) for n leaders
// (BenchmarkCleanupAllDependencyTree: 1,000 stops, about 450 kill(pid, 0)
// each). Instead the probes asked for while a walk of the pid range is
// under way wait for it to end, and the next walk answers all of them at
// once, from the oldest of their leaders to the newest pid. Whoever asked
// first in a batch walks for it (walks.lead).

// probeReq is one GroupEmpty probe waiting for a walk.
type probeReq struct {
	st          Stamp
	pgid        int
	wake        chan struct{} // one send: answered, or asked to walk for the next batch
	lead        bool          // asked to walk (set under walks.mu before wake)
	empty, sure bool          // the answer (set before wake)
}

var walks struct {
	mu      sync.Mutex
	pending []*probeReq // waiting for the next walk
	walking bool        // a walk is under way or about to start
}

// probe answers GroupEmpty from the pids handed out since st; sure is false
// when it cannot (no stamp, the counter may have wrapped, too many pids).
func (st Stamp) probe(pgid int) (empty, sure bool) {
	if !st.trusted || st.leader <= 0 {
		return false, false
	}
	q := &probeReq{st: st, pgid: pgid, wake: make(chan struct{}, 1)}
	walks.mu.Lock()
	walks.pending = append(walks.pending, q)
	if walks.walking {
		walks.mu.Unlock()
		<-q.wake
		if !q.lead {
			return q.empty, q.sure
		}
		walks.mu.Lock()
	}
	walks.walking = true
	batch := walks.pending
	walks.pending = nil
	walks.mu.Unlock()
	walk(batch) // answers q too
	walks.mu.Lock()
	if len(walks.pending) > 0 {
		// Those who asked during the walk: the first of them walks next.
		next := walks.pending[0]
		next.lead = true
		next.wake <- struct{}{}
	} else {
		walks.walking = false
	}
	walks.mu.Unlock()
	return q.empty, q.sure
}

// walk answers a batch of probes with one pass over the pids handed out
// since the oldest of their leaders, and wakes each (but a lead, which
// reads its answer itself).
func walk(batch []*probeReq) {
	defer func() {
		for _, q := range batch {
			if !q.lead {
				q.wake <- struct{}{}
			}
		}
	}()
	last, tasks, ok := readLoadavg()
	if !ok {
		return
	}
	var eligible []*probeReq
	for _, q := range batch {
		if last < q.st.last || last < q.st.leader || last-q.st.leader > maxSpan {
			continue // the counter wrapped, or too many pids since
		}
		eligible = append(eligible, q)
	}
	if len(eligible) == 0 {
		return
	}
	forks, ok := readForks()
	if !ok {
		return
	}
	// The counter moves by one per pid handed out plus one per pid in use it
	// skips: fewer than a full turn since a stamp means no wrap came back
	// around. The walk starts after the oldest leader left.
	n, from := 0, 0
	for _, q := range eligible {
		if (forks-q.st.forks)+q.st.tasks+tasks < q.st.pidMax-300 {
			eligible[n] = q
			n++
			if from == 0 || q.st.leader < from {
				from = q.st.leader
			}
		}
	}
	eligible = eligible[:n]
	live := make(map[int]struct{})
	buf := make([]byte, 512)
	probes := 0
	for pid := from + 1; pid <= last && len(eligible) > 0; pid++ {
		if isKnown(pid) || unix.Kill(pid, 0) == unix.ESRCH {
			continue
		}
		if probes++; probes > maxProbe {
			return // a pass over /proc is cheaper
		}
		g, state, ok := readStat("/proc/"+strconv.Itoa(pid)+"/stat", buf)
		if ok && state != 'Z' && state != 'X' && state != 'x' {
			live[g] = struct{}{}
		}
	}
	for _, q := range eligible {
		_, found := live[q.pgid]
		q.empty, q.sure = !found, true
	}
}

// readLoadavg returns the newest pid and the number of tasks from
// /proc/loadavg ("0.00 0.01 0.05 1/123 4567").
func readLoadavg() (last, tasks int, ok bool) {
	b, err := readSmall("/proc/loadavg")
	if err != nil {
		return 0, 0, false
	}
	f := bytes.Fields(b)
	if len(f) < 5 {
		return 0, 0, false
	}
	_, t, found := bytes.Cut(f[3], []byte("/"))
	tasks, err1 := strconv.Atoi(string(t))
	last, err2 := strconv.Atoi(string(f[4]))
	return last, tasks, found && err1 == nil && err2 == nil
}

// readForks returns the number of forks since boot ("processes" in /proc/stat).
func readForks() (int, bool) {
	b, err := readSmall("/proc/stat")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("processes ")); ok {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			return n, err == nil
		}
	}
	return 0, false
}

// processAge returns how long ago pid started, from its stat's starttime
// (clock ticks since boot) and /proc/uptime.
func processAge(pid int) (time.Duration, bool) {
	b, err := readSmall("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	f := statFields(b)
	if len(f) < 20 {
		return 0, false
	}
	ticks, err := strconv.ParseInt(string(f[19]), 10, 64) // field 22: starttime
	if err != nil {
		return 0, false
	}
	u, err := readSmall("/proc/uptime")
	if err != nil {
		return 0, false
	}
	uf := bytes.Fields(u)
	if len(uf) < 1 {
		return 0, false
	}
	up, err := strconv.ParseFloat(string(uf[0]), 64)
	if err != nil {
		return 0, false
	}
	const hz = 100 // USER_HZ: the unit of starttime on Linux, whatever the kernel's HZ
	return time.Duration((up - float64(ticks)/hz) * float64(time.Second)), true
}
