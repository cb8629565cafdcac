package supervisor

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPoolBlockingLendsItsWorker(t *testing.T) {
	p := newPool()
	release := make(chan struct{})
	var blocked sync.WaitGroup
	// Every worker ends up waiting inside Blocking, as stopping children do.
	for range p.size {
		blocked.Add(1)
		p.Schedule(func() { p.Blocking(func() { blocked.Done(); <-release }) })
	}
	blocked.Wait()
	// Others still get served meanwhile.
	var ran sync.WaitGroup
	for range 10 * p.size {
		ran.Add(1)
		p.Schedule(ran.Done)
	}
	done := make(chan struct{})
	go func() { ran.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("runs waited for the blocked workers")
	}
	close(release)
	p.close()
	p.wait()
	// After close, a run still runs, on a goroutine of its own.
	after := make(chan struct{})
	p.Schedule(func() { close(after) })
	<-after
}

func TestPoolQueuesABurstOnAFewWorkers(t *testing.T) {
	p := newPool()
	defer p.wait()
	defer p.close()
	var mu sync.Mutex
	var got []int
	var wg sync.WaitGroup
	gate := make(chan struct{})
	// One run holds a worker until the rest are queued.
	wg.Add(1)
	p.Schedule(func() { <-gate; wg.Done() })
	for i := range 1000 {
		wg.Add(1)
		p.Schedule(func() {
			mu.Lock()
			got = append(got, i)
			mu.Unlock()
			wg.Done()
		})
	}
	close(gate)
	wg.Wait()
	require.Len(t, got, 1000)
	p.mu.Lock()
	workers := p.workers
	p.mu.Unlock()
	require.LessOrEqual(t, workers, p.size, "a burst is queued, not given a goroutine per run")
}
