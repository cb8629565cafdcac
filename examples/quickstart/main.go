// Command quickstart shows resman at work: it starts real processes (one of
// them ignores SIGTERM), goroutine tasks and a custom resource, prints what
// is tracked, stops them one way and another, and exits by itself with
// nothing left running, not even a zombie of a tree's background children.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/resman-dev/resman"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	// WithSubreaper: orphans of tracked trees come to us, not to PID 1, and
	// are reaped; a stopped tree leaves nothing behind, not even a zombie.
	m, err := resman.New(resman.WithDefaultTimeout(2*time.Second), resman.WithSubreaper())
	if err != nil {
		return err
	}
	defer m.Close()

	// Processes: StartProcess puts each in a process group of its own, so a
	// stop reaches the whole tree.
	if err := m.StartProcess(ctx, "worker", exec.Command("sleep", "60")); err != nil {
		return err
	}
	stubborn := exec.Command("sh", "-c", `trap "" TERM; echo ready; exec sleep 60`)
	out, err := stubborn.StdoutPipe()
	if err != nil {
		return err
	}
	if err := m.StartProcess(ctx, "stubborn", stubborn); err != nil {
		return err
	}
	if _, err := out.Read(make([]byte, 6)); err != nil { // "ready": the trap is set
		return err
	}
	tree := exec.Command("sh", "-c", "sleep 60 & sleep 60 & echo forked; wait")
	treeOut, err := tree.StdoutPipe()
	if err != nil {
		return err
	}
	if err := m.StartProcess(ctx, "tree", tree); err != nil {
		return err
	}
	if _, err := treeOut.Read(make([]byte, 7)); err != nil { // "forked": both children run
		return err
	}
	grandchildren := childrenOf(tree.Process.Pid)

	// Tasks: goroutines with a cancel and a result.
	ticks := make(chan int, 1)
	if _, err := m.Go(ctx, "ticker", func(ctx context.Context) error {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				ticks <- n
				return ctx.Err()
			case <-t.C:
			}
		}
	}); err != nil {
		return err
	}
	oneShot, err := m.Go(ctx, "one-shot", func(context.Context) error { return errors.New("finished early") })
	if err != nil {
		return err
	}

	// A custom resource: anything with a cleanup function.
	if err := m.RegisterCustomResource(ctx, "temp-dir", "/tmp/quickstart", func(ctx context.Context, r any) error {
		fmt.Printf("  cleanup of %v ran\n", r)
		return nil
	}); err != nil {
		return err
	}

	_ = oneShot.Wait(ctx) // it returns on its own; the manager records its result
	if err := printStatus(ctx, m, "tracked"); err != nil {
		return err
	}

	fmt.Println("\nstopping one at a time")
	start := time.Now()
	if err := m.StopProcess(ctx, "worker"); err != nil {
		return err
	}
	fmt.Printf("  worker (obeys SIGTERM) stopped in %v\n", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := m.StopProcess(ctx, "stubborn", resman.WithTimeout(500*time.Millisecond)); err != nil {
		return err
	}
	fmt.Printf("  stubborn (ignores SIGTERM) killed after its 500ms grace period, in %v\n", time.Since(start).Round(time.Millisecond))
	if err := m.CancelTask(ctx, "ticker"); err != nil {
		return err
	}
	fmt.Printf("  ticker cancelled after %d ticks\n", <-ticks)

	if err := printStatus(ctx, m, "left"); err != nil {
		return err
	}

	fmt.Println("\ncleaning up the rest at once")
	start = time.Now()
	if err := m.CleanupAll(ctx); err != nil {
		return err
	}
	fmt.Printf("  done in %v\n", time.Since(start).Round(time.Millisecond))
	fmt.Printf("  tree's background children %v: %s\n", grandchildren, traces(grandchildren))
	if err := printStatus(ctx, m, "left"); err != nil {
		return err
	}
	return m.Shutdown(ctx)
}

func printStatus(ctx context.Context, m *resman.Manager, title string) error {
	st, err := m.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("\n%s:\n", title)
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  KEY\tKIND\tSTATE\tPID\tAGE\tDETAIL")
	now := time.Now()
	for _, p := range st.Processes {
		detail := ""
		if p.State == resman.StateExited {
			detail = fmt.Sprintf("exit code %d", p.ExitCode)
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%d\t%v\t%s\n", p.Key, resman.KindProcess, p.State, p.PID, age(now, p.RegisteredAt), detail)
	}
	for _, t := range st.Tasks {
		detail := ""
		if t.Err != nil {
			detail = "returned: " + t.Err.Error()
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t-\t%v\t%s\n", t.Key, resman.KindTask, t.State, age(now, t.RegisteredAt), detail)
	}
	for _, c := range st.CustomResources {
		fmt.Fprintf(w, "  %s\t%s\t%s\t-\t%v\t%s\n", c.Key, strings.ReplaceAll(resman.KindCustomResource.String(), " ", "-"), c.State, age(now, c.RegisteredAt), c.Type)
	}
	if len(st.Processes)+len(st.Tasks)+len(st.CustomResources) == 0 {
		fmt.Fprintln(w, "  (nothing)")
	}
	return w.Flush()
}

// childrenOf lists pid's children, from /proc.
func childrenOf(pid int) []int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

// traces says what /proc still shows of pids.
func traces(pids []int) string {
	var left []string
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		state := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
		left = append(left, fmt.Sprintf("%d is left (state %s)", pid, state))
	}
	if len(left) == 0 {
		return "gone, not even zombies"
	}
	return strings.Join(left, ", ")
}

func age(now, t time.Time) time.Duration { return now.Sub(t).Round(time.Millisecond) }
