package supervisor

import (
	"runtime"
	"sync"
)

// pool is the protoactor Dispatcher of a supervisor and its children. A
// mailbox run goes to a long-lived worker when one is idle, else to a new
// goroutine, as protoactor's default does. Long-lived workers keep their
// grown stacks: with the default dispatcher every run starts on a fresh 2
// KiB stack and grows it, which cost a quarter of a register/unregister
// round trip. Spilling over to new goroutines means a child that waits (in
// Stopping) never holds up anybody else. The workers are owned by the pool;
// close ends them and Wait waits for them.
type pool struct {
	work chan func() // unbuffered: a send succeeds only into an idle worker's hands
	quit chan struct{}
	size int

	once    sync.Once // starts the workers at the first Schedule
	stop    sync.Once
	workers sync.WaitGroup
}

func newPool() *pool {
	return &pool{work: make(chan func()), quit: make(chan struct{}), size: max(2, runtime.GOMAXPROCS(0))}
}

// Schedule runs fn on an idle worker, or on a new goroutine.
func (p *pool) Schedule(fn func()) {
	p.once.Do(p.start)
	select {
	case p.work <- fn:
	default:
		go fn()
	}
}

// Throughput is protoactor's default: messages per run before yielding.
func (p *pool) Throughput() int { return 300 }

func (p *pool) start() {
	select {
	case <-p.quit:
		return // closed before it started
	default:
	}
	for range p.size {
		p.workers.Add(1)
		go p.worker()
	}
}

func (p *pool) worker() {
	defer p.workers.Done()
	for {
		select {
		case fn := <-p.work:
			fn()
		case <-p.quit:
			return
		}
	}
}

// close ends the workers once they are idle; later runs get goroutines of
// their own.
func (p *pool) close() {
	p.stop.Do(func() {
		p.once.Do(func() {}) // a pool that never started never will
		close(p.quit)
	})
}

// wait returns once every worker has ended.
func (p *pool) wait() { p.workers.Wait() }
