package web

import (
	"runtime"
	"sync"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/internal/proc"
)

// Reading a process's CPU time and memory costs about 15 µs (most of it the
// kernel counting pages for /proc/<pid>/statm), so a /status with 1,000
// processes spends most of its time here. Splitting the reads over the
// machine's CPUs keeps BenchmarkStatusJSON/mixed (10,000 resources, 1,000 of
// them processes) inside its 50 ms target; this file can be replaced by the
// plain loop in readUsageFrom without changing what /status says.

// usageChunk is the fewest processes worth a goroutine of their own.
const usageChunk = 128

// readUsage fills in the CPU time and memory of each live process of procs
// into out (the same length and order).
func readUsage(out []processJSON, procs []resman.ProcessStatus, cgroupRoot string) {
	workers := min(runtime.GOMAXPROCS(0), (len(procs)+usageChunk-1)/usageChunk)
	if workers <= 1 {
		readUsageFrom(out, procs, cgroupRoot)
		return
	}
	per := (len(procs) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(procs); lo += per {
		hi := min(lo+per, len(procs))
		wg.Go(func() { readUsageFrom(out[lo:hi], procs[lo:hi], cgroupRoot) })
	}
	wg.Wait()
}

func readUsageFrom(out []processJSON, procs []resman.ProcessStatus, cgroupRoot string) {
	for i, p := range procs {
		if !hasUsage(p) {
			continue
		}
		if u, err := proc.UsageOf(p.PID, cgroupRoot); err == nil {
			out[i].CPUSeconds, out[i].MemoryBytes = u.CPU.Seconds(), u.Memory
		}
	}
}
