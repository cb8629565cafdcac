package proc

import (
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"github.com/resman-dev/resman/internal/queue"
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

// Guard runs the host-death watcher. The first Add starts the watcher
// process before it returns (a fork and exec, beside the start of the
// process it guards), so a process is never left unguarded for as long as
// the watcher takes to start; a queue's goroutine (owned by the Guard)
// feeds it, so Add and Remove never block after that.
type Guard struct {
	logger *slog.Logger
	q      *queue.Queue[string]
	once   sync.Once // starts the watcher

	// Set by once; then used by the queue's goroutine alone.
	w   io.WriteCloser // nil until once ran
	cmd *exec.Cmd
}

// NewGuard returns a Guard; nothing runs until the first Add.
func NewGuard(logger *slog.Logger) *Guard {
	g := &Guard{logger: logger}
	g.q = queue.New(g.write, g.quit)
	return g
}

// AddGroup asks the watcher to kill process group pgid if the host dies.
func (g *Guard) AddGroup(pgid int) {
	g.start()
	g.q.Push("+ " + strconv.Itoa(pgid))
}

// RemoveGroup withdraws pgid; call it before the group's leader is reaped.
func (g *Guard) RemoveGroup(pgid int) { g.q.Push("- " + strconv.Itoa(pgid)) }

// AddCgroup asks the watcher to write cgroup.kill in dir if the host dies.
func (g *Guard) AddCgroup(dir string) {
	g.start()
	g.q.Push("+ " + dir)
}

// start starts the watcher once.
func (g *Guard) start() {
	g.once.Do(func() {
		w, cmd, err := startWatcher()
		if err != nil {
			g.logger.Error("resman: cannot start the host-death watcher; only the parent-death signal guards against a host crash", "err", err)
			w = nopWriter{}
		}
		g.w, g.cmd = w, cmd
	})
}

// RemoveCgroup withdraws dir.
func (g *Guard) RemoveCgroup(dir string) { g.q.Push("- " + dir) }

// Close tells the watcher to exit without killing anything; Done is closed
// once it has.
func (g *Guard) Close() { g.q.Close() }

// Done is closed once Close has taken effect.
func (g *Guard) Done() <-chan struct{} { return g.q.Done() }

func (g *Guard) write(lines []string) {
	if g.w == nil {
		return // nothing was added: nothing to withdraw
	}
	for _, line := range lines {
		if _, err := io.WriteString(g.w, line+"\n"); err != nil {
			g.logger.Error("resman: host-death watcher is gone", "err", err)
			g.w = nopWriter{}
		}
	}
}

func (g *Guard) quit() {
	if g.cmd != nil {
		_, _ = io.WriteString(g.w, "q\n")
		_ = g.w.Close()
		_ = g.cmd.Wait()
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (nopWriter) Close() error                { return nil }

func startWatcher() (io.WriteCloser, *exec.Cmd, error) {
	cmd := exec.Command("/bin/sh", "-c", guardScript)
	// Its own group, no parent-death signal: it must outlive the host.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	return w, cmd, nil
}
