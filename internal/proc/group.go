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
	forgetStatm(pid)
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
