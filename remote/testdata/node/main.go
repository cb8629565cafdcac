// Command node is the other node of package remote's tests and
// benchmarks: a separate OS process (two protoactor remotes in one process
// race). It serves a manager on a node of its own, prints "addr <address>"
// and runs until stdin closes (reading commands: "burst N", "pair") (then it closes the node and shuts the
// manager down) or it is killed.
//
//	-certs DIR -name NAME  mutual TLS from DIR/ca.pem, DIR/NAME.pem, DIR/NAME-key.pem; none: loopback without TLS
//	-echo                  also an actor "echo" that answers every request at once (the benchmarks' baseline)
//	-drive ADDR -n N       also supervise N sleeping processes on the node at ADDR (OwnedByCaller unless -owned=false), then print "ready"
//	-max N                 Config.MaxMessageBytes
//	-serve=false           do not serve the manager
//	-wait                  after -drive, wait for its first process (WaitProcess) in the background
//	-status ADDR           only ask the node at ADDR for its Status, print "ok <processes> <ms>" or "err <unreachable|other> <ms> <error>", and exit
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/internal/certs"
	"github.com/resman-dev/resman/remote"
	"github.com/resman-dev/resman/remote/internal/wire"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("certs", "", "certificate directory")
	name := flag.String("name", "node", "certificate name")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	echo := flag.Bool("echo", false, "serve an echo actor")
	drive := flag.String("drive", "", "supervise processes on this node, OwnedByCaller")
	n := flag.Int("n", 3, "how many processes -drive supervises")
	wait := flag.Bool("wait", false, "-drive then waits for its first process")
	prefix := flag.String("prefix", "owned-", "-drive's key prefix")
	owned := flag.Bool("owned", true, "-drive with OwnedByCaller")
	maxBytes := flag.Int("max", 0, "Config.MaxMessageBytes")
	serve := flag.Bool("serve", true, "serve the manager")
	status := flag.String("status", "", "print the Status of this node and exit")
	flag.Parse()

	var cfg *tls.Config
	if *dir != "" {
		var err error
		if cfg, err = certs.Load(*dir, *name); err != nil {
			return err
		}
	}
	node, err := remote.NewNode(remote.Config{Address: *addr, TLS: cfg, MaxMessageBytes: *maxBytes})
	if err != nil {
		return err
	}
	defer node.Close()
	if *status != "" {
		start := time.Now()
		st, err := node.Manager(*status).Status(context.Background())
		ms := time.Since(start).Milliseconds()
		switch {
		case err == nil:
			fmt.Println("ok", len(st.Processes), ms)
		case errors.Is(err, resman.ErrUnreachable):
			fmt.Println("err unreachable", ms, err)
		default:
			fmt.Println("err other", ms, err)
		}
		return nil
	}
	m, err := resman.New(resman.WithActorSystem(node.System()))
	if err != nil {
		return err
	}
	defer m.Close()
	if *serve {
		if err := node.Serve(m); err != nil {
			return err
		}
		if err := node.Serve(m); !errors.Is(err, resman.ErrInvalid) {
			return fmt.Errorf("a second Serve: %v, want ErrInvalid", err)
		}
	}
	if *echo {
		props := actor.PropsFromFunc(func(ctx actor.Context) {
			if req, ok := ctx.Message().(*wire.Request); ok {
				ctx.Respond(&wire.Reply{Id: req.Id})
			}
		})
		if _, err := node.System().Root.SpawnNamed(props, "echo"); err != nil {
			return err
		}
	}
	fmt.Println("addr", node.Address())
	if *drive != "" {
		var opts []remote.ClientOption
		if *owned {
			opts = append(opts, remote.OwnedByCaller())
		}
		c := node.Manager(*drive, opts...)
		for i := range *n {
			if err := c.Supervise(context.Background(), *prefix+strconv.Itoa(i), resman.ProcessSpec{Command: []string{"sleep", "1000"}}); err != nil {
				return err
			}
		}
		if *wait {
			// Owned by main: ends when the node closes or dies.
			go func() { _, _ = c.WaitProcess(context.Background(), *prefix+"0") }()
		}
		fmt.Println("ready")
	}
	// Commands on stdin until it closes: "burst N" registers and
	// unregisters N custom resources (2N events, from 4 goroutines), for
	// the events benchmark; "pair" supervises and stops a sleep, then
	// prints "pair <nil|error>".
	sc := bufio.NewScanner(os.Stdin)
	pairs := 0
	for sc.Scan() {
		var count int
		if _, err := fmt.Sscanf(sc.Text(), "burst %d", &count); err == nil {
			burst(m, count)
		}
		if sc.Text() == "pair" {
			// One Supervise + StopProcess on this node's manager, for the
			// pair benchmark's on-the-node baseline.
			key := "pair-" + strconv.Itoa(pairs)
			pairs++
			err := m.Supervise(context.Background(), key, resman.ProcessSpec{Command: []string{"sleep", "1000"}})
			if err == nil {
				err = m.StopProcess(context.Background(), key)
			}
			fmt.Println("pair", err)
		}
	}
	return nil
}

func burst(m *resman.Manager, count int) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		// Owned by burst: one of its four producers.
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := g; i < count; i += 4 {
				key := "burst-" + strconv.Itoa(i)
				if err := m.RegisterCustomResource(ctx, key, i, func(context.Context, any) error { return nil }); err == nil {
					_, _ = m.UnregisterCustomResource(ctx, key)
				}
			}
		}()
	}
	wg.Wait()
}
