package output_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/resman-dev/resman/internal/output"
)

// A Capture per run of a process, feeding a Tail that outlives the runs.
func Example() {
	var tail output.Tail
	for run := range 2 {
		c := output.NewCapture("web", 100+run, tail.AppendBatch)
		c.Add(output.Stdout, strings.NewReader(fmt.Sprintf("run %d\r\nready\n", run)))
		c.Add(output.Stderr, strings.NewReader("no newline at the end"))
		if err := c.Wait(context.Background()); err != nil {
			panic(err)
		}
	}
	for _, l := range tail.Last(3) {
		if l.Stream == output.Stdout { // stderr lines may come first or last
			fmt.Printf("%s %d %s %q\n", l.Key, l.PID, l.Stream, l.Text)
		}
	}
	// Output:
	// web 101 stdout "run 1"
	// web 101 stdout "ready"
}

// Reading a process's stdout: Wait before cmd.Wait, which closes the pipe.
func ExampleCapture_Wait() {
	cmd := exec.Command("sh", "-c", `printf 'a\r\nb\nc'`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		panic(err)
	}
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	c := output.NewCapture("printf", cmd.Process.Pid, func(b *output.Batch) {
		b.Each(func(l *output.Line) { fmt.Printf("%q\n", l.Text) })
	})
	c.Add(output.Stdout, stdout)
	if err := c.Wait(context.Background()); err != nil {
		panic(err)
	}
	if err := cmd.Wait(); err != nil {
		panic(err)
	}
	fmt.Println("dropped:", c.Dropped())
	// Output:
	// "a"
	// "b"
	// "c"
	// dropped: 0
}
