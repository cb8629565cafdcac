package proc

// Reading many processes' usage at once, split over the machine's CPUs: a
// speed trick that BenchmarkMetricsCollect (1,000 processes ≤ 20 ms) and
// web's BenchmarkStatusJSON (10,000 resources ≤ 50 ms) need, since a
// process's reading costs several µs of system calls. To remove it, make
// UsagesOf the plain loop of usagesFrom.

import (
	"runtime"
	"sync"
)

// usageChunk is the fewest processes worth a goroutine of their own.
const usageChunk = 128

// UsagesOf reads UsageOf(pids[i], cgroupRoot) into the i-th results; ok[i]
// is false where pids[i] is not positive or the reading failed (the process
// is gone).
func UsagesOf(pids []int, cgroupRoot string) (us []Usage, ok []bool) {
	us, ok = make([]Usage, len(pids)), make([]bool, len(pids))
	workers := min(runtime.GOMAXPROCS(0), (len(pids)+usageChunk-1)/usageChunk)
	if workers <= 1 {
		usagesFrom(pids, cgroupRoot, us, ok)
		return us, ok
	}
	per := (len(pids) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(pids); lo += per {
		hi := min(lo+per, len(pids))
		wg.Go(func() { usagesFrom(pids[lo:hi], cgroupRoot, us[lo:hi], ok[lo:hi]) })
	}
	wg.Wait()
	return us, ok
}

func usagesFrom(pids []int, cgroupRoot string, us []Usage, ok []bool) {
	for i, pid := range pids {
		if pid <= 0 {
			continue
		}
		u, err := UsageOf(pid, cgroupRoot)
		us[i], ok[i] = u, err == nil
	}
}
