package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
)

// recorder records what it receives, and panics on "panic".
type recorder struct{ got chan any }

func (r *recorder) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case int:
		r.got <- msg
	case string:
		if msg == "panic" {
			panic("boom")
		}
		r.got <- msg
	case *actor.Restarting:
		r.got <- "restarting"
	case *actor.Stopped:
		r.got <- "stopped"
	}
}

func quiet() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

func recv(t *testing.T, got chan any) any {
	t.Helper()
	select {
	case v := <-got:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received")
		return nil
	}
}

func TestMailboxDeliversInOrderAcrossRuns(t *testing.T) {
	system := quiet()
	t.Cleanup(system.Shutdown)
	r := &recorder{got: make(chan any, 5000)}
	// A throughput of 3 makes a run yield after three messages.
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return r },
		actor.WithMailbox(newMailbox), actor.WithDispatcher(actor.NewDefaultDispatcher(3))))
	const n = 3000
	senders := 3
	for s := range senders {
		go func() {
			for i := range n / senders {
				system.Root.Send(pid, s*n+i)
			}
		}()
	}
	last := map[int]int{}
	for range n {
		v := recv(t, r.got).(int)
		s, i := v/n, v%n
		if prev, ok := last[s]; ok {
			require.Greater(t, i, prev, "sender %d's messages out of order", s)
		}
		last[s] = i
	}
	require.NoError(t, system.Root.StopFuture(pid).Wait())
	require.Equal(t, "stopped", recv(t, r.got))
}

func TestMailboxKeepsServingAfterAPanic(t *testing.T) {
	// protoactor suspends the mailbox of an actor that panicked, restarts
	// the actor and resumes the mailbox: what was sent meanwhile arrives.
	system := quiet()
	t.Cleanup(system.Shutdown)
	r := &recorder{got: make(chan any, 16)}
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return r }, actor.WithMailbox(newMailbox)))
	system.Root.Send(pid, "before")
	system.Root.Send(pid, "panic")
	system.Root.Send(pid, "after")
	require.Equal(t, "before", recv(t, r.got))
	require.Equal(t, "restarting", recv(t, r.got))
	require.Equal(t, "after", recv(t, r.got))
	require.NoError(t, system.Root.StopFuture(pid).Wait())
}

// held is a dispatcher that keeps the runs it is given, to run them later.
type held struct{ runs []func() }

func (d *held) Schedule(fn func()) { d.runs = append(d.runs, fn) }
func (d *held) Throughput() int    { return 300 }

// invoked is a MessageInvoker that records what it is given.
type invoked struct{ sys, user []any }

func (i *invoked) InvokeSystemMessage(m any) { i.sys = append(i.sys, m) }
func (i *invoked) InvokeUserMessage(m any)   { i.user = append(i.user, m) }
func (i *invoked) EscalateFailure(any, any)  {}

func TestMailboxSchedulesOneRunAndServesSystemMessagesFirst(t *testing.T) {
	m := newMailbox()
	d, inv := &held{}, &invoked{}
	m.RegisterHandlers(inv, d)
	m.Start()
	m.PostUserMessage(1)
	m.PostUserMessage(2)
	m.PostSystemMessage(&actor.Stop{})
	require.Len(t, d.runs, 1, "one run for messages posted while it waits")
	require.Equal(t, 2, m.UserMessageCount())
	m.PostSystemMessage(&actor.SuspendMailbox{})
	d.runs[0]()
	require.Equal(t, []any{&actor.Stop{}}, inv.sys)
	require.Empty(t, inv.user, "suspended: user messages wait")
	require.Equal(t, 2, m.UserMessageCount())
	m.PostSystemMessage(&actor.ResumeMailbox{})
	require.Len(t, d.runs, 2, "a post after the run ended schedules another")
	d.runs[1]()
	require.Equal(t, []any{1, 2}, inv.user)
	require.Equal(t, 0, m.UserMessageCount())
}
