package proc

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Getpgid returns pid's process-group id.
func Getpgid(pid int) (int, error) { return unix.Getpgid(pid) }

// OwnPgid is the process group of the program itself: resman never signals it.
func OwnPgid() int { return unix.Getpgrp() }

// SignalGroup sends sig to every process in group pgid. Callers must hold a
// reason to know pgid is still reserved (its leader not yet reaped, or a
// member still alive), so that the id cannot have been reused.
func SignalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 || pgid == OwnPgid() {
		return syscall.EPERM // never the init group, never our own
	}
	return unix.Kill(-pgid, sig)
}

// Group emptiness. A group is empty when no live process other than its
// leader (which the caller knows has exited and is not yet reaped) has its
// id. Linux has no index of processes by group, so the general answer is a
// pass over /proc, at about 10 µs a process. Two things make it cheaper:
//
//   - Leaders tracked by resman (TrackLeader) are skipped without reading
//     their stat: their group is their own pid, never another's.
//   - A Stamp taken before the leader started bounds where its descendants
//     can be: pids are handed out in increasing order, so unless the pid
//     counter wrapped, every process created since has a pid between the
//     leader's and the newest one. When few are, they are probed one by one
//     (kill(pid, 0) costs 0.3 µs; only existing ones are read).
//
// The pass sees every member but tracked leaders (whose group could only
// change by a setpgid of their own into another's group); the probe sees
// the members whose pid was handed out after the leader's — its
// descendants — and not a process that joined the group from elsewhere
// with setpgid (as only a job-control shell does).

// known is the set of group leaders resman tracks (their group is their
// pid): one bit per pid, read without a lock, since every stop under way
// looks up many pids at once.
var known struct {
	once sync.Once
	bits []atomic.Uint64 // pid_max bits; a pid beyond (pid_max raised since) is never known
}

func knownBits() []atomic.Uint64 {
	known.once.Do(func() {
		n := pidMax()
		if n <= 0 {
			n = 1 << 22 // Linux's largest pid_max
		}
		known.bits = make([]atomic.Uint64, n/64+1)
	})
	return known.bits
}

// TrackLeader records that pid leads its own group and is tracked; call
// UntrackLeader before it is reaped (after, its pid may be reused).
func TrackLeader(pid int) {
	if b := knownBits(); pid > 0 && pid/64 < len(b) {
		b[pid/64].Or(1 << (pid % 64))
	}
}

// UntrackLeader undoes TrackLeader.
func UntrackLeader(pid int) {
	if b := knownBits(); pid > 0 && pid/64 < len(b) {
		b[pid/64].And(^uint64(1 << (pid % 64)))
	}
}

func isKnown(pid int) bool {
	b := knownBits()
	return pid > 0 && pid/64 < len(b) && b[pid/64].Load()&(1<<(pid%64)) != 0
}

// scan is one pass over /proc: the process groups that have a live member
// (zombies and tracked leaders do not count). Concurrent callers share a
// pass: with 500 stops under way, /proc is read once for all of them.
type scan struct {
	done chan struct{}
	live map[int]struct{}
}

var scans struct {
	mu  sync.Mutex
	cur *scan // the pass under way, nil if none
}

func liveGroups() map[int]struct{} {
	scans.mu.Lock()
	s := scans.cur
	if s == nil {
		s = &scan{done: make(chan struct{})}
		scans.cur = s
		scans.mu.Unlock()
		s.live = readLiveGroups()
		scans.mu.Lock()
		scans.cur = nil
		scans.mu.Unlock()
		close(s.done)
		return s.live
	}
	scans.mu.Unlock()
	<-s.done
	return s.live
}

// GroupEmpty reports whether no live process other than its leader (whose
// exit the caller has seen) is left in group pgid. st, if taken before the
// leader started (or when it was registered), makes the answer cheap in the
// common case. A pass that began before the caller asked is good enough: a
// group that has emptied never fills again while its id is reserved.
func GroupEmpty(pgid int, st Stamp) bool {
	if empty, sure := st.probe(pgid); sure {
		return empty
	}
	_, ok := liveGroups()[pgid]
	return !ok
}

// WaitGroupEmpty polls until GroupEmpty holds or the deadline passes, and
// reports whether it did. Polls back off from 1 ms to 20 ms.
func WaitGroupEmpty(pgid int, st Stamp, until Until) bool {
	return pollUntil(func() bool { return GroupEmpty(pgid, st) }, until)
}

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

// probe answers GroupEmpty from the pids handed out since st; sure is false
// when it cannot (no stamp, the counter may have wrapped, too many pids).
func (st Stamp) probe(pgid int) (empty, sure bool) {
	if !st.trusted || st.leader <= 0 {
		return false, false
	}
	last, tasks, ok := readLoadavg()
	forks, ok2 := readForks()
	if !ok || !ok2 || last < st.last || last < st.leader {
		return false, false // the counter wrapped
	}
	// The counter moves by one per pid handed out plus one per pid in use it
	// skips: fewer than a full turn since st means no wrap came back around.
	if (forks-st.forks)+st.tasks+tasks >= st.pidMax-300 {
		return false, false
	}
	if last-st.leader > maxSpan {
		return false, false
	}
	buf := make([]byte, 512)
	probes := 0
	for pid := st.leader + 1; pid <= last; pid++ {
		if isKnown(pid) || unix.Kill(pid, 0) == unix.ESRCH {
			continue
		}
		if probes++; probes > maxProbe {
			return false, false
		}
		g, state, ok := readStat("/proc/"+strconv.Itoa(pid)+"/stat", buf)
		if ok && g == pgid && state != 'Z' && state != 'X' && state != 'x' {
			return false, true
		}
	}
	return true, true
}

// Until is the end of a wait, read at each poll: another goroutine may
// bring it forward while the wait runs (a stop that comes while an exited
// leader's group is being cleared escalates at its own deadline).
type Until func() time.Time

// At is an Until that does not move.
func At(deadline time.Time) Until { return func() time.Time { return deadline } }

// pollUntil checks done until it holds or the deadline passes, and reports
// whether it held. Polls back off from 1 ms to 20 ms.
func pollUntil(done func() bool, until Until) bool {
	delay := time.Millisecond
	for {
		if done() {
			return true
		}
		left := time.Until(until())
		if left <= 0 {
			return false
		}
		t := time.NewTimer(min(delay, left))
		<-t.C
		delay = min(delay*2, 20*time.Millisecond)
	}
}

// readLiveGroups reads /proc/<pid>/stat for every process but the tracked
// leaders.
func readLiveGroups() map[int]struct{} {
	live := make(map[int]struct{})
	d, err := os.Open("/proc")
	if err != nil {
		return live
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	buf := make([]byte, 512)
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		if pid, err := strconv.Atoi(name); err == nil && isKnown(pid) {
			continue
		}
		pgid, state, ok := readStat("/proc/"+name+"/stat", buf)
		if !ok || state == 'Z' || state == 'X' || state == 'x' {
			continue
		}
		live[pgid] = struct{}{}
	}
	return live
}

// readStat returns the pgrp and state fields of a /proc/<pid>/stat file.
func readStat(path string, buf []byte) (pgid int, state byte, ok bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, false
	}
	n, err := unix.Read(fd, buf)
	_ = unix.Close(fd)
	if err != nil || n <= 0 {
		return 0, 0, false
	}
	return parseStat(buf[:n])
}

// parseStat parses "pid (comm) S ppid pgrp ...". comm may hold spaces and
// parentheses, so fields are counted after the last ')'.
func parseStat(b []byte) (pgid int, state byte, ok bool) {
	fields := statFields(b)
	if len(fields) < 3 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	pg, err := strconv.Atoi(string(fields[2]))
	if err != nil {
		return 0, 0, false
	}
	return pg, fields[0][0], true
}

// statFields returns the fields of a /proc/<pid>/stat line after "pid
// (comm)": the state is field 0. comm may hold spaces and parentheses, so
// they start after the last ')'.
func statFields(b []byte) [][]byte {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return bytes.Fields(b[i+1:])
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

var pidMaxOnce = sync.OnceValue(func() int {
	b, err := readSmall("/proc/sys/kernel/pid_max")
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0
	}
	return n
})

func pidMax() int { return pidMaxOnce() }

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

// readSmall reads a /proc file whole.
func readSmall(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}
