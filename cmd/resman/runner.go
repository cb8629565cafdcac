package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/internal/hooks"
	"github.com/resman-dev/resman/web"
)

// runConfig is what `resman run` was asked to do.
type runConfig struct {
	dir         string // the Procfile's directory: the processes' working directory
	env         []string
	instances   []instance
	grace       time.Duration
	restart     resman.RestartMode
	maxRestarts int
	cgroup      string
	httpAddr    string
	token       string
}

// exit codes of the runner's own.
const (
	exitUsage = 2 // bad flags or input files
	exitError = 1 // the runner could not do its work
)

// runner supervises a formation: the main goroutine owns it; the manager's
// hooks only print.
type runner struct {
	cfg        runConfig
	out        *printer
	m          *resman.Manager
	cgroupMade bool
	exited     map[string]bool // instances whose last run ended on its own; the event hook's alone
	droppedMu  sync.Mutex      // guards dropped: the event hook and run tell
	dropped    map[string]int  // output lines of each instance said to be dropped
}

// newRunner starts a manager for cfg, its lines going to out.
func newRunner(cfg runConfig, out *printer) (*runner, error) {
	r := &runner{cfg: cfg, out: out, exited: map[string]bool{}, dropped: map[string]int{}}
	opts := []resman.Option{
		resman.WithDefaultTimeout(cfg.grace),
		resman.WithSubreaper(),
		hooks.OutputBytes(out.Output).(resman.Option), // WithOutputHook's lines, without a string each
		resman.WithEventHook(r.event),
	}
	if cfg.cgroup != "" {
		if _, err := os.Stat(cfg.cgroup); errors.Is(err, os.ErrNotExist) {
			r.cgroupMade = true
		}
		opts = append(opts, resman.WithCgroup(cfg.cgroup))
	}
	m, err := resman.New(opts...)
	if err != nil {
		return nil, err
	}
	r.m = m
	return r, nil
}

// event prints what happens to the processes (on the manager's event
// goroutine).
func (r *runner) event(e resman.Event) {
	if e.Kind != resman.KindProcess {
		return
	}
	switch e.Type {
	case resman.EventRegistered:
		r.out.Print(fmt.Sprintf("%s started with pid %d", e.Key, e.PID))
	case resman.EventExited:
		r.exited[e.Key] = true
		if e.ExitCode == -1 {
			r.out.Print(e.Key + " was killed by a signal")
		} else {
			r.out.Print(fmt.Sprintf("%s exited with code %d", e.Key, e.ExitCode))
		}
	case resman.EventStopped:
		if !r.exited[e.Key] {
			r.out.Print(e.Key + " stopped")
		}
	case resman.EventRestarting:
		r.tellDropped(e.Key) // the run has ended, its lines are counted
		r.out.Print(fmt.Sprintf("%s restarts in %v (restart %d)", e.Key, e.Delay.Round(time.Millisecond), e.Restarts+1))
	case resman.EventRestarted:
		r.exited[e.Key] = false
		r.out.Print(fmt.Sprintf("%s restarted with pid %d", e.Key, e.PID))
	case resman.EventGaveUp:
		r.out.Print(fmt.Sprintf("%s gave up after %d restarts", e.Key, e.Restarts))
	case resman.EventFailed:
		r.out.Print(fmt.Sprintf("%s: %v", e.Key, e.Err))
	}
}

// tellDropped says how many of key's output lines were dropped since it
// last said so: lines come from the processes faster than resman's
// stdout takes them, and the library drops the oldest rather than slow a
// process down. A run's count is complete once its end is final: a
// restart is scheduled, or WaitProcess returned.
func (r *runner) tellDropped(key string) {
	r.droppedMu.Lock()
	defer r.droppedMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := r.m.Status(ctx)
	if err != nil {
		return
	}
	for _, p := range st.Processes {
		if p.Key == key && p.DroppedLines > r.dropped[key] {
			r.out.Print(fmt.Sprintf("%s: %d output lines were dropped (they came faster than stdout took them)", key, p.DroppedLines-r.dropped[key]))
			r.dropped[key] = p.DroppedLines
		}
	}
}

// policy is the restart policy of every instance.
func (r *runner) policy() resman.RestartPolicy {
	return resman.RestartPolicy{Mode: r.cfg.restart, MaxRestarts: r.cfg.maxRestarts, Window: time.Minute}
}

// start supervises every instance, in Procfile order.
func (r *runner) start(ctx context.Context) error {
	for _, in := range r.cfg.instances {
		env := append(append([]string(nil), r.cfg.env...), "PORT="+strconv.Itoa(in.Port), "PS="+in.Key)
		spec := resman.ProcessSpec{Command: []string{"/bin/sh", "-c", in.Cmd}, Env: env, Dir: r.cfg.dir}
		if err := r.m.Supervise(ctx, in.Key, spec, resman.WithRestart(r.policy())); err != nil {
			return err
		}
	}
	return nil
}

// ended is what a WaitProcess of an instance returned.
type ended struct {
	key   string
	state *os.ProcessState
	err   error
}

// exitCodeOf is the code resman exits with for a process that ended so:
// its exit code, or 128 + the signal that ended it.
func exitCodeOf(state *os.ProcessState) int {
	if state == nil {
		return exitError
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if c := state.ExitCode(); c > 0 {
		return c
	}
	return exitError
}

var signalNames = map[os.Signal]string{os.Interrupt: "SIGINT", syscall.SIGTERM: "SIGTERM", syscall.SIGHUP: "SIGHUP"}

// signalCodes are the exit codes of a stop by signal.
var signalCodes = map[os.Signal]int{os.Interrupt: 130, syscall.SIGTERM: 143, syscall.SIGHUP: 129}

// run supervises the formation until every process finished, one gave
// up, or a signal came; it stops everything and returns the exit code.
func (r *runner) run() int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	// The first signal starts the manager's Shutdown, a second one
	// SIGKILLs what is left at once; sigs only tells run which came.
	stopSignals := r.m.HandleSignals(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stopSignals()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := r.serve()
	if err != nil {
		r.out.Print(err.Error())
		r.shutdown()
		return exitUsage
	}
	code := -1         // not decided yet
	signalled := false // a signal decided it
	if err := r.start(ctx); err != nil {
		code, signalled = r.stoppedBySignal(sigs, err)
	}

	ends := make(chan ended, len(r.cfg.instances))
	if code < 0 {
		for _, in := range r.cfg.instances {
			go func() { // owned by run: ends when the process has ended for good, or at cancel
				st, err := r.m.WaitProcess(ctx, in.Key)
				ends <- ended{key: in.Key, state: st, err: err}
			}()
		}
	}
	finished := 0
	for code < 0 {
		select {
		case s := <-sigs:
			code, signalled = signalCodes[s], true
			r.out.Print(fmt.Sprintf("%s: stopping every process (grace %v; Ctrl-C again kills them now)", signalNames[s], r.cfg.grace))
		case e := <-ends:
			r.tellDropped(e.key)
			switch {
			case errors.Is(e.err, resman.ErrRestartLimit):
				code = exitCodeOf(e.state)
				r.out.Print(fmt.Sprintf("%s gave up: stopping every process", e.key))
			case e.err != nil:
				code, signalled = r.stoppedBySignal(sigs, e.err)
			case e.state.ExitCode() == 0:
				if finished++; finished == len(r.cfg.instances) {
					code = 0
				}
			default: // --restart never
				code = exitCodeOf(e.state)
				r.out.Print(fmt.Sprintf("%s failed: stopping every process", e.key))
			}
		}
	}
	// Signals while stopping: the manager's HandleSignals kills everything
	// at the second (or at the first, when a failure began the stop, it
	// starts the same shutdown). Say so; a SIGINT makes the exit code 130.
	quit, watched := make(chan struct{}), make(chan bool)
	seen := 0 // signals so far
	if signalled {
		seen = 1
	}
	go func() { // owned by run: ends at quit, handing over whether a SIGINT came
		interrupted := false
		for {
			select {
			case s := <-sigs:
				interrupted = interrupted || s == os.Interrupt
				if seen++; seen == 1 {
					r.out.Print(fmt.Sprintf("%s: stopping every process (Ctrl-C again kills them now)", signalNames[s]))
				} else {
					r.out.Print(fmt.Sprintf("%s again: killing every process now", signalNames[s]))
				}
			case <-quit:
				watched <- interrupted
				return
			}
		}
	}()
	r.shutdown()
	close(quit)
	if <-watched {
		code = signalCodes[os.Interrupt]
	}
	if srv != nil {
		_ = srv.Close()
	}
	return code
}

// stoppedBySignal is the exit code for err, an error that a signal's
// shutdown may have caused before run saw the signal, and whether it was.
func (r *runner) stoppedBySignal(sigs <-chan os.Signal, err error) (int, bool) {
	if errors.Is(err, resman.ErrClosed) || errors.Is(err, resman.ErrNotRegistered) {
		select {
		case s := <-sigs:
			r.out.Print(fmt.Sprintf("%s: stopping every process (grace %v; Ctrl-C again kills them now)", signalNames[s], r.cfg.grace))
			return signalCodes[s], true
		case <-time.After(time.Second): // signal.Notify hands a signal to every channel at once
		}
	}
	r.out.Print(fmt.Sprintf("resman: %v", err))
	return exitError, false
}

// shutdown stops every process (concurrently, each with the grace period,
// then SIGKILL) and waits until the manager is done.
func (r *runner) shutdown() {
	if err := r.m.Shutdown(context.Background()); err != nil {
		r.out.Print(fmt.Sprintf("stop: %v", err))
	}
	<-r.m.Done()
	if r.cgroupMade {
		_ = os.Remove(r.cfg.cgroup) // empty now; the runner made it
	}
}

// serve starts the status page on --http, if asked.
func (r *runner) serve() (*http.Server, error) {
	if r.cfg.httpAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", r.cfg.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("--http: %v", err)
	}
	var opts []web.Option
	if r.cfg.token != "" {
		opts = append(opts, web.WithToken(r.cfg.token))
	}
	srv := &http.Server{Handler: web.Handler(r.m, opts...), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // owned by run: ends at srv.Close
	r.out.Print("status page on http://" + ln.Addr().String() + "/")
	return srv, nil
}

// loopback reports whether addr's host can only be reached from this machine.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
