package supervisor

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/messages"
)

// bus delivers events to the hook and the subscribers, in order, off the
// supervisor's goroutine: the supervisor only appends to an unbounded queue,
// so a slow hook never delays it. The delivery goroutine is owned by the bus;
// it runs only while there is a hook or a subscriber, and ends after close
// once the queue is drained.
type bus struct {
	system *actor.ActorSystem
	hook   func(messages.Event)
	logger *slog.Logger

	mu      sync.Mutex // guards the fields below
	queue   []messages.Event
	subs    []*actor.PID
	running bool // the delivery goroutine exists
	closed  bool
	wake    chan struct{} // capacity 1: "the queue is not empty"
	done    chan struct{} // closed when the delivery goroutine has returned (or never ran)
}

func newBus(system *actor.ActorSystem, hook func(messages.Event), logger *slog.Logger) *bus {
	return &bus{system: system, hook: hook, logger: logger, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// active reports whether anybody listens; the supervisor skips building
// events nobody will see.
func (b *bus) active() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.closed && (b.hook != nil || len(b.subs) > 0)
}

func (b *bus) publish(ev messages.Event) {
	b.mu.Lock()
	if b.closed || (b.hook == nil && len(b.subs) == 0) {
		b.mu.Unlock()
		return
	}
	b.queue = append(b.queue, ev)
	if !b.running {
		b.running = true
		go b.run()
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *bus) subscribe(pid *actor.PID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		if s.Equal(pid) {
			return
		}
	}
	b.subs = append(b.subs, pid)
}

func (b *bus) unsubscribe(pid *actor.PID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, s := range b.subs {
		if s.Equal(pid) {
			b.subs = append(b.subs[:i:i], b.subs[i+1:]...)
			return true
		}
	}
	return false
}

// close stops the bus once what is queued has been delivered.
func (b *bus) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	running := b.running
	b.mu.Unlock()
	if !running {
		close(b.done)
		return
	}
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *bus) run() {
	defer close(b.done)
	for {
		b.mu.Lock()
		batch := b.queue
		b.queue = nil
		subs := b.subs
		closed := b.closed
		b.mu.Unlock()
		for i := range batch {
			b.deliver(&batch[i], subs)
		}
		if len(batch) == 0 {
			if closed {
				return
			}
			<-b.wake
		}
	}
}

func (b *bus) deliver(ev *messages.Event, subs []*actor.PID) {
	if b.hook != nil {
		func() {
			defer func() {
				if r := recover(); r != nil {
					b.logger.Error("resman: event hook panicked", "panic", fmt.Sprint(r))
				}
			}()
			b.hook(*ev)
		}()
	}
	for _, s := range subs {
		e := *ev
		b.system.Root.Send(s, &e)
	}
}
