package resman

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// The reply-process stock: a speed trick for BenchmarkRoundTrip (row 1 of
// BENCHMARKS.md: a register/unregister pair ≤ 3× a raw round trip, and the
// 8-goroutine throughput ≥ 50% of raw). A reply process whose reply was
// read serves the caller's next request, which spares a process-registry
// insert and delete per request; one whose caller gave up unregisters
// itself when its late reply comes (replyProcess's CAS decides). The plain
// path it replaces is a replySource whose get is newReplyProcess and whose
// took unregisters the process.

// replies is a Manager's stock of reply processes whose reply was read.
type replies struct {
	system *actor.ActorSystem
	mu     sync.Mutex
	free   []*replyProcess
	closed bool // the Manager is shut down: no more stock
}

// maxFreeReplies bounds the stock: as many as callers wait at once, up to this.
const maxFreeReplies = 256

func (rs *replies) get() *replyProcess {
	rs.mu.Lock()
	if n := len(rs.free); n > 0 {
		r := rs.free[n-1]
		rs.free = rs.free[:n-1]
		rs.mu.Unlock()
		return r
	}
	rs.mu.Unlock()
	return newReplyProcess(rs.system)
}

// put takes back a reply process whose reply was read.
func (rs *replies) put(r *replyProcess) {
	r.state.Store(replyWaiting)
	rs.mu.Lock()
	if !rs.closed && len(rs.free) < maxFreeReplies {
		rs.free = append(rs.free, r)
		r = nil
	}
	rs.mu.Unlock()
	if r != nil {
		rs.system.ProcessRegistry.Remove(r.pid)
	}
}

// took takes back r, whose reply resp was read, and returns the reply.
func (rs *replies) took(r *replyProcess, resp any) (any, error) {
	rs.put(r)
	return replied(resp)
}

// close unregisters the stock; later puts unregister at once.
func (rs *replies) close() {
	rs.mu.Lock()
	free := rs.free
	rs.free, rs.closed = nil, true
	rs.mu.Unlock()
	for _, r := range free {
		rs.system.ProcessRegistry.Remove(r.pid)
	}
}
