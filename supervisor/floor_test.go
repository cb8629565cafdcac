package supervisor

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// BenchmarkCleanupFloor measures what one child actor per resource costs by
// itself, on resman's dispatcher: a parent sends one message to each of
// 10,000 children, each cancels a goroutine waiting on its context, and
// each goroutine tells the parent it returned — a CleanupAll of 10,000
// tasks without any of resman's bookkeeping. Compare it with
// BenchmarkCleanupAllTasks in the root package (raw and resman).
func BenchmarkCleanupFloor(b *testing.B) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()
	p := newPool()
	defer p.wait()
	defer p.close()
	fp := &floorParent{pool: p, ready: make(chan struct{})}
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return fp }, actor.WithDispatcher(p)))
	<-fp.ready
	for range b.N {
		b.StopTimer()
		var wg sync.WaitGroup
		for _, c := range fp.children {
			ctx, cancel := context.WithCancel(context.Background())
			c.cancel = cancel
			wg.Add(1)
			go func() { // owned by the benchmark; ends at the cancel
				defer wg.Done()
				<-ctx.Done()
				system.Root.Send(pid, floorDone{})
			}()
		}
		done := make(chan struct{})
		b.StartTimer()
		system.Root.Send(pid, &floorSweep{done: done})
		<-done
		wg.Wait()
	}
	b.StopTimer()
	_ = system.Root.StopFuture(pid).Wait()
}

const floorChildren = 10000

type floorEnd struct{}
type floorDone struct{}
type floorSweep struct{ done chan struct{} }

type floorChild struct{ cancel context.CancelFunc }

func (c *floorChild) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(floorEnd); ok {
		c.cancel()
	}
}

type floorParent struct {
	pool     *pool
	ready    chan struct{}
	children []*floorChild
	pids     []*actor.PID
	left     int
	done     chan struct{}
}

func (f *floorParent) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		for range floorChildren {
			c := &floorChild{}
			f.children = append(f.children, c)
			f.pids = append(f.pids, ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return c },
				actor.WithDispatcher(f.pool), actor.WithMailbox(actor.UnboundedLockfree()))))
		}
		close(f.ready)
	case *floorSweep:
		f.left, f.done = len(f.pids), m.done
		for _, pid := range f.pids {
			ctx.Send(pid, floorEnd{})
		}
	case floorDone:
		if f.left--; f.left == 0 {
			close(f.done)
		}
	}
}
