package supervisor

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPoolAfterCloseARunGetsAGoroutineOfItsOwn(t *testing.T) {
	p := newPool()
	ran := make(chan struct{})
	p.Schedule(func() { close(ran) })
	<-ran
	p.close()
	p.wait()
	p.mu.Lock()
	workers := p.workers
	p.mu.Unlock()
	require.Zero(t, workers, "close ends the workers once idle")
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
