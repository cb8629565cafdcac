package proc

import (
	"bytes"
	"os"
	"strconv"
	"sync"
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

// scan is one pass over /proc: the process groups that have a live member
// (zombies do not count). Concurrent callers share a pass: with 500 stops
// under way, /proc is read once for all of them, not 500 times.
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

// GroupEmpty reports whether no live (non-zombie) process is left in group pgid.
// A pass that began before the caller asked is good enough: a group that has
// emptied never fills again while its id is reserved.
func GroupEmpty(pgid int) bool {
	_, ok := liveGroups()[pgid]
	return !ok
}

// WaitGroupEmpty polls until group pgid has no live member or the deadline
// passes, and reports whether it emptied. Polls back off from 1 ms to 20 ms.
func WaitGroupEmpty(pgid int, deadline time.Time) bool {
	return pollUntil(func() bool { return GroupEmpty(pgid) }, deadline)
}

// pollUntil checks done until it holds or the deadline passes, and reports
// whether it held. Polls back off from 1 ms to 20 ms.
func pollUntil(done func() bool, deadline time.Time) bool {
	delay := time.Millisecond
	for {
		if done() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		t := time.NewTimer(min(delay, left))
		<-t.C
		delay = min(delay*2, 20*time.Millisecond)
	}
}

// readLiveGroups reads /proc/<pid>/stat for every process.
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
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, 0, false
	}
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 3 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	pg, err := strconv.Atoi(string(fields[2]))
	if err != nil {
		return 0, 0, false
	}
	return pg, fields[0][0], true
}
