// Command actorservice is an actor-based service that uses resman as an
// actor: it spawns the supervisor under its own actor, starts worker
// processes by message, restarts them when their exit events arrive, and
// shuts down as a tree — on SIGINT or SIGTERM, or by itself after a few
// seconds. Stopping the service actor is all it takes: the supervisor below
// it stops every worker before the tree reports stopped.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/messages"
)

const restartsPerWorker = 2

// service owns the supervisor and the worker policy. Its fields are owned
// by its Receive.
type service struct {
	sup      *actor.PID
	scripts  map[string]string // key → the worker's shell script
	restarts map[string]int    // key → restarts so far
	pending  map[string]bool   // key → restart once its old registration is gone
	pids     chan<- int        // every worker PID, for the final check
}

func (s *service) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.scripts, s.restarts, s.pending = map[string]string{}, map[string]int{}, map[string]bool{}
		s.sup = ctx.Spawn(resman.Props(resman.WithDefaultTimeout(time.Second)))
		ctx.Request(s.sup, &messages.Subscribe{Subscriber: ctx.Self()})
		// A long-running worker that ignores SIGTERM, and two short-lived ones.
		s.start(ctx, "indexer", `trap "" TERM; while :; do sleep 1; done`)
		s.start(ctx, "fetcher", "sleep 0.3; exit 1")
		s.start(ctx, "mailer", "sleep 0.5; exit 0")

	case *messages.StartProcessResponse:
		if msg.Err != nil {
			fmt.Println("service: start failed:", msg.Err)
		}
	case *messages.SubscribeResponse:
		if msg.Err != nil {
			fmt.Println("service: subscribe failed:", msg.Err)
		}

	case *messages.Event:
		switch msg.Type {
		case messages.EventRegistered:
			fmt.Printf("service: %s started (pid %d)\n", msg.Key, msg.PID)
			s.pids <- msg.PID
		case messages.EventExited:
			fmt.Printf("service: %s exited with code %d\n", msg.Key, msg.ExitCode)
			// It stays registered as exited: end the registration, and
			// restart the worker once it is gone (EventStopped).
			if s.restarts[msg.Key] < restartsPerWorker {
				s.restarts[msg.Key]++
				s.pending[msg.Key] = true
			}
			ctx.Request(s.sup, &messages.StopProcess{Key: msg.Key})
		case messages.EventStopped:
			if s.pending[msg.Key] {
				delete(s.pending, msg.Key)
				fmt.Printf("service: restarting %s (%d of %d)\n", msg.Key, s.restarts[msg.Key], restartsPerWorker)
				s.start(ctx, msg.Key, s.scripts[msg.Key])
				return
			}
			fmt.Printf("service: %s stopped by the supervisor\n", msg.Key)
		case messages.EventFailed:
			fmt.Printf("service: %s failed to stop: %v\n", msg.Key, msg.Err)
		}
	case *messages.StopProcessResponse:
	case *actor.Stopping:
		fmt.Println("service: stopping; the supervisor below stops every worker first")
	}
}

func (s *service) start(ctx actor.Context, key, script string) {
	s.scripts[key] = script
	ctx.Request(s.sup, &messages.StartProcess{Key: key, Cmd: exec.Command("sh", "-c", script)})
}

func main() {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()

	pids := make(chan int, 64)
	svc := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &service{pids: pids} }))

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	select {
	case sig := <-signals:
		fmt.Println("main: got", sig)
	case <-time.After(3 * time.Second):
		fmt.Println("main: three seconds are up")
	}

	start := time.Now()
	if err := system.Root.StopFuture(svc).Wait(); err != nil {
		fmt.Println("main: stop:", err)
		os.Exit(1)
	}
	fmt.Printf("main: service tree stopped in %v\n", time.Since(start).Round(time.Millisecond))

	close(pids)
	left := 0
	for pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			fmt.Println("main: worker still running:", pid)
			left++
		}
	}
	if left > 0 {
		os.Exit(1)
	}
	fmt.Println("main: no worker left running")
}
