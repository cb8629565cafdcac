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

	mu   sync.Mutex // guards subs
	subs []*actor.PID
	n    atomic.Int32 // len(subs), read without mu
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

func (b *bus) subscribe(pid *actor.PID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		if s.Equal(pid) {
			return
		}
	}
	b.subs = append(b.subs, pid)
	b.n.Store(int32(len(b.subs)))
}

func (b *bus) unsubscribe(pid *actor.PID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
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
