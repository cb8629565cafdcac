package resman_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/resman-dev/resman"
)

func ExampleNew() {
	m, err := resman.New(resman.WithDefaultTimeout(2 * time.Second))
	if err != nil {
		panic(err)
	}
	defer m.Close()

	st, _ := m.Status(context.Background())
	fmt.Println(len(st.Processes), len(st.Tasks), len(st.CustomResources))
	// Output: 0 0 0
}

func ExampleManager_StartProcess() {
	ctx := context.Background()
	m, _ := resman.New()
	defer m.Close()

	// Started in a process group of its own, with a parent-death signal.
	if err := m.StartProcess(ctx, "worker", exec.Command("sleep", "60")); err != nil {
		panic(err)
	}
	// SIGTERM to the group, up to 1s of grace, then SIGKILL; reaped.
	err := m.StopProcess(ctx, "worker", resman.WithTimeout(time.Second))
	fmt.Println(err)
	// Output: <nil>
}

func ExampleWithSubreaper() {
	ctx := context.Background()
	// For a program that is PID 1, or whose children daemonise: orphans of
	// tracked trees come to it, not to PID 1, and are reaped.
	m, err := resman.New(resman.WithSubreaper())
	if err != nil {
		panic(err)
	}
	defer m.Close()

	// The shell's children outlive it by an instant when the group is
	// stopped: orphans, adopted and reaped. Nothing is left, not even a zombie.
	_ = m.StartProcess(ctx, "tree", exec.Command("sh", "-c", "sleep 60 & sleep 60 & wait"))
	fmt.Println(m.StopProcess(ctx, "tree"))
	// Output: <nil>
}

func ExampleManager_WaitProcess() {
	ctx := context.Background()
	m, _ := resman.New()
	defer m.Close()

	_ = m.StartProcess(ctx, "job", exec.Command("sh", "-c", "exit 3"))
	state, _ := m.WaitProcess(ctx, "job")
	fmt.Println(state.ExitCode())
	st, _ := m.Status(ctx)
	fmt.Println(st.Processes[0].Key, st.Processes[0].State, st.Processes[0].ExitCode)
	// Output:
	// 3
	// job exited 3
}

func ExampleManager_Go() {
	ctx := context.Background()
	m, _ := resman.New()
	defer m.Close()

	task, _ := m.Go(ctx, "poller", func(ctx context.Context) error {
		<-ctx.Done() // a cooperative task returns when cancelled
		return ctx.Err()
	})
	fmt.Println(m.CancelTask(ctx, "poller"))
	fmt.Println(task.Err())
	// Output:
	// <nil>
	// context canceled
}

func ExampleManager_RegisterCustomResource() {
	ctx := context.Background()
	m, _ := resman.New()
	defer m.Close()

	_ = m.RegisterCustomResource(ctx, "db", "a pool", func(ctx context.Context, r any) error {
		fmt.Println("closing", r)
		return nil
	})
	fmt.Println(m.CleanupCustomResource(ctx, "db"))
	// Output:
	// closing a pool
	// <nil>
}

func ExampleManager_TrackCustomResource() {
	ctx := context.Background()
	m, _ := resman.New()
	defer m.Close()

	cleanup := func(context.Context, any) error { fmt.Println("cleaned up"); return nil }
	err := m.TrackCustomResource(ctx, "scratch", "/tmp/scratch", cleanup, func(r any) error {
		fmt.Println("using", r)
		return errors.New("work failed")
	})
	fmt.Println(err)
	// Output:
	// using /tmp/scratch
	// cleaned up
	// work failed
}

func ExampleManager_CleanupAll() {
	ctx := context.Background()
	m, _ := resman.New(resman.WithDefaultTimeout(100 * time.Millisecond))
	defer m.Close()

	_ = m.RegisterCustomResource(ctx, "a", 1, func(context.Context, any) error { return errors.New("a failed") })
	_ = m.RegisterCustomResource(ctx, "b", 2, func(context.Context, any) error { return nil })
	_, _ = m.Go(ctx, "t", func(ctx context.Context) error { <-ctx.Done(); return nil })

	err := m.CleanupAll(ctx)
	fmt.Println(err)
	var re *resman.ResourceError
	fmt.Println(errors.As(err, &re), re.Key)
	// Output:
	// resman: cleanup custom resource "a": a failed
	// true a
}

func ExampleResourceError() {
	ctx := context.Background()
	m, _ := resman.New()
	defer m.Close()

	err := m.StopProcess(ctx, "missing")
	fmt.Println(err)
	fmt.Println(errors.Is(err, resman.ErrNotRegistered))
	// Output:
	// resman: stop process "missing": not registered
	// true
}

func ExampleManager_Supervise() {
	ctx := context.Background()
	m, _ := resman.New()
	defer m.Close()

	// A run that fails twice, then succeeds: restarted on failure.
	dir, _ := os.MkdirTemp("", "resman-example")
	defer os.RemoveAll(dir)
	spec := resman.ProcessSpec{
		Command: []string{"sh", "-c", `n=$(cat runs 2>/dev/null || echo 0); echo $((n+1)) > runs; echo "run $((n+1))"; [ $n -ge 2 ]`},
		Dir:     dir,
	}
	err := m.Supervise(ctx, "flaky", spec, resman.WithRestart(resman.RestartPolicy{
		Mode:    resman.RestartOnFailure,
		Backoff: 10 * time.Millisecond,
	}))
	if err != nil {
		panic(err)
	}
	state, _ := m.WaitProcess(ctx, "flaky") // returns when no restart will follow
	st, _ := m.Status(ctx)
	fmt.Println("exit code", state.ExitCode(), "after", st.Processes[0].Restarts, "restarts")
	// Output: exit code 0 after 2 restarts
}
