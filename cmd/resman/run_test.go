package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// loop is a shell loop that keeps a process running without output.
const loop = `while :; do sleep 0.05; done`

func TestRunPrefixesPortsAndExitsZero(t *testing.T) {
	dir := procfile(t, "# a comment\n\nweb: echo \"port=$PORT ps=$PS\"\nworker:   echo hi from $PS\n")
	r := startRun(t, dir, "-m", "web=2", "-p", "6000")
	require.Equal(t, 0, r.exitCode(t, 20*time.Second), "every process finished with code 0")
	out := r.output()
	for _, want := range []string{
		`(?m)^\d\d:\d\d:\d\d web\.1    \| port=6000 ps=web\.1$`,
		`(?m)^\d\d:\d\d:\d\d web\.2    \| port=6001 ps=web\.2$`,
		`(?m)^\d\d:\d\d:\d\d worker\.1 \| hi from worker\.1$`,
		`(?m)^\d\d:\d\d:\d\d resman   \| worker\.1 exited with code 0$`,
	} {
		require.Regexp(t, want, out)
	}
	require.NotContains(t, out, "\x1b[", "no colours in a pipe")
	r.requireNothingLeft(t)
}

func TestRunPortsReachTheProcesses(t *testing.T) {
	// A real server on $PORT: python3's http.server.
	dir := procfile(t, "web: exec python3 -m http.server --bind 127.0.0.1 $PORT\nother: "+loop+"\n")
	port := freePortBlock(t)
	r := startRun(t, dir, "-p", strconv.Itoa(port), "-t", "2s")
	url := fmt.Sprintf("http://127.0.0.1:%d/Procfile", port)
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "web.1 serves on base port %d", port)
	r.waitLine(t, `web\.1 +\| .*"GET /Procfile HTTP/1\.1" 200`)
	r.signal(t, syscall.SIGTERM)
	require.Equal(t, 143, r.exitCode(t, 10*time.Second))
	r.requireNothingLeft(t)
}

// freePortBlock returns a port that was free a moment ago (the test's base
// port).
func freePortBlock(t *testing.T) int {
	t.Helper()
	ln, err := listenLoopback()
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

func TestRunSignalsStopEverythingGracefully(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}, {syscall.SIGHUP, 129}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			// Each process says goodbye on SIGTERM: its last line must
			// be printed before resman exits.
			bye := `trap 'echo bye from $PS; exit 0' TERM; echo up; ` + loop
			dir := procfile(t, "a: "+bye+"\nb: "+bye+"\n")
			r := startRun(t, dir, "-t", "5s")
			r.waitLine(t, `a\.1 +\| up`)
			r.waitLine(t, `b\.1 +\| up`)
			r.signal(t, tc.sig)
			require.Equal(t, tc.code, r.exitCode(t, 10*time.Second))
			require.Regexp(t, `a\.1 +\| bye from a\.1\n`, r.output())
			require.Regexp(t, `b\.1 +\| bye from b\.1\n`, r.output())
			r.requireNothingLeft(t)
		})
	}
}

func TestRunSecondSIGINTKillsAtOnce(t *testing.T) {
	dir := procfile(t, "stubborn: trap '' TERM; echo $$ > pid; echo up; "+loop+"\nnice: echo up; "+loop+"\n")
	r := startRun(t, dir, "-t", "60s")
	r.waitLine(t, `stubborn\.1 +\| up`)
	r.waitLine(t, `nice\.1 +\| up`)
	pid := readPID(t, filepath.Join(dir, "pid"))
	r.signal(t, syscall.SIGINT)
	r.waitLine(t, `SIGINT: stopping every process`)
	r.waitLine(t, `nice\.1 stopped`)
	require.True(t, alive(pid), "the TERM-ignorer waits out its 60 s grace period")
	began := time.Now()
	r.signal(t, syscall.SIGINT)
	require.Equal(t, 130, r.exitCode(t, 10*time.Second))
	require.Less(t, time.Since(began), 5*time.Second, "killed at once, not after the grace period")
	r.requireNothingLeft(t, pid)
}

func TestRunAFailingProcessStopsTheOthers(t *testing.T) {
	dir := procfile(t, "long: echo $$ > pid; exec sleep 300\nbad: while [ ! -s pid ]; do sleep 0.01; done; echo failing; exit 7\n")
	r := startRun(t, dir, "--restart", "never", "-t", "2s")
	require.Equal(t, 7, r.exitCode(t, 20*time.Second), "the failing process's exit code")
	require.Regexp(t, `bad\.1 +\| failing\n`, r.output())
	require.Contains(t, r.output(), "long.1 stopped")
	r.requireNothingLeft(t, readPID(t, filepath.Join(dir, "pid")))
}

func TestRunASignalledProcessGivesItsCode(t *testing.T) {
	dir := procfile(t, "killed: kill -KILL $$\nlong: "+loop+"\n")
	r := startRun(t, dir, "--restart", "never", "-t", "2s")
	require.Equal(t, 128+9, r.exitCode(t, 20*time.Second), "128 + SIGKILL")
	r.requireNothingLeft(t)
}

func TestRunRestartsUpToTheLimit(t *testing.T) {
	dir := procfile(t, "crash: echo run; exit 3\nlong: "+loop+"\n")
	r := startRun(t, dir, "--max-restarts", "2", "-t", "2s")
	require.Equal(t, 3, r.exitCode(t, 20*time.Second), "gave up: the process's exit code")
	out := r.output()
	require.Len(t, regexp.MustCompile(`(?m)crash\.1 \| run$`).FindAllString(out, -1), 3, "the first run and 2 restarts:\n%s", out)
	require.Regexp(t, `crash\.1 restarts in \d+ms \(restart 1\)`, out)
	require.Regexp(t, `crash\.1 gave up after 2 restarts`, out)
	require.Contains(t, out, "long.1 stopped")
	r.requireNothingLeft(t)
}

func TestRunRestartAlways(t *testing.T) {
	// Under always, a run that ends with 0 is restarted too; stop by SIGTERM.
	dir := procfile(t, "tick: echo tick\n")
	r := startRun(t, dir, "--restart", "always", "--max-restarts", "0")
	r.waitLines(t, `tick\.1 restarted`, 2)
	r.signal(t, syscall.SIGTERM)
	require.Equal(t, 143, r.exitCode(t, 10*time.Second))
	r.requireNothingLeft(t)
}

// cgroupParent is the writable cgroup v2 hierarchy the library's cgroup
// tests use.
const cgroupParent = "/sys/fs/cgroup/unified"

func cgroupDir(t *testing.T) string {
	t.Helper()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(cgroupParent, &fs); err != nil || fs.Type != 0x63677270 {
		t.Skipf("no cgroup v2 hierarchy at %s on this machine", cgroupParent)
	}
	dir := filepath.Join(cgroupParent, fmt.Sprintf("resman-cmd-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	t.Cleanup(func() { _ = os.Remove(dir) })
	return dir
}

func TestRunCgroupTakesASetsidGrandchild(t *testing.T) {
	cg := cgroupDir(t)
	// The daemon leaves the process group (setsid, double fork) and ignores
	// SIGTERM: only the cgroup reaches it.
	dir := procfile(t, `d: (setsid /bin/sh -c 'trap "" TERM; echo $$ > daemon; exec sleep 300' &) ; exec sleep 300`+"\n")
	r := startRun(t, dir, "--cgroup", cg, "-t", "300ms")
	daemon := readPID(t, filepath.Join(dir, "daemon"))
	r.signal(t, syscall.SIGTERM)
	require.Equal(t, 143, r.exitCode(t, 10*time.Second))
	r.requireNothingLeft(t, daemon)
	_, err := os.Stat(cg)
	require.True(t, os.IsNotExist(err), "the cgroup dir resman made is removed")
}

func TestRunSIGKILLedLeavesNothing(t *testing.T) {
	// A tree, a TERM-ignorer and a quiet one; the runner dies by SIGKILL.
	dir := procfile(t, "tree: sleep 300 & sleep 300 & echo up; wait\nstubborn: trap '' TERM; echo up; "+loop+"\nquiet: exec sleep 300\n")
	r := startRun(t, dir)
	r.waitLine(t, `tree\.1 +\| up`)
	r.waitLine(t, `stubborn\.1 +\| up`)
	pids := r.waitMarked(t, 7) // resman, its host-death watcher, and the five processes (at least)
	r.signal(t, syscall.SIGKILL)
	require.Equal(t, -1, r.exitCode(t, 10*time.Second))
	r.requireNothingLeft(t, pids...)
}

func TestRunServesStatus(t *testing.T) {
	dir := procfile(t, "web: "+loop+"\nworker: "+loop+"\n")
	r := startRun(t, dir, "--http", "127.0.0.1:0", "-m", "worker=2")
	line := r.waitLine(t, `status page on http://`)
	url := regexp.MustCompile(`http://\S+/`).FindString(line)
	var st struct {
		Processes []struct {
			Key   string `json:"key"`
			PID   int    `json:"pid"`
			State string `json:"state"`
		} `json:"processes"`
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + "status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		st.Processes = nil
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&st) == nil && len(st.Processes) == 3
	}, 20*time.Second, 20*time.Millisecond)
	var keys []string
	for _, p := range st.Processes {
		keys = append(keys, p.Key)
		require.Equal(t, "running", p.State)
		require.Positive(t, p.PID)
	}
	require.Equal(t, []string{"web.1", "worker.1", "worker.2"}, keys)
	r.signal(t, syscall.SIGINT)
	require.Equal(t, 130, r.exitCode(t, 10*time.Second))
	r.requireNothingLeft(t)
}

func TestRunHTTPNeedsATokenOffLoopback(t *testing.T) {
	dir := procfile(t, "web: "+loop+"\n")
	code, _, stderr := runResman(t, dir, "run", "--http", "0.0.0.0:0")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--http 0.0.0.0:0: not a loopback address; give --token")
}

func TestRunRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, procfile, env string
		args                []string
		want                string
	}{
		{"no colon", "web: ok\nthis is not a line\n", "", nil, "Procfile:2: want \"name: command\""},
		{"empty command", "# c\nweb:\n", "", nil, "Procfile:2: process type \"web\" has no command"},
		{"bad name", "web.x: ok\n", "", nil, "Procfile:1: bad process type name \"web.x\""},
		{"duplicate", "web: a\n\nweb: b\n", "", nil, "Procfile:3: process type \"web\" is already on line 1"},
		{"empty", "# nothing\n", "", nil, "Procfile: no process types"},
		{"env", "web: ok\n", "A=1\nnot a variable\n", nil, ".env:2: want KEY=VALUE"},
		{"env quote", "web: ok\n", "A=\"open\n", nil, ".env:1: A: no closing \""},
		{"formation", "web: ok\n", "", []string{"-m", "db=1"}, "-m \"db=1\": no process type \"db\" in the Procfile"},
		{"formation count", "web: ok\n", "", []string{"-m", "web=x"}, "want name=count"},
		{"nothing", "web: ok\n", "", []string{"-m", "web=0"}, "nothing to run"},
		{"name", "web: ok\n", "", []string{"db"}, "no process type \"db\" in the Procfile"},
		{"restart", "web: ok\n", "", []string{"--restart", "sometimes"}, "--restart \"sometimes\": want never, on-failure or always"},
		{"grace", "web: ok\n", "", []string{"-t", "0s"}, "-t 0s: want a positive grace period"},
		{"port", "web: ok\n", "", []string{"-p", "70000"}, "-p 70000: want a port from 1 to 65535"},
		{"flag", "web: ok\n", "", []string{"--nope"}, "flag provided but not defined: -nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := procfile(t, tc.procfile)
			if tc.env != "" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte(tc.env), 0o644))
			}
			code, stdout, stderr := runResman(t, dir, append([]string{"run"}, tc.args...)...)
			require.Equal(t, 2, code, "stderr: %s", stderr)
			require.Contains(t, stderr, tc.want)
			require.Empty(t, stdout, "nothing ran")
			if !strings.HasPrefix(tc.name, "formation") && tc.name != "nothing" && tc.name != "name" && tc.args == nil {
				code, _, stderr = runResman(t, dir, "check")
				require.Equal(t, 2, code)
				require.Contains(t, stderr, tc.want, "check says the same")
			}
		})
	}
	code, _, stderr := runResman(t, t.TempDir(), "run")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "open Procfile: no such file or directory")
}

func TestRunEnvFile(t *testing.T) {
	dir := procfile(t, "show: echo \"$A|$B|$C|$D|$PORT\"\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte("# defaults\nA=1\nexport B=\"two words\\n\"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "other.env"), []byte("C='x #y'\nD=plain # comment\nPORT=1\n"), 0o644))
	r := startRun(t, dir)
	require.Equal(t, 0, r.exitCode(t, 20*time.Second))
	require.Regexp(t, `show\.1 +\| 1\|two words\n`, r.output())
	r = startRun(t, dir, "-e", "other.env")
	require.Equal(t, 0, r.exitCode(t, 20*time.Second))
	require.Regexp(t, `show\.1 +\| \|\|x #y\|plain\|5000\n`, r.output(), "-e replaces .env; PORT is resman's")
}

func TestCheck(t *testing.T) {
	dir := procfile(t, "web: python3 -m http.server $PORT\nworker: echo hi\n")
	code, stdout, stderr := runResman(t, dir, "check", "-m", "web=2", "-p", "7000")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `Procfile: valid, 3 processes\n`, stdout)
	require.Regexp(t, `(?m)^web\.1 +PORT=7000 +python3 -m http\.server \$PORT$`, stdout)
	require.Regexp(t, `(?m)^web\.2 +PORT=7001 `, stdout)
	require.Regexp(t, `(?m)^worker\.1 +PORT=7100 +echo hi$`, stdout)
}

func TestCheckTheExampleProcfile(t *testing.T) {
	code, stdout, stderr := runResman(t, ".", "check", "-f", "../../examples/Procfile")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "../../examples/Procfile: valid")
	require.Regexp(t, `(?m)^web\.1 +PORT=5000 `, stdout)
}

func TestHelp(t *testing.T) {
	code, stdout, _ := runResman(t, ".", "-h")
	require.Equal(t, 0, code)
	require.Contains(t, stdout, "resman run [flags] [NAME...]")
	require.Less(t, strings.Count(stdout, "\n"), 15, "short")
	for _, sub := range []string{"run", "check"} {
		code, _, stderr := runResman(t, ".", sub, "-h")
		require.Equal(t, 0, code)
		require.Contains(t, stderr, "Usage: resman "+sub)
		require.Contains(t, stderr, "-f string")
		require.Less(t, strings.Count(stderr, "\n"), 40, "short")
	}
	code, _, stderr := runResman(t, ".")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "Usage:")
	code, _, stderr = runResman(t, ".", "frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `unknown command "frobnicate"`)
}

// readPID waits for a PID a process wrote to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}, 20*time.Second, 5*time.Millisecond, "a PID in %s", path)
	return pid
}

func TestRunCtrlCTwiceDuringAFailureStop(t *testing.T) {
	// A failure began the stop; the stubborn process has a 60 s grace
	// period. The first SIGINT joins the stop, the second kills: exit 130.
	dir := procfile(t, "stubborn: trap '' TERM; echo $$ > pid; echo up; "+loop+"\nbad: while [ ! -s pid ]; do sleep 0.01; done; exit 5\n")
	r := startRun(t, dir, "--restart", "never", "-t", "60s")
	r.waitLine(t, `bad\.1 failed: stopping every process`)
	pid := readPID(t, filepath.Join(dir, "pid"))
	require.True(t, alive(pid))
	r.signal(t, syscall.SIGINT)
	r.waitLine(t, `SIGINT: stopping every process \(Ctrl-C again kills them now\)`)
	began := time.Now()
	r.signal(t, syscall.SIGINT)
	require.Equal(t, 130, r.exitCode(t, 10*time.Second))
	require.Less(t, time.Since(began), 5*time.Second)
	require.Contains(t, r.output(), "SIGINT again: killing every process now")
	r.requireNothingLeft(t, pid)
}

func TestRunSaysHowManyLinesWereDropped(t *testing.T) {
	// resman's stdout is not read while a process floods it: the oldest
	// lines are dropped (the process is never slowed), and resman says how
	// many; the lines printed and the lines dropped add up.
	const lines = 300000
	dir := procfile(t, fmt.Sprintf("flood: seq 1 %d; touch done\n", lines))
	cmd := exec.Command(bin, "run")
	cmd.Dir = dir
	mark := fmt.Sprintf("%s-%d-%d", t.Name(), os.Getpid(), time.Now().UnixNano())
	cmd.Env = append(os.Environ(), markerVar+"="+mark)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for _, pid := range marked(mark) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	doneFile := filepath.Join(dir, "done")
	require.Eventually(t, func() bool { _, err := os.Stat(doneFile); return err == nil }, 20*time.Second, 5*time.Millisecond,
		"the flood ran to its end with resman's stdout unread")
	out, err := io.ReadAll(stdout)
	require.NoError(t, err)
	require.NoError(t, cmd.Wait(), "exit 0: the process finished with 0")
	m := regexp.MustCompile(`flood\.1: (\d+) output lines were dropped`).FindSubmatch(out)
	require.NotNil(t, m, "resman says lines were dropped")
	dropped, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	printed := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d flood\.1 \| (\d+)$`).FindAllSubmatch(out, -1)
	require.Equal(t, lines, len(printed)+dropped, "printed + dropped")
	require.Equal(t, fmt.Sprint(lines), string(printed[len(printed)-1][1]), "the newest lines are kept")
	require.Empty(t, marked(mark))
}
