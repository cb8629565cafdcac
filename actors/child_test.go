package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resman-dev/resman/messages"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// faulty is a resource whose start or end panics.
type faulty struct {
	panicStart, panicEnd bool
}

func (f *faulty) eager() bool { return true }

func (f *faulty) start(*Reg, bool) {
	if f.panicStart {
		panic("start failed")
	}
}

func (f *faulty) end(r *Reg, e *End) {
	if f.panicEnd {
		panic("end failed")
	}
	r.finish(&Ended{Mode: e.Mode})
}

// parent spawns one child, assigns it one registration and passes the
// outcome the child reports (Done) to the test.
type parent struct {
	reg   *Reg
	child chan *actor.PID
	got   chan any
}

func (p *parent) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		ch := Spawn(ctx, Options{DefaultTimeout: time.Second})
		ch.Assign(ctx, p.reg)
		p.child <- ch.PID
	case *Done:
		p.got <- msg.H.Final()
	}
}

func spawn(t *testing.T, res resource) (*actor.ActorSystem, *actor.PID, *actor.PID, chan any, *Handle) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	t.Cleanup(system.Shutdown)
	reg := newReg(messages.KindCustomResource, "k", res)
	h := reg.H
	p := &parent{reg: reg, child: make(chan *actor.PID, 1), got: make(chan any, 4)}
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }))
	return system, pid, <-p.child, p.got, h
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
	system, parentPID, _, _, h := spawn(t, &faulty{})
	require.Nil(t, h.Final())
	require.NoError(t, system.Root.StopFuture(parentPID).Wait())
	// The parent may stop before it reads the child's report; the outcome
	// is in the handle either way.
	final := h.Final()
	require.NotNil(t, final, "the child ended its resource before it stopped")
	require.Equal(t, EndStop, final.Mode)
}
