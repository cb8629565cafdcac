// Command hostdeath is a helper of the reliability tests: it starts
// processes through resman, prints every PID of their trees on one line,
// and waits to be SIGKILLed.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/resman-dev/resman"
)

func main() {
	dir := os.Args[1]
	m, err := resman.New()
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	f := filepath.Join(dir, "pids")
	for key, script := range map[string]string{
		"sleeper": `echo $$ >> ` + f + `; exec sleep 300`,
		"ignorer": `trap "" TERM; echo $$ >> ` + f + `; exec sleep 300`,
		"tree":    `sleep 300 & echo $! >> ` + f + `; (trap "" TERM; exec sleep 300) & echo $! >> ` + f + `; echo $$ >> ` + f + `; wait`,
	} {
		if err := m.StartProcess(ctx, key, exec.Command("/bin/sh", "-c", script)); err != nil {
			fail(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, _ := os.ReadFile(f)
		if pids := strings.Fields(string(b)); len(pids) == 5 {
			fmt.Println(strings.Join(pids, " "))
			break
		}
		if time.Now().After(deadline) {
			fail(fmt.Errorf("the processes did not start"))
		}
		time.Sleep(time.Millisecond)
	}
	select {} // until SIGKILL
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "hostdeath:", err)
	os.Exit(1)
}
