package supervisor

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/internal/baseline"
)

// BenchmarkCleanupFloor measures what one child actor per resource costs by
// itself, on resman's dispatcher, beside the raw baseline of row 4 (cancel
// 10,000 goroutines and wait on a WaitGroup): a parent sends one message to
// each of 10,000 children, each cancels a goroutine waiting on its context,
// and each goroutine reports its return — to the parent itself (direct), or
// to its child, which reports to the parent (via-child, what the design
// card asks: goroutines report to their child). A CleanupAll of 10,000
// tasks without any of resman's bookkeeping. Compare it with
// BenchmarkCleanupAllTasks in the root package.
func BenchmarkCleanupFloor(b *testing.B) {
	b.Run("raw=cancel+waitgroup", func(b *testing.B) { baseline.CancelAll(b, floorChildren) })
	b.Run("floor=direct", func(b *testing.B) { benchFloor(b, false) })
	b.Run("floor=via-child", func(b *testing.B) { benchFloor(b, true) })
}

func benchFloor(b *testing.B, viaChild bool) {
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
		for i, c := range fp.children {
			ctx, cancel := context.WithCancel(context.Background())
			c.cancel = cancel
			to, msg := pid, any(floorDone{})
			if viaChild {
				to, msg = fp.pids[i], floorReturned{}
			}
			wg.Add(1)
			go func() { // owned by the benchmark; ends at the cancel
				defer wg.Done()
				<-ctx.Done()
				system.Root.Send(to, msg)
			}()
		}
		done := make(chan struct{})
		runtime.GC()
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
type floorReturned struct{}
type floorSweep struct{ done chan struct{} }

type floorChild struct{ cancel context.CancelFunc }

func (c *floorChild) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case floorEnd:
		c.cancel()
	case floorReturned:
		ctx.Send(ctx.Parent(), floorDone{})
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
