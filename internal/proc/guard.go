package proc

import (
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
)

// guardScript is the host-death watcher. It keeps the process groups and
// cgroups the host tells it about on stdin ("+ <pgid>", "- <pgid>", a path
// for a cgroup) and, when stdin reaches EOF without a "q" — the host died,
// however, even by SIGKILL — it kills them all. A parent-death signal cannot
// do this: it reaches only direct children, and fires when the forking OS
// thread exits rather than the process (golang/go#27505). awk keeps the set
// in a hash, so thousands of groups cost nothing; the shell in front makes it
// ignore the terminal's signals (ignored signals survive exec).
const guardScript = `
trap '' INT TERM HUP QUIT
exec awk '
$1 == "+" { live[$2] = 1; next }
$1 == "-" { delete live[$2]; next }
$1 == "q" { quit = 1; exit }
END {
  if (quit) exit 0
  groups = ""
  for (x in live) {
    if (x ~ /^\//) { f = x "/cgroup.kill"; printf "1" > f; close(f) }
    else groups = groups " -" x
  }
  if (groups != "") system("kill -9" groups " 2>/dev/null")
}'
`

// Guard runs the host-death watcher. It starts the watcher process on the
// first Add; its writer goroutine (owned by the Guard) feeds it, so Add and
// Remove never block.
type Guard struct {
	logger *slog.Logger

	mu      sync.Mutex // guards the fields below
	queue   []string
	running bool
	closed  bool
	wake    chan struct{} // capacity 1
	done    chan struct{} // closed when the writer has stopped the watcher (or never ran)
}

// NewGuard returns a Guard; nothing runs until the first Add.
func NewGuard(logger *slog.Logger) *Guard {
	return &Guard{logger: logger, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// AddGroup asks the watcher to kill process group pgid if the host dies.
func (g *Guard) AddGroup(pgid int) { g.send("+ " + strconv.Itoa(pgid)) }

// RemoveGroup withdraws pgid; call it before the group's leader is reaped.
func (g *Guard) RemoveGroup(pgid int) { g.send("- " + strconv.Itoa(pgid)) }

// AddCgroup asks the watcher to write cgroup.kill in dir if the host dies.
func (g *Guard) AddCgroup(dir string) { g.send("+ " + dir) }

// RemoveCgroup withdraws dir.
func (g *Guard) RemoveCgroup(dir string) { g.send("- " + dir) }

func (g *Guard) send(line string) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.queue = append(g.queue, line)
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Close tells the watcher to exit without killing anything and waits until
// it has (see Done).
func (g *Guard) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	running := g.running
	g.mu.Unlock()
	if !running {
		close(g.done)
		return
	}
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Done is closed once Close has taken effect.
func (g *Guard) Done() <-chan struct{} { return g.done }

func (g *Guard) run() {
	defer close(g.done)
	w, cmd, err := startWatcher()
	if err != nil {
		g.logger.Error("resman: cannot start the host-death watcher; only the parent-death signal guards against a host crash", "err", err)
		w = nopWriter{}
	}
	for {
		g.mu.Lock()
		batch := g.queue
		g.queue = nil
		closed := g.closed
		g.mu.Unlock()
		for _, line := range batch {
			if _, err := io.WriteString(w, line+"\n"); err != nil {
				g.logger.Error("resman: host-death watcher is gone", "err", err)
				w = nopWriter{}
			}
		}
		if len(batch) == 0 {
			if closed {
				break
			}
			<-g.wake
		}
	}
	if cmd != nil {
		_, _ = io.WriteString(w, "q\n")
		_ = w.Close()
		_ = cmd.Wait()
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (nopWriter) Close() error                { return nil }

func startWatcher() (io.WriteCloser, *exec.Cmd, error) {
	cmd := exec.Command("/bin/sh", "-c", guardScript)
	// Its own group, no parent-death signal: it must outlive the host.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = nil, nil
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	return w, cmd, nil
}
