package proc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// Usage is what a process (or its cgroup) has used.
type Usage struct {
	CPU    time.Duration // user + system CPU time
	Memory int64         // resident memory, bytes
}

// UsageOf returns the usage of process pid: summed over its cgroup when
// that cgroup lies below cgroupRoot (WithCgroup's dir; "" for none), else
// the process's own figures from /proc. A cgroup without the memory
// controller has its members' resident memory summed from /proc instead.
func UsageOf(pid int, cgroupRoot string) (Usage, error) {
	if cgroupRoot != "" {
		if dir := cgroupDir(pid, cgroupRoot); dir != "" {
			if u, err := cgroupUsage(dir); err == nil {
				return u, nil
			}
		}
	}
	return procUsage(pid)
}

// procUsage reads the process's CPU clock and /proc/<pid>/statm; /proc/<pid>/stat
// if the clock cannot be read.
func procUsage(pid int) (Usage, error) {
	cpu, ok := cpuClock(pid)
	if !ok {
		var err error
		if cpu, err = statCPU(pid); err != nil {
			return Usage{}, err
		}
	}
	m, err := rss(pid)
	return Usage{CPU: cpu, Memory: m}, err
}

// statCPU is a process's user + system time from /proc/<pid>/stat.
func statCPU(pid int) (time.Duration, error) {
	b, err := readSmall("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f := statFields(b)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad CPU times", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// cpuClock reads the CPU time of process pid's whole thread group from its
// process CPU clock (clock_getcpuclockid(3): CPUCLOCK_SCHED, no thread
// bit): one system call, where /proc/<pid>/stat costs an open, two reads and
// a close, and about twice as much as /proc/<pid>/statm (BenchmarkMetricsCollect).
func cpuClock(pid int) (time.Duration, bool) {
	const cpuclockSched = 2
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(^pid<<3|cpuclockSched), &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}

// rss is a process's resident memory from /proc/<pid>/statm.
func rss(pid int) (int64, error) {
	var b []byte
	var kept [128]byte
	if n, ok := statmKept(pid, kept[:]); ok {
		b = kept[:n]
	} else {
		var err error
		if b, err = readSmall(statmPath(pid)); err != nil {
			return 0, err
		}
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/statm: %q", pid, b)
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * int64(os.Getpagesize()), nil
}

func statmPath(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/statm" }

// cgroupDir returns the cgroup v2 directory of pid if it lies below root.
func cgroupDir(pid int, root string) string {
	path := cgroupOf(pid)
	if path == "" {
		return ""
	}
	for _, mount := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if dir := filepath.Join(mount, path); strings.HasPrefix(dir, root+"/") {
			return dir
		}
	}
	return ""
}

// cgroupUsage sums a cgroup's CPU (cpu.stat's usage_usec) and memory
// (memory.current, else its members' resident memory).
func cgroupUsage(dir string) (Usage, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			usec, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Usage{}, err
			}
			u.CPU, found = time.Duration(usec)*time.Microsecond, true
		}
	}
	if !found {
		return Usage{}, fmt.Errorf("%s/cpu.stat: no usage_usec", dir)
	}
	if b, err := readSmall(filepath.Join(dir, "memory.current")); err == nil {
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil {
			u.Memory = n
			return u, nil
		}
	}
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return Usage{}, err
	}
	for _, f := range strings.Fields(string(procs)) {
		if pid, err := strconv.Atoi(f); err == nil {
			if m, err := rss(pid); err == nil {
				u.Memory += m
			}
		}
	}
	return u, nil
}
