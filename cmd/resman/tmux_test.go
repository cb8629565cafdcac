package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tmuxServer is a tmux server of the test's own (a private socket), with
// one fixed-size window running command. It is killed when the test ends.
type tmuxServer struct {
	t    *testing.T
	sock string
}

func startTmux(t *testing.T, command string) *tmuxServer {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("the terminal test needs tmux (apt-get install -y tmux; .ci/run installs it)")
	}
	conf := filepath.Join(t.TempDir(), "tmux.conf")
	require.NoError(t, os.WriteFile(conf, []byte("set -g default-terminal xterm-256color\n"), 0o644))
	s := &tmuxServer{t: t, sock: fmt.Sprintf("resman-test-%d-%d", os.Getpid(), time.Now().UnixNano())}
	args := []string{"-f", conf, "new-session", "-d", "-s", "t", "-x", "160", "-y", "40"}
	s.run(append(args, command)...)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", s.sock, "kill-server").Run() })
	return s
}

func (s *tmuxServer) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.sock}, args...)...).CombinedOutput()
	require.NoError(s.t, err, "tmux %v: %s", args, out)
	return string(out)
}

// screen is the pane's content with its escape sequences (capture-pane -e).
func (s *tmuxServer) screen() string { return s.run("capture-pane", "-p", "-e", "-t", "t") }

// waitScreen waits until the pane shows want.
func (s *tmuxServer) waitScreen(want string) string {
	s.t.Helper()
	var screen string
	require.Eventuallyf(s.t, func() bool {
		screen = s.screen()
		return strings.Contains(screen, want)
	}, 20*time.Second, 20*time.Millisecond, "the pane never showed %q; it shows:\n%s", want, screen)
	return screen
}

func TestTerminalColoursAndCtrlC(t *testing.T) {
	dir := procfile(t, "web: trap 'echo bye; exit 0' TERM; echo up on $PORT; while :; do sleep 0.05; done\nworker: echo working; exec sleep 300\n")
	mark := fmt.Sprintf("%s-%d-%d", t.Name(), os.Getpid(), time.Now().UnixNano())
	r := &run{mark: mark}
	defer func() {
		for _, pid := range marked(mark) {
			_ = exec.Command("kill", "-9", strconv.Itoa(pid)).Run()
		}
	}()
	// The shell prints resman's exit code and stays, so the pane keeps
	// everything; its no-op INT trap keeps it from dying of the Ctrl-C
	// (and, being a handler, is not inherited by resman).
	s := startTmux(t, "sh -c 'trap : INT; env "+markerVar+"="+mark+" "+bin+" run -t 5s -f "+filepath.Join(dir, "Procfile")+"; echo exit=$?; exec sleep 300'")
	screen := s.waitScreen("up on 5000")
	s.waitScreen("working")
	require.Contains(t, screen, "\x1b[36mweb.1", "web's name is coloured on a terminal:\n%q", screen)
	r.waitMarked(t, 4) // resman, its watcher, web.1 (and its sleep), worker.1

	s.run("send-keys", "-t", "t", "C-c")
	screen = s.waitScreen("exit=")
	require.Contains(t, screen, "exit=130", "Ctrl-C: exit 130")
	require.Contains(t, screen, "SIGINT: stopping every process")
	require.Contains(t, screen, "bye", "web.1 had its graceful stop")
	r.requireNothingLeft(t)
}

func TestTerminalNoColoursInAPipe(t *testing.T) {
	// On a terminal, but stdout is a pipe: no colours; --no-color too.
	dir := procfile(t, "web: echo plain\n")
	for _, cmd := range []string{
		bin + " run -f " + filepath.Join(dir, "Procfile") + " | cat",
		bin + " run --no-color -f " + filepath.Join(dir, "Procfile"),
	} {
		// The shell stays (tmux may lose what a pane's command printed
		// just before it exited); the exit codes are other tests' business.
		s := startTmux(t, "sh -c '"+cmd+"; echo the end; exec sleep 300'")
		screen := s.waitScreen("the end")
		require.Regexp(t, `web\.1 +\| plain`, screen)
		require.NotContains(t, screen, "\x1b[36m", "%s: no colours:\n%q", cmd, screen)
	}
}
