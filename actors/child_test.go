package actors

import (
	"log/slog"
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
	lazy                 bool // adopted at the first End or at Stopping, as tasks are
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
// gives the child another registration.
type parent struct {
	reg   *Reg
	ch    *Child
	child chan *actor.PID
	got   chan any
}

// next is a registration to assign, then the Ends to send, in order.
type next struct {
	reg  *Reg
	ends []*End
}

func (p *parent) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		p.ch = Spawn(ctx, Options{DefaultTimeout: time.Second})
		p.ch.Assign(ctx, p.reg)
		p.child <- p.ch.PID
	case *next:
		p.ch.Assign(ctx, msg.reg)
		for _, e := range msg.ends {
			ctx.Send(p.ch.PID, e)
		}
	case *Done:
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
	system, parentPID, child, got, _ := spawn(t, &faulty{panicStart: true})
	system.Root.Send(child, &End{Mode: EndStop})
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
	system, parentPID, child, got, _ := spawn(t, &faulty{panicEnd: true})
	system.Root.Send(child, &End{Mode: EndStop})
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
	// Nothing tells the child about a lazy registration: the Stopping that
	// protoactor delivers ahead of any message must still find and end it.
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
	system, parentPID, child, got, reg := spawn(t, res)
	system.Root.Send(child, &End{Mode: EndRelease})
	system.Root.Send(child, &End{Mode: EndStop})
	out := (<-got).(*Ended)
	require.Equal(t, EndRelease, out.Mode)
	require.NoError(t, system.Root.StopFuture(parentPID).Wait())
	require.Equal(t, int32(1), res.ends.Load(), "handed back once, never ended")
	require.Same(t, out, reg.H.Final())
}

func TestAChildServesOneRegistrationAfterAnother(t *testing.T) {
	first := &faulty{lazy: true}
	system, parentPID, child, got, r1 := spawn(t, first)
	h1 := r1.H
	system.Root.Send(child, &End{Mode: EndStop})
	out := (<-got).(*Ended)
	require.Same(t, h1.Final(), out)

	second := &faulty{lazy: true}
	r2 := newReg(messages.KindCustomResource, "k2", second)
	// An End meant for the first registration no longer applies.
	system.Root.Send(parentPID, &next{reg: r2, ends: []*End{{H: h1, Mode: EndStop}, {H: r2.H, Mode: EndStop}}})
	out = (<-got).(*Ended)
	require.Same(t, r2.H.Final(), out)
	require.Equal(t, int32(1), first.ends.Load())
	require.Equal(t, int32(1), second.ends.Load())
	require.NoError(t, system.Root.StopFuture(parentPID).Wait())
}
