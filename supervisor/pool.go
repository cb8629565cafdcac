package supervisor

import (
	"runtime"
	"sync"
)

// pool is the protoactor Dispatcher of a supervisor and its children: a
// FIFO of mailbox runs served by a few long-lived workers. It is a speed
// trick behind protoactor's Dispatcher interface, for BenchmarkRoundTrip
// (row 1 of BENCHMARKS.md) and BenchmarkCleanupAllTasks (row 4: 139 ms →
// 80 ms); without it (Props without WithDispatcher) protoactor's default
// dispatcher serves the same actors. protoactor's default starts a
// goroutine per run, and growing each fresh 2 KiB stack cost a quarter of a
// register/unregister round trip; a burst (a CleanupAll of 10,000 tasks
// schedules 10,000 children at once) paid it 10,000 times. Runs never
// block: no actor of resman waits in its Receive (a stopping child holds
// its stop open instead). The workers are owned by the pool; close ends
// them once idle and wait waits for them.
type pool struct {
	size int // workers that serve the queue

	mu      sync.Mutex // guards the fields below
	cond    *sync.Cond // signalled when a run is queued or the pool closes
	runs    []func()   // the queue: runs[head:]
	head    int
	idle    int  // workers waiting on cond
	workers int  // workers alive
	closed  bool // later runs get goroutines of their own

	wg sync.WaitGroup // one per worker
}

func newPool() *pool {
	p := &pool{size: max(2, runtime.GOMAXPROCS(0))}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// Schedule queues fn for a worker, starting one if fewer than size serve
// the queue.
func (p *pool) Schedule(fn func()) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		go fn()
		return
	}
	p.runs = append(p.runs, fn)
	switch {
	case p.idle > 0:
		p.cond.Signal()
	case p.workers < p.size:
		p.startLocked()
	}
	p.mu.Unlock()
}

// Throughput is protoactor's default: messages per run before yielding.
func (p *pool) Throughput() int { return 300 }

func (p *pool) startLocked() {
	p.workers++
	p.wg.Add(1)
	go p.worker()
}

func (p *pool) worker() {
	defer p.wg.Done()
	p.mu.Lock()
	for {
		for p.head == len(p.runs) {
			p.runs, p.head = p.runs[:0], 0
			if p.closed {
				p.workers--
				p.mu.Unlock()
				return
			}
			if p.spin() {
				continue
			}
			p.idle++
			p.cond.Wait()
			p.idle--
		}
		fn := p.runs[p.head]
		p.runs[p.head] = nil
		p.head++
		p.mu.Unlock()
		fn()
		p.mu.Lock()
	}
}

// spin yields a few times before a worker sleeps, so that a burst of runs
// (a CleanupAll sends thousands) finds it awake instead of paying a wake-up
// per run. It reports whether a run came. Called and returns with mu held.
func (p *pool) spin() bool {
	for range 32 {
		p.mu.Unlock()
		runtime.Gosched()
		p.mu.Lock()
		if p.head < len(p.runs) || p.closed {
			return true
		}
	}
	return false
}

// close ends the workers once the queue is empty; later runs get
// goroutines of their own.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

// wait returns once every worker has ended.
func (p *pool) wait() { p.wg.Wait() }
