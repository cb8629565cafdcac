package supervisor

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/actors"
)

// A child whose registration has ended serves the next one: that spares a
// spawn and a stop per registration, and keeps the child's PID resolved. A
// speed trick for BenchmarkRoundTrip (row 1 of BENCHMARKS.md: a pair 22 µs
// → 11.5 µs) and BenchmarkCleanupAllTasks (row 4), behind takeChild and
// recycle: the plain path spawns a child in takeChild and stops it in
// recycle.
// Free children are kept as long as they are used: every trimEvery, those
// that stayed free the whole period (beyond keepFree) are stopped, so a
// burst of 100,000 registrations does not hold 100,000 actors for ever.
const (
	keepFree  = 64
	trimEvery = time.Second
)

// freeChildren is the supervisor's stack of free children. Owned by its
// Receive; the timer's goroutine only sends the supervisor a message (tell,
// which drops it quietly once the supervisor has stopped).
type freeChildren struct {
	stack  []*actors.Child // the last freed on top; the bottom has waited longest
	lowest int             // the fewest free children since the last trim
	armed  bool            // a trim is due: the timer runs or its message is on its way
	timer  *time.Timer     // armed while more than keepFree are free
}

// trimFree asks the supervisor to stop the children that stayed free.
type trimFree struct{}

// takeChild returns a free child, spawning one if none is.
func (s *supervisor) takeChild(ctx actor.Context) *actors.Child {
	f := &s.free
	n := len(f.stack)
	if n == 0 {
		return actors.Spawn(ctx, s.opts)
	}
	ch := f.stack[n-1]
	f.stack[n-1] = nil
	f.stack = f.stack[:n-1]
	f.lowest = min(f.lowest, n-1)
	return ch
}

// recycle frees a child whose registration has ended; as the tree stops,
// it lets the child's stop finish instead.
func (s *supervisor) recycle(ch *actors.Child) {
	if s.stopping {
		ch.LetGo()
		return
	}
	f := &s.free
	f.stack = append(f.stack, ch)
	if len(f.stack) > keepFree && !f.armed {
		s.arm()
	}
}

// arm starts the trim timer.
func (s *supervisor) arm() {
	s.free.armed = true
	s.free.timer = time.AfterFunc(trimEvery, func() { s.tell(&trimFree{}) })
}

// close stops the timer for good: the supervisor is stopping.
func (f *freeChildren) close() {
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
}

// trimFree stops the children that stayed free since the last trim,
// longest-waiting first, down to keepFree, and re-arms while more are free.
func (s *supervisor) trimFree() {
	f := &s.free
	f.timer = nil
	f.armed = false
	if s.stopping {
		return
	}
	n := min(f.lowest, len(f.stack)-keepFree)
	for i := 0; i < n; i++ {
		s.retire(f.stack[i])
	}
	if n > 0 {
		f.stack = append(f.stack[:0], f.stack[n:]...)
		clear(f.stack[len(f.stack):cap(f.stack)])
	}
	f.lowest = len(f.stack)
	if len(f.stack) > keepFree {
		s.arm()
	}
}

// retire stops a free child; a Shutdown's reply waits for it to be gone.
func (s *supervisor) retire(ch *actors.Child) {
	ch.LetGo() // it serves no registration
	s.system.Root.Stop(ch.PID)
	s.dying[ch.PID.Id] = struct{}{}
}

// releaseFree lets the free children go as the tree stops: they serve no
// registration, so protoactor's stop of them need not wait.
func (s *supervisor) releaseFree() {
	for _, ch := range s.free.stack {
		ch.LetGo()
	}
	s.free.stack = nil
}
