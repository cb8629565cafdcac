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
// thread exits rather than the process (golang/go#27505).
const guardScript = `
trap '' INT TERM HUP QUIT
g=" "
while read -r op arg; do
  case "$op" in
    +) g="$g$arg " ;;
    -) case "$g" in *" $arg "*) g="${g%% $arg *} ${g#* $arg }" ;; esac ;;
    q) exit 0 ;;
  esac
done
for x in $g; do
  case "$x" in
    /*) echo 1 > "$x/cgroup.kill" ;;
    *) kill -9 "-$x" ;;
  esac
done 2>/dev/null
exit 0
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
