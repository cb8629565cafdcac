// Package queue is an unbounded FIFO drained by one goroutine of its own:
// the way resman hands work to a slow consumer (an event hook, the
// host-death watcher's pipe) without ever blocking the producer.
package queue

import "sync"

// Queue is an unbounded FIFO. The first Push starts its goroutine (owned by
// the Queue), which hands batches to consume, in order; after Close it
// drains what is left, calls finish and ends.
type Queue[T any] struct {
	consume func(batch []T)
	finish  func()

	mu      sync.Mutex // guards the fields below
	items   []T
	running bool
	closed  bool
	wake    chan struct{} // capacity 1: "there is news"
	done    chan struct{} // closed when the goroutine has ended, or at Close if it never ran
}

// New returns a Queue; consume and finish (which may be nil) run on its goroutine.
func New[T any](consume func(batch []T), finish func()) *Queue[T] {
	return &Queue[T]{consume: consume, finish: finish, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Push appends v; it never blocks. It reports false, dropping v, once the
// queue is closed.
func (q *Queue[T]) Push(v T) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, v)
	if !q.running {
		q.running = true
		go q.run()
	}
	q.mu.Unlock()
	q.signal()
	return true
}

// Close stops taking items; the goroutine drains the rest, calls finish and
// ends (see Done). Safe to call more than once.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	running := q.running
	q.mu.Unlock()
	if !running {
		close(q.done)
		return
	}
	q.signal()
}

// Done is closed once the queue is closed and everything pushed was consumed.
func (q *Queue[T]) Done() <-chan struct{} { return q.done }

func (q *Queue[T]) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *Queue[T]) run() {
	defer close(q.done)
	for {
		q.mu.Lock()
		batch := q.items
		q.items = nil
		closed := q.closed
		q.mu.Unlock()
		if len(batch) > 0 {
			q.consume(batch)
			continue
		}
		if closed {
			if q.finish != nil {
				q.finish()
			}
			return
		}
		<-q.wake
	}
}
