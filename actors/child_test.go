package actors

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resman-dev/resman/messages"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// faulty is a resource whose start or end panics; it counts its ends.
type faulty struct {
	panicStart, panicEnd bool
	lazy                 bool // adopted at its End, as tasks are
	ends                 atomic.Int32
}

func (f *faulty) eager() bool { return !f.lazy }

func (f *faulty) start(*Reg, bool) {
	if f.panicStart {
		panic("start failed")
	}
}

func (f *faulty) end(r *Reg, e *End) {
	f.ends.Add(1)
	if f.panicEnd {
		panic("end failed")
	}
	r.finish(&Ended{Mode: e.Mode})
}

// parent spawns one child, assigns it one registration and passes the
// outcome the child reports (Done) to the test; next, sent to the parent,
// sends Ends and may give the child another registration first. As it
// stops it does what the supervisor does: it sends an End for the
// registration and lets the child go once it has the outcome.
type parent struct {
	reg      *Reg
	ch       *Child
	stopping bool
	ended    bool // the child reported the registration's end
	child    chan *actor.PID
	got      chan any
}

// next is a registration to assign (nil: none), then the Ends to send, in
// order, each for its registration.
type next struct {
	reg  *Reg
	ends []sentEnd
}

type sentEnd struct {
	r *Reg
	e *End
}

// ends sends es for the parent's current registration.
func ends(es ...*End) *next {
	n := &next{}
	for _, e := range es {
		n.ends = append(n.ends, sentEnd{e: e})
	}
	return n
}

func (p *parent) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		p.ch = Spawn(ctx, Options{DefaultTimeout: time.Second})
		p.ch.Assign(p.reg)
		p.child <- p.ch.PID
	case *next:
		if msg.reg != nil {
			p.reg, p.ended = msg.reg, false
			p.ch.Assign(msg.reg)
		}
		for _, s := range msg.ends {
			r := s.r
			if r == nil {
				r = p.reg
			}
			p.ch.End(r, s.e)
		}
	case *actor.Stopping:
		p.stopping = true
		if p.ended {
			p.ch.LetGo()
		} else {
			p.ch.End(p.reg, &End{})
		}
	case *Done:
		if msg.H == p.reg.H {
			p.ended = true
			if p.stopping {
				p.ch.LetGo()
			}
		}
		p.got <- msg.H.Final()
	}
}

func spawn(t *testing.T, res resource) (*actor.ActorSystem, *actor.PID, *actor.PID, chan any, *Reg) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	t.Cleanup(system.Shutdown)
	reg := newReg(messages.KindCustomResource, "k", res)
	p := &parent{reg: reg, child: make(chan *actor.PID, 1), got: make(chan any, 4)}
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }))
	return system, pid, <-p.child, p.got, reg
}

func TestPanicInStartKeepsTheChild(t *testing.T) {
	system, parentPID, _, got, _ := spawn(t, &faulty{panicStart: true})
	system.Root.Send(parentPID, ends(&End{Mode: EndStop}))
	select {
	case msg := <-got:
		e := msg.(*Ended)
		require.NoError(t, e.Err)
		require.Equal(t, EndStop, e.Mode)
	case <-time.After(10 * time.Second):
		t.Fatal("the child stopped serving after a panic")
	}
	require.NoError(t, system.Root.StopFuture(parentPID).Wait())
}

func TestPanicInEndStillEnds(t *testing.T) {
	system, parentPID, _, got, _ := spawn(t, &faulty{panicEnd: true})
	system.Root.Send(parentPID, ends(&End{Mode: EndStop}))
	select {
	case msg := <-got:
		require.ErrorIs(t, msg.(*Ended).Err, messages.ErrPanicked)
	case <-time.After(10 * time.Second):
		t.Fatal("no outcome")
	}
	// Stopping does not hang on it.
	require.NoError(t, system.Root.StopFuture(parentPID).Wait())
}

func TestStoppingEndsTheResource(t *testing.T) {
	system, parentPID, _, _, reg := spawn(t, &faulty{})
	h := reg.H
	require.Nil(t, h.Final())
	require.NoError(t, system.Root.StopFuture(parentPID).Wait())
	// The parent may stop before it reads the child's report; the outcome
	// is in the handle either way.
	final := h.Final()
	require.NotNil(t, final, "the child ended its resource before it stopped")
	require.Equal(t, EndStop, final.Mode)
}

func TestStoppingEndsARegistrationNeverAdopted(t *testing.T) {
	// Only its End tells the child about a lazy registration. The parent
	// sends it as it stops, and protoactor's stop reaches the child ahead of
	// it: the stopping child still reads it and ends the registration.
	res := &faulty{lazy: true}
	system, parentPID, _, _, reg := spawn(t, res)
	h := reg.H
	require.NoError(t, system.Root.StopFuture(parentPID).Wait())
	require.NotNil(t, h.Final(), "ended before the child stopped")
	require.Equal(t, int32(1), res.ends.Load())
}

func TestAReleasedRegistrationIsNotEndedAgain(t *testing.T) {
	// The child hands a registration back or ends it, once: a stop that
	// follows a release, or the child's own Stopping, does nothing more.
	res := &faulty{lazy: true}
	system, parentPID, _, got, reg := spawn(t, res)
	system.Root.Send(parentPID, ends(&End{Mode: EndRelease}, &End{Mode: EndStop}))
	out := (<-got).(*Ended)
	require.Equal(t, EndRelease, out.Mode)
	require.NoError(t, system.Root.StopFuture(parentPID).Wait())
	require.Equal(t, int32(1), res.ends.Load(), "handed back once, never ended")
	require.Same(t, out, reg.H.Final())
}

func TestAChildServesOneRegistrationAfterAnother(t *testing.T) {
	first := &faulty{lazy: true}
	system, parentPID, _, got, r1 := spawn(t, first)
	h1 := r1.H
	system.Root.Send(parentPID, ends(&End{Mode: EndStop}))
	out := (<-got).(*Ended)
	require.Same(t, h1.Final(), out)

	second := &faulty{lazy: true}
	r2 := newReg(messages.KindCustomResource, "k2", second)
	// An End meant for the first registration no longer applies.
	system.Root.Send(parentPID, &next{reg: r2, ends: []sentEnd{{r: r1, e: &End{H: h1, Mode: EndStop}}, {e: &End{H: r2.H, Mode: EndStop}}}})
	out = (<-got).(*Ended)
	require.Same(t, r2.H.Final(), out)
	require.Equal(t, int32(1), first.ends.Load())
	require.Equal(t, int32(1), second.ends.Load())
	require.NoError(t, system.Root.StopFuture(parentPID).Wait())
}

// slow is a resource whose end waits until KillNow reaches its child.
type slow struct {
	begun, killed chan struct{}
}

func (s *slow) eager() bool      { return true }
func (s *slow) start(*Reg, bool) {}
func (s *slow) killNow()         { close(s.killed) }

func (s *slow) end(r *Reg, e *End) {
	close(s.begun)
	go func() {
		<-s.killed
		r.finish(&Ended{Mode: e.Mode})
	}()
}

func TestAStoppingChildReadsItsMailboxUntilItsResourceHasEnded(t *testing.T) {
	// The child does not wait in Stopping: its stop stays open until the
	// resource has ended, and meanwhile it serves messages (here the
	// KillNow that ends the resource).
	res := &slow{begun: make(chan struct{}), killed: make(chan struct{})}
	system, parentPID, child, _, reg := spawn(t, res)
	stopped := make(chan error, 1)
	go func() { stopped <- system.Root.StopFuture(parentPID).Wait() }()
	<-res.begun
	select {
	case <-stopped:
		t.Fatal("the tree stopped before the resource ended")
	default:
	}
	require.Nil(t, reg.H.Final())
	system.Root.Send(child, &KillNow{})
	require.NoError(t, <-stopped)
	require.NotNil(t, reg.H.Final(), "ended before the child stopped")
}

// racer ends its resource from two goroutines at once, each with an outcome
// of its own: a task's return and its grace period's end, say.
type racer struct{ first, second *Ended }

func (r *racer) eager() bool      { return false }
func (r *racer) start(*Reg, bool) {}

func (r *racer) end(g *Reg, e *End) {
	var ready sync.WaitGroup
	ready.Add(2)
	for _, out := range []*Ended{r.first, r.second} {
		go func() {
			ready.Done()
			ready.Wait()
			g.finish(out)
		}()
	}
}

func TestTheChildReportsOneOutcomeOfTwoThatRace(t *testing.T) {
	// Goroutines report to the child, never to the parent: the child takes
	// the first outcome it reads, reports it once, and drops the other.
	for range 50 {
		res := &racer{first: &Ended{Mode: EndStop}, second: &Ended{Mode: EndStop, Err: messages.ErrTimeout}}
		system, parentPID, _, got, reg := spawn(t, res)
		system.Root.Send(parentPID, ends(&End{Mode: EndStop}))
		var out any
		select {
		case out = <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("no outcome reported")
		}
		require.True(t, out == res.first || out == res.second, "one of the two outcomes")
		require.Same(t, out, reg.H.Final(), "the handle holds the outcome reported")
		require.NoError(t, system.Root.StopFuture(parentPID).Wait())
		require.Empty(t, got, "a second outcome was reported")
	}
}
