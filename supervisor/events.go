package supervisor

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/internal/queue"
	"github.com/resman-dev/resman/messages"
)

// bus delivers events to the hook and the subscribers, in order, off the
// supervisor's goroutine: the supervisor only pushes onto an unbounded
// queue, so a slow hook never delays it. The queue's goroutine runs only
// while there is something to deliver, and ends after close once drained.
type bus struct {
	system *actor.ActorSystem
	hook   func(messages.Event)
	logger *slog.Logger
	q      *queue.Queue[messages.Event]

	mu     sync.Mutex // guards subs and output
	subs   []*actor.PID
	output []*actor.PID // the subscribers that also get output lines
	n      atomic.Int32 // len(subs), read without mu
	nout   atomic.Int32 // len(output), read without mu
}

func newBus(system *actor.ActorSystem, hook func(messages.Event), logger *slog.Logger) *bus {
	b := &bus{system: system, hook: hook, logger: logger}
	b.q = queue.New(b.deliver, nil)
	return b
}

// active reports whether anybody listens; the supervisor skips building
// events nobody will see.
func (b *bus) active() bool {
	return b.hook != nil || b.n.Load() > 0
}

func (b *bus) publish(ev messages.Event) { b.q.Push(ev) }

func (b *bus) subscribe(pid *actor.PID, output bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if output && !contains(b.output, pid) {
		b.output = append(b.output, pid)
		b.nout.Store(int32(len(b.output)))
	}
	if !contains(b.subs, pid) {
		b.subs = append(b.subs, pid)
		b.n.Store(int32(len(b.subs)))
	}
}

func contains(pids []*actor.PID, pid *actor.PID) bool {
	for _, s := range pids {
		if s.Equal(pid) {
			return true
		}
	}
	return false
}

// wantsOutput reports whether a subscriber asked for output lines.
func (b *bus) wantsOutput() bool { return b.nout.Load() > 0 }

// sendOutput sends a line to the subscribers that asked for output. It runs
// on a capture goroutine.
func (b *bus) sendOutput(l messages.OutputLine) {
	if b.nout.Load() == 0 {
		return
	}
	b.mu.Lock()
	subs := b.output
	b.mu.Unlock()
	for _, s := range subs {
		line := l
		b.system.Root.Send(s, &line)
	}
}

func (b *bus) unsubscribe(pid *actor.PID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, s := range b.output {
		if s.Equal(pid) {
			b.output = append(b.output[:i:i], b.output[i+1:]...)
			b.nout.Store(int32(len(b.output)))
			break
		}
	}
	for i, s := range b.subs {
		if s.Equal(pid) {
			b.subs = append(b.subs[:i:i], b.subs[i+1:]...)
			b.n.Store(int32(len(b.subs)))
			return true
		}
	}
	return false
}

// close stops the bus once what is queued has been delivered.
func (b *bus) close() { b.q.Close() }

// done is closed once close has taken effect.
func (b *bus) done() <-chan struct{} { return b.q.Done() }

// deliver runs on the queue's goroutine.
func (b *bus) deliver(batch []messages.Event) {
	b.mu.Lock()
	subs := b.subs
	b.mu.Unlock()
	for i := range batch {
		if b.hook != nil {
			b.callHook(batch[i])
		}
		for _, s := range subs {
			e := batch[i]
			b.system.Root.Send(s, &e)
		}
	}
}

func (b *bus) callHook(ev messages.Event) {
	defer func() {
		if r := recover(); r != nil {
			b.logger.Error("resman: event hook panicked", "panic", fmt.Sprint(r))
		}
	}()
	b.hook(ev)
}
