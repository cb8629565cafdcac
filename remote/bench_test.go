package remote_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/remote/internal/wire"
)

// Benchmarks of package remote, each beside its baseline in the same run,
// the other node a separate OS process on loopback with mutual TLS.
// BENCHMARKS.md ("Across machines") has the numbers and the command.

// BenchmarkRemoteSupervisePair is one Supervise and one StopProcess of a
// sleep on another node through a Client, beside its baselines: two raw
// protoactor remote request round trips to an echo actor on the same node
// (the baseline: what the pair costs on the wire alone), two calls
// through the Client that do no work there, the same pair on the node's own
// manager asked for over a pipe, and the same pair on a local Manager.
func BenchmarkRemoteSupervisePair(b *testing.B) {
	p := startNode(b, "-echo")
	c := shared.Manager(p.addr)
	ctx := context.Background()
	if _, err := c.Status(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("remote", func(b *testing.B) {
		i := 0
		for b.Loop() {
			key := "pair-" + strconv.Itoa(i)
			i++
			if err := c.Supervise(ctx, key, sleeper()); err != nil {
				b.Fatal(err)
			}
			if err := c.StopProcess(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remote-two-empty-calls", func(b *testing.B) {
		// Two calls that do no work on the node (a stop of a key nobody
		// has): resman's layers on top of the two raw round trips.
		for b.Loop() {
			for range 2 {
				if err := c.StopProcess(ctx, "nobody"); !errors.Is(err, resman.ErrNotRegistered) {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("raw-two-round-trips", func(b *testing.B) {
		echo := actor.NewPID(p.addr, "echo")
		root := shared.System().Root
		req := &wire.Request{Op: &wire.Request_Hello{Hello: &wire.Hello{}}}
		for b.Loop() {
			for range 2 {
				r, err := root.RequestFuture(echo, req, 5*time.Second).Result()
				if err != nil {
					b.Fatal(err)
				}
				if _, ok := r.(*wire.Reply); !ok {
					b.Fatalf("reply %T", r)
				}
			}
		}
	})
	b.Run("local-on-the-node", func(b *testing.B) {
		// The same pair on the node's own manager, asked for over a pipe:
		// the work the remote pair has the node do, without the wire.
		for b.Loop() {
			if _, err := io.WriteString(p.stdin, "pair\n"); err != nil {
				b.Fatal(err)
			}
			if line := p.line(b); line != "pair <nil>" {
				b.Fatal(line)
			}
		}
	})
	b.Run("local", func(b *testing.B) {
		m, err := resman.New()
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		i := 0
		for b.Loop() {
			key := "pair-" + strconv.Itoa(i)
			i++
			if err := m.Supervise(ctx, key, sleeper()); err != nil {
				b.Fatal(err)
			}
			if err := m.StopProcess(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRemoteStatus is a Status of 1,000 supervised processes from
// another node (target: 20 ms), beside one raw protoactor remote request
// round trip to the same node (the wire's share of it).
func BenchmarkRemoteStatus(b *testing.B) {
	const n = 1000
	p := startNode(b, "-echo")
	c := shared.Manager(p.addr)
	ctx := context.Background()
	for i := range n {
		if err := c.Supervise(ctx, "s-"+strconv.Itoa(i), sleeper()); err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		if err := c.CleanupAll(ctx); err != nil {
			b.Fatal(err)
		}
	}()
	b.Run("remote-1000", func(b *testing.B) {
		for b.Loop() {
			st, err := c.Status(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if len(st.Processes) != n {
				b.Fatalf("%d processes", len(st.Processes))
			}
		}
	})
	b.Run("raw-round-trip", func(b *testing.B) {
		echo := actor.NewPID(p.addr, "echo")
		root := shared.System().Root
		req := &wire.Request{Op: &wire.Request_Hello{Hello: &wire.Hello{}}}
		for b.Loop() {
			if _, err := root.RequestFuture(echo, req, 5*time.Second).Result(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRemoteEvents is the rate of events a remote subscriber receives
// while the other node registers and unregisters custom resources as fast
// as it can (2 events each), beside a local subscriber of the same burst
// on a local Manager (its event hook).
func BenchmarkRemoteEvents(b *testing.B) {
	const burst = 20000
	b.Run("remote", func(b *testing.B) {
		p := startNode(b)
		c := shared.Manager(p.addr)
		ctx := context.Background()
		var got atomic.Int64
		done := make(chan struct{}, 1)
		stop, err := c.Subscribe(ctx, func(e resman.Event) {
			if strings.HasPrefix(e.Key, "burst-") && got.Add(1)%(2*burst) == 0 {
				done <- struct{}{}
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		defer stop()
		run := func() {
			if _, err := fmt.Fprintf(p.stdin, "burst %d\n", burst); err != nil {
				b.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				b.Fatalf("%d of %d events", got.Load(), 2*burst)
			}
		}
		run() // warm up: the node's first burst grows its actors' mailboxes and child pools
		from, start := got.Load(), time.Now()
		for b.Loop() {
			run()
		}
		b.ReportMetric(float64(got.Load()-from)/time.Since(start).Seconds(), "events/s")
	})
	b.Run("local-hook", func(b *testing.B) {
		var got atomic.Int64
		done := make(chan struct{}, 1)
		m, err := resman.New(resman.WithEventHook(func(e resman.Event) {
			if strings.HasPrefix(e.Key, "burst-") && got.Add(1)%(2*burst) == 0 {
				done <- struct{}{}
			}
		}))
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		ctx := context.Background()
		run := func() {
			for i := range burst {
				key := "burst-" + strconv.Itoa(i)
				if err := m.RegisterCustomResource(ctx, key, i, func(context.Context, any) error { return nil }); err != nil {
					b.Fatal(err)
				}
				if _, err := m.UnregisterCustomResource(ctx, key); err != nil {
					b.Fatal(err)
				}
			}
			<-done
		}
		run() // warm up, as for the remote one
		from, start := got.Load(), time.Now()
		for b.Loop() {
			run()
		}
		b.ReportMetric(float64(got.Load()-from)/time.Since(start).Seconds(), "events/s")
	})
}
