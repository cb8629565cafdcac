// Package baseline holds the raw baselines that benchmarks in more than one
// package run beside resman's numbers.
package baseline

import (
	"context"
	"runtime"
	"sync"
	"testing"
)

// CancelAll is row 4's raw baseline, once per b.N: start n goroutines that
// wait on their contexts, collect the garbage, then time cancelling them
// all and waiting for them on a WaitGroup.
func CancelAll(b *testing.B, n int) {
	for range b.N {
		b.StopTimer()
		var wg sync.WaitGroup
		cancels := make([]context.CancelFunc, n)
		for i := range cancels {
			ctx, cancel := context.WithCancel(context.Background())
			cancels[i] = cancel
			wg.Add(1)
			go func() { defer wg.Done(); <-ctx.Done() }() // owned by CancelAll; ends at the cancel
		}
		runtime.GC() // the setup's garbage is not the timed part's
		b.StartTimer()
		for _, c := range cancels {
			c()
		}
		wg.Wait()
	}
}
