// Command cluster runs three resman nodes on loopback as separate OS
// processes, with mutual TLS from a certificate authority made at start:
// this process drives the two others, starts processes on both, prints a
// combined status, cleans up and checks that nothing is left anywhere.
//
//	go run ./examples/cluster
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/internal/certs"
	"github.com/resman-dev/resman/remote"
)

func main() {
	worker := flag.String("worker", "", "run as a worker node with this name (certificates in -certs)")
	dir := flag.String("certs", "", "certificate directory of a worker")
	flag.Parse()
	var err error
	if *worker != "" {
		err = serve(*worker, *dir)
	} else {
		err = drive()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// serve is a worker: a node serving a manager until stdin closes.
func serve(name, dir string) error {
	cfg, err := certs.Load(dir, name)
	if err != nil {
		return err
	}
	node, err := remote.NewNode(remote.Config{Address: "127.0.0.1:0", TLS: cfg})
	if err != nil {
		return err
	}
	m, err := resman.New(resman.WithActorSystem(node.System()))
	if err != nil {
		node.Close()
		return err
	}
	if err := node.Serve(m); err != nil {
		node.Close()
		m.Close()
		return err
	}
	fmt.Println(node.Address())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the driver closes it (or dies)
	node.Close()
	return m.Close()
}

type worker struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	addr   string
	client *remote.Client
}

func drive() error {
	dir, err := os.MkdirTemp("", "resman-cluster")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// A certificate authority for this run, and a certificate per node
	// (each with ServerAuth and ClientAuth: a node is both).
	ca, err := certs.NewCA("resman cluster example")
	if err != nil {
		return err
	}
	names := []string{"driver", "alpha", "beta"}
	for _, name := range names {
		n, err := ca.Issue(name)
		if err != nil {
			return err
		}
		if err := ca.Write(dir, name, n); err != nil {
			return err
		}
	}

	// The two workers, separate OS processes.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var workers []*worker
	defer func() {
		for _, w := range workers { // on an early return: stop them
			_ = w.stdin.Close()
			_ = w.cmd.Wait()
		}
	}()
	for _, name := range names[1:] {
		cmd := exec.Command(self, "-worker", name, "-certs", dir)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		w := &worker{name: name, cmd: cmd, stdin: stdin}
		workers = append(workers, w)
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			return fmt.Errorf("worker %s: %w", name, err)
		}
		w.addr = strings.TrimSpace(line)
	}

	// This process's node drives both. OwnedByCaller: if this process dies,
	// the workers stop what it started.
	tlsCfg, err := certs.Load(dir, "driver")
	if err != nil {
		return err
	}
	node, err := remote.NewNode(remote.Config{TLS: tlsCfg})
	if err != nil {
		return err
	}
	defer node.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, w := range workers {
		w.client = node.Manager(w.addr, remote.OwnedByCaller())
		for _, key := range []string{"web", "worker"} {
			spec := resman.ProcessSpec{
				Command: []string{"sh", "-c", `echo "$ROLE up on $NODE"; exec sleep 60`},
				Env:     []string{"ROLE=" + key, "NODE=" + w.name},
			}
			err := w.client.Supervise(ctx, key, spec,
				resman.WithReady(resman.ReadyCheck{Output: " up on "}),
				resman.WithRestart(resman.RestartPolicy{Mode: resman.RestartOnFailure}),
				resman.WithGracePeriod(2*time.Second))
			if err != nil {
				return err
			}
		}
	}

	// The combined status, and each process's first line of output.
	var pids []int
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tKEY\tPID\tSTATE\tOUTPUT")
	for _, w := range workers {
		st, err := w.client.Status(ctx)
		if err != nil {
			return err
		}
		for _, p := range st.Processes {
			lines, err := w.client.Tail(ctx, p.Key, 1)
			if err != nil {
				return err
			}
			out := ""
			if len(lines) > 0 {
				out = lines[0].Text
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", w.name, w.addr, p.Key, p.PID, p.State, out)
			pids = append(pids, p.PID)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// A call about a key nobody has: the error is the same as a local one.
	if err := workers[0].client.StopProcess(ctx, "nope"); !errors.Is(err, resman.ErrNotRegistered) {
		return fmt.Errorf("stop of an unknown key: %v", err)
	}

	// Clean up everywhere, close the nodes, and check.
	for _, w := range workers {
		if err := w.client.CleanupAll(ctx); err != nil {
			return err
		}
	}
	if err := node.Close(); err != nil {
		return err
	}
	for _, w := range workers {
		_ = w.stdin.Close()
		if err := w.cmd.Wait(); err != nil {
			return fmt.Errorf("worker %s: %w", w.name, err)
		}
	}
	workers0 := workers
	workers = nil
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("pid %d is still there", pid)
		}
	}
	fmt.Printf("cleaned up: %d processes on %d nodes, none left\n", len(pids), len(workers0))
	return nil
}
