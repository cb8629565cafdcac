// Command dashboard serves resman's status page for a few real processes:
// one that crashes and is restarted with backoff, one that prints a line
// every 300ms, and a plain sleeper. Open http://127.0.0.1:8080 and press
// Ctrl-C to stop; every process is stopped before it exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/web"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	m, err := resman.New(resman.WithDefaultTimeout(2 * time.Second))
	if err != nil {
		return err
	}
	defer m.Close()

	sh := func(script string) resman.ProcessSpec {
		return resman.ProcessSpec{Command: []string{"/bin/sh", "-c", script}}
	}
	if err := m.Supervise(ctx, "db", sh("echo 'database system is ready'; exec sleep infinity")); err != nil {
		return err
	}
	if err := m.Supervise(ctx, "web", sh(`i=0; while :; do i=$((i+1)); echo "GET /items 200 req=$i"; sleep 0.3; done`),
		resman.DependsOn(resman.KindProcess, "db")); err != nil {
		return err
	}
	crashy := resman.RestartPolicy{Mode: resman.RestartOnFailure, Backoff: 500 * time.Millisecond, MaxBackoff: 8 * time.Second}
	if err := m.Supervise(ctx, "crashy", sh("echo 'starting up'; sleep 1; echo 'panic: out of luck' >&2; exit 2"),
		resman.WithRestart(crashy)); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: web.Handler(m, web.WithActions()), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }() // owned by run: ends at srv.Shutdown below
	fmt.Printf("resman dashboard on http://%s (Ctrl-C to stop)\n", ln.Addr())

	select {
	case <-ctx.Done():
	case err = <-served:
		return err
	}
	// Stop the processes first: that ends the open /events streams too, so
	// the server's Shutdown does not wait on them.
	closeErr := m.Close()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return errors.Join(closeErr, err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(closeErr, err)
	}
	return closeErr
}
