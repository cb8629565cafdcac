package proc

// Kept /proc/<pid>/statm descriptors: a speed trick that
// BenchmarkMetricsCollect (a collection with 1,000 processes ≤ 20 ms) and
// web's BenchmarkStatusJSON (10,000 resources ≤ 50 ms) need. Opening statm
// walks a procfs path (about 7.6 µs here); reading a kept descriptor again
// from offset 0 costs 2 µs. A descriptor is kept only for a leader resman
// tracks (TrackLeader), and UntrackLeader closes it before the leader is
// reaped, so a kept descriptor never reads a reused pid's file. To remove
// the trick, make statmKept return false: rss then opens the file each time.

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

var statms struct {
	n   atomic.Int32 // descriptors kept (read without the lock by UntrackLeader)
	mu  sync.RWMutex // guards fds, and a descriptor's use against its close
	fds map[int]int  // pid → its statm descriptor
}

// statmKept reads pid's statm into buf through a kept descriptor, opening
// one if pid is a tracked leader; false: pid is not tracked (or the read
// failed) and the caller reads the file itself.
func statmKept(pid int, buf []byte) (int, bool) {
	statms.mu.RLock()
	fd, ok := statms.fds[pid]
	if ok {
		n, err := unix.Pread(fd, buf, 0)
		statms.mu.RUnlock()
		return n, err == nil && n > 0
	}
	statms.mu.RUnlock()
	if !isKnown(pid) {
		return 0, false
	}
	statms.mu.Lock()
	defer statms.mu.Unlock()
	if fd, ok := statms.fds[pid]; ok { // kept meanwhile
		n, err := unix.Pread(fd, buf, 0)
		return n, err == nil && n > 0
	}
	// Counted before the check, so that an UntrackLeader clearing the bit
	// after it sees a descriptor may be kept and waits for the lock.
	statms.n.Add(1)
	fd, err := -1, error(nil)
	if isKnown(pid) {
		fd, err = unix.Open(statmPath(pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if fd < 0 || err != nil {
		statms.n.Add(-1)
		return 0, false
	}
	if statms.fds == nil {
		statms.fds = make(map[int]int)
	}
	statms.fds[pid] = fd
	n, err := unix.Pread(fd, buf, 0)
	return n, err == nil && n > 0
}

// forgetStatm closes pid's kept descriptor, if any. UntrackLeader calls it
// after clearing pid's bit, before the leader is reaped.
func forgetStatm(pid int) {
	if statms.n.Load() == 0 {
		return
	}
	statms.mu.Lock()
	defer statms.mu.Unlock()
	if fd, ok := statms.fds[pid]; ok {
		_ = unix.Close(fd)
		delete(statms.fds, pid)
		statms.n.Add(-1)
	}
}
