package output

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
)

// The streams a process writes, as OutputLine.Stream names them.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

const (
	queueLines = 16384   // lines waiting for the consumer, at most
	queueBytes = 4 << 20 // their text, at most
)

// Capture reads the output of one run of a process and hands each line to a
// consumer. It never blocks its streams' writer: lines wait for the consumer
// in a bounded queue (16,384 lines or 4 MiB of text) that drops its oldest
// lines when the consumer falls behind. The consumer's goroutine takes the
// lines of one read at a time; those it has taken are no longer queued and
// are not dropped (unless Stop comes before they are handed over). Its
// methods are safe for concurrent use.
type Capture struct {
	proto   Line // Key and PID of every line
	consume func(*Batch)
	observe func(*Batch) // Observe's; nil: none

	dropped   atomic.Int64
	abandoned atomic.Bool // Stop was called; set with mu held

	mu      sync.Mutex // guards the fields below
	wake    sync.Cond  // the consumer's goroutine waits here for lines, the end of the readers, or Stop
	queue   backlog
	readers int           // reader goroutines running
	running bool          // the consumer's goroutine runs
	idle    chan struct{} // closed while there is nothing for Wait to wait for
	quiet   chan struct{} // closed while no reader and no consumer call runs (Stop or not)
}

// NewCapture returns a Capture whose lines carry key and pid. consume gets
// every line that is not dropped, a read's lines per call (a [Batch]: its
// lines are read with [Batch.Each]), one call at a time, in order of
// arrival (so in order within each stream), on a goroutine owned by the
// Capture; it should not block for long, since the queue drops lines
// meanwhile, and must not wait for its own Capture. The batch is valid
// only during the call. Nothing runs until [Capture.Add].
func NewCapture(key string, pid int, consume func(*Batch)) *Capture {
	c := &Capture{
		proto:   Line{Key: key, PID: pid},
		consume: consume,
		queue:   backlog{maxLines: queueLines, maxBytes: queueBytes},
		idle:    make(chan struct{}),
		quiet:   make(chan struct{}),
	}
	c.wake.L = &c.mu
	close(c.idle)
	close(c.quiet)
	return c
}

// Observe makes the readers call fn with every line they read, before it
// is queued for the consumer: fn sees every line, dropped ones included,
// as soon as it is read, a read's lines per call (in order). fn must be
// quick and safe for concurrent use (the streams' readers call it), and
// must keep neither the batch nor its lines' texts. Call it before the
// first Add.
func (c *Capture) Observe(fn func(*Batch)) { c.observe = fn }

// Add starts a goroutine, owned by the Capture, that reads r until EOF or a
// read error and queues its lines with Stream set to stream (normally
// [Stdout] or [Stderr]). The caller keeps r: to end the reading early (say,
// a pipe a grandchild still holds open after the process exited), close r;
// the Capture never closes it. After [Capture.Stop], r is still read to its
// end, so that the writer never blocks, but its lines are dropped.
func (c *Capture) Add(stream string, r io.Reader) {
	proto := c.proto
	proto.Stream = stream
	c.mu.Lock()
	c.readers++
	c.settle()
	c.mu.Unlock()
	// Owned by the Capture; it ends at r's EOF or read error (Wait waits
	// for it).
	go func() {
		readLines(r, proto, c.push)
		c.mu.Lock()
		c.readers--
		c.settle()
		c.mu.Unlock()
		c.wake.Signal()
	}()
}

// Wait blocks until every stream added so far has ended and each of its
// lines was either delivered to the consumer or dropped. After Stop it no
// longer waits for a consumer call in progress. It returns ctx.Err() if ctx
// ends first; nothing is abandoned then (call Stop for that).
func (c *Capture) Wait(ctx context.Context) error {
	c.mu.Lock()
	idle := c.idle
	c.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Quiet returns a channel that is closed once every stream added so far
// has ended and no consumer call runs, after Stop too: from then on
// Dropped no longer changes (until another Add).
func (c *Capture) Quiet() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.quiet
}

// Stop abandons every line not yet delivered — queued ones, and any read
// from now on — and counts them as dropped. The consumer is not called
// again; a call in progress runs to its end (Stop does not wait for it),
// but its [Batch.Each] hands over no line after the Stop: the lines left
// are counted as dropped. The streams are still read to their end, so
// that the writer never blocks. Stop never blocks and may be called more
// than once.
func (c *Capture) Stop() {
	c.mu.Lock()
	c.abandoned.Store(true)
	c.dropped.Add(int64(c.queue.clear()))
	c.settle()
	c.mu.Unlock()
	c.wake.Signal()
}

// Dropped reports how many lines never reached the consumer: evicted from
// a full queue, or abandoned by Stop. It may be read at any time. Once Wait
// has returned nil, lines delivered plus Dropped is every line read (after
// Stop, once the consumer call in progress has returned as well).
func (c *Capture) Dropped() int { return int(c.dropped.Load()) }

// push queues a reader's batch, evicting the oldest lines to make room, and
// returns an empty batch for the reader to fill next (nil: a new one).
func (c *Capture) push(b *Batch) *Batch {
	if c.observe != nil {
		c.observe(b)
	}
	c.mu.Lock()
	if c.abandoned.Load() {
		c.mu.Unlock()
		c.dropped.Add(int64(b.Len()))
		b.reset()
		return b
	}
	if evicted := c.queue.push(b); evicted > 0 {
		c.dropped.Add(int64(evicted))
	}
	if !c.running {
		c.running = true
		// Owned by the Capture; it ends once the queue is empty and no
		// reader runs, or at Stop (after the consumer call in progress).
		go c.deliver()
	}
	next := c.queue.reuse()
	c.mu.Unlock()
	c.wake.Signal()
	return next
}

// deliver hands the queued lines to the consumer, a batch (one read's lines)
// at a time, so that readers never wait on the consumer: the lock is held
// only to pass a batch.
func (c *Capture) deliver() {
	var b *Batch // the batch in hand, given back at the next lock
	for {
		c.mu.Lock()
		if b != nil {
			c.queue.recycle(b)
		}
		for c.queue.len() == 0 && c.readers > 0 && !c.abandoned.Load() {
			c.wake.Wait()
		}
		if c.queue.len() == 0 || c.abandoned.Load() {
			c.running = false
			c.settle()
			c.mu.Unlock()
			return
		}
		b = c.queue.take()
		c.mu.Unlock()
		if c.abandoned.Load() {
			c.dropped.Add(int64(b.Len()))
			continue
		}
		b.c = c // b.Each stops at a Stop from now on
		c.consume(b)
		b.c = nil
	}
}

// settle opens or closes idle and quiet to match the state; mu must be held.
func (c *Capture) settle() {
	c.idle = latch(c.idle, c.readers == 0 && (!c.running || c.abandoned.Load()))
	c.quiet = latch(c.quiet, c.readers == 0 && !c.running)
}

// latch returns ch closed if closed is set, else open (a new channel if ch
// was closed).
func latch(ch chan struct{}, closed bool) chan struct{} {
	select {
	case <-ch:
		if !closed {
			return make(chan struct{})
		}
	default:
		if closed {
			close(ch)
		}
	}
	return ch
}
