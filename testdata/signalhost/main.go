// Command signalhost is a helper of the signal tests: it supervises a
// process that ignores SIGTERM (with a child that does too), under the grace
// period given as its second argument, and one that exits on SIGTERM
// (writing "term" to <dir>/term first), calls HandleSignals, prints every
// PID of their trees on one line and then "ready", waits for Done and exits
// 0 (2 if the shutdown failed).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/resman-dev/resman"
)

func main() {
	dir := os.Args[1]
	grace, err := time.ParseDuration(os.Args[2])
	if err != nil {
		fail(err)
	}
	// A subreaper, so that the orphans of the trees are reaped by the host,
	// whatever PID 1 does: nothing, not even a zombie, is left.
	m, err := resman.New(resman.WithSubreaper())
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	children := filepath.Join(dir, "children")
	ignorer := `trap "" TERM; sleep 300 & echo $! >> ` + children + `; exec sleep 300`
	normal := `trap "echo term > ` + filepath.Join(dir, "term") + `; exit 0" TERM; sleep 300 & echo $! >> ` + children + `; wait`
	if err := m.Supervise(ctx, "ignorer", resman.ProcessSpec{Command: []string{"/bin/sh", "-c", ignorer}},
		resman.WithGracePeriod(grace)); err != nil {
		fail(err)
	}
	if err := m.Supervise(ctx, "normal", resman.ProcessSpec{Command: []string{"/bin/sh", "-c", normal}},
		resman.WithGracePeriod(grace)); err != nil {
		fail(err)
	}
	stop := m.HandleSignals()
	defer stop()

	var pids []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, _ := os.ReadFile(children)
		if pids = strings.Fields(string(b)); len(pids) == 2 {
			break
		}
		if time.Now().After(deadline) {
			fail(fmt.Errorf("the processes did not start"))
		}
		time.Sleep(time.Millisecond)
	}
	st, err := m.Status(ctx)
	if err != nil {
		fail(err)
	}
	for _, p := range st.Processes {
		pids = append(pids, fmt.Sprint(p.PID))
	}
	fmt.Println(strings.Join(pids, " "))
	fmt.Println("ready")

	<-m.Done()
	if err := m.Shutdown(ctx); err != nil { // the result of the shutdown the signal started
		fmt.Fprintln(os.Stderr, "signalhost:", err)
		stop()
		os.Exit(2)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "signalhost:", err)
	os.Exit(1)
}
