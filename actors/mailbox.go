package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// mailbox is the children's protoactor Mailbox: two FIFOs under one lock,
// where protoactor's own (UnboundedLockfree) keeps two lock-free queues.
// A speed trick for BenchmarkCleanupAllTasks (row 4 of BENCHMARKS.md:
// 42.3 → 40.6 ms at the median, in "Every outcome through the child"): a
// child reads a message or two per registration, and protoactor's mailbox
// pays for each run in cache misses (a pop of each empty queue before the
// run ends, a closure made per schedule) that a lock the child alone takes
// does not. Without it (WithMailbox(actor.UnboundedLockfree()) in Spawn)
// the same children run on protoactor's mailbox. The queues are owned by
// mu; a run is served by one dispatcher run at a time (running).
type mailbox struct {
	mu        sync.Mutex
	sys, user fifo
	running   bool // a run is scheduled or under way: a post need not schedule one
	suspended bool // protoactor suspended it (SuspendMailbox): user messages wait

	invoker    actor.MessageInvoker
	dispatcher actor.Dispatcher
	throughput int    // messages per run before the run yields its worker
	run        func() // m.serve, made once
}

func newMailbox() actor.Mailbox { return &mailbox{} }

// fifo is a queue on a slice that is reused once drained.
type fifo struct {
	items []any
	head  int
}

func (q *fifo) push(v any) { q.items = append(q.items, v) }

func (q *fifo) pop() (any, bool) {
	if q.head == len(q.items) {
		return nil, false
	}
	v := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return v, true
}

func (m *mailbox) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	m.invoker, m.dispatcher = invoker, dispatcher
	m.throughput = max(1, dispatcher.Throughput())
	m.run = m.serve
}

func (m *mailbox) Start() {}

func (m *mailbox) UserMessageCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.user.items) - m.user.head
}

func (m *mailbox) PostUserMessage(msg any) { m.post(&m.user, msg) }

func (m *mailbox) PostSystemMessage(msg any) { m.post(&m.sys, msg) }

func (m *mailbox) post(q *fifo, msg any) {
	m.mu.Lock()
	q.push(msg)
	schedule := !m.running
	m.running = true
	m.mu.Unlock()
	if schedule {
		m.dispatcher.Schedule(m.run)
	}
}

// serve is one run: system messages first, then user messages unless
// suspended, until both are drained or throughput messages were read (the
// run then yields: it schedules the next and returns). A panic the invoker
// did not recover is escalated, as protoactor's mailbox does, and the run
// goes on.
func (m *mailbox) serve() {
	for n := 0; ; n++ {
		if n == m.throughput {
			m.dispatcher.Schedule(m.run)
			return
		}
		m.mu.Lock()
		msg, sys := m.sys.pop()
		ok := sys
		if !sys && !m.suspended {
			msg, ok = m.user.pop()
		}
		if !ok {
			m.running = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		m.invoke(msg, sys)
	}
}

func (m *mailbox) invoke(msg any, sys bool) {
	defer func() {
		if r := recover(); r != nil {
			m.invoker.EscalateFailure(r, msg)
		}
	}()
	if !sys {
		m.invoker.InvokeUserMessage(msg)
		return
	}
	switch msg.(type) {
	case *actor.SuspendMailbox:
		m.mu.Lock()
		m.suspended = true
		m.mu.Unlock()
	case *actor.ResumeMailbox:
		m.mu.Lock()
		m.suspended = false
		m.mu.Unlock()
	default:
		m.invoker.InvokeSystemMessage(msg)
	}
}
