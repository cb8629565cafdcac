package remote_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/internal/certs"
	"github.com/resman-dev/resman/internal/proctest"
	"github.com/resman-dev/resman/remote"
)

// The /proc readings every package's tests share.
var (
	procState = proctest.State
	alive     = proctest.Alive
)

// The other node of every test is a separate OS process (testdata/node):
// two protoactor remotes in one process race under -race.
var (
	nodeBin  string      // the built testdata/node
	certDir  string      // ca.pem, node.pem, test.pem and their keys; rogue/ holds another CA's
	testTLS  *tls.Config // the test process's node's mutual TLS
	rogueDir string      // a certificate of a CA the nodes do not trust

	// shared is the test process's one node: the pinned protoactor-go sets
	// gRPC's global logger in every remote's Start, a write the race
	// detector pairs with the reads of an earlier remote's gRPC goroutines
	// (gRPC does not wait for them at Close), so a test process starts one
	// remote only. Clients with other settings run in testdata/node.
	shared *remote.Node

	// served is the manager the shared node serves, for the tests where
	// the test process is the serving side (servedManager); shut down
	// after the shared node closes.
	served     *resman.Manager
	servedOnce sync.Once
)

// servedManager makes the shared node serve a manager of its own (once
// per test process: a node serves one manager).
func servedManager(t testing.TB) *resman.Manager {
	t.Helper()
	servedOnce.Do(func() {
		m, err := resman.New(resman.WithActorSystem(shared.System()))
		require.NoError(t, err)
		require.NoError(t, shared.Serve(m))
		served = m
	})
	require.NotNil(t, served)
	return served
}

// closingM closes the shared node after the tests, twice (Close is
// idempotent), before goleak looks for what is left.
type closingM struct{ m *testing.M }

func (c closingM) Run() int {
	code := c.m.Run()
	for i := range 2 {
		if err := shared.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "Close #%d: %v\n", i+1, err)
			code = 1
		}
	}
	if served != nil {
		if err := served.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "the served manager's Close: %v\n", err)
			code = 1
		}
	}
	if _, err := shared.Manager("127.0.0.1:1").Status(context.Background()); !errors.Is(err, resman.ErrClosed) {
		fmt.Fprintf(os.Stderr, "a Client of a closed node: %v, want ErrClosed\n", err)
		code = 1
	}
	return code
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "resman-remote-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := setup(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(closingM{m}, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

func setup(dir string) error {
	nodeBin = filepath.Join(dir, "node")
	if out, err := exec.Command("go", "build", "-o", nodeBin, "./testdata/node").CombinedOutput(); err != nil {
		return fmt.Errorf("build testdata/node: %v\n%s", err, out)
	}
	certDir = filepath.Join(dir, "certs")
	rogueDir = filepath.Join(certDir, "rogue")
	if err := os.MkdirAll(rogueDir, 0o700); err != nil {
		return err
	}
	ca, err := certs.NewCA("resman test CA")
	if err != nil {
		return err
	}
	for _, name := range []string{"node", "test"} {
		n, err := ca.Issue(name)
		if err != nil {
			return err
		}
		if err := ca.Write(certDir, name, n); err != nil {
			return err
		}
	}
	if testTLS, err = certs.Load(certDir, "test"); err != nil {
		return err
	}
	rogue, err := certs.NewCA("another CA")
	if err != nil {
		return err
	}
	rn, err := rogue.Issue("test")
	if err != nil {
		return err
	}
	if err := rogue.Write(rogueDir, "test", rn); err != nil {
		return err
	}
	shared, err = remote.NewNode(remote.Config{TLS: testTLS})
	return err
}

// nodeProc is a testdata/node process.
type nodeProc struct {
	cmd   *exec.Cmd
	addr  string
	stdin io.WriteCloser
	out   *bufio.Reader
	done  chan struct{} // closed when it was reaped
}

// startNode runs testdata/node with mutual TLS (certificate "node") and the
// given flags, and waits for its address. The test's end closes its stdin
// (a graceful stop) and, if it is not gone in 10 s, SIGKILLs it.
func startNode(t testing.TB, args ...string) *nodeProc {
	t.Helper()
	cmd := exec.Command(nodeBin, append([]string{"-certs", certDir, "-name", "node"}, args...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &nodeProc{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout), done: make(chan struct{})}
	// Owned by the test: reaps the node.
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	line := p.line(t)
	addr, ok := strings.CutPrefix(line, "addr ")
	require.Truef(t, ok, "node printed %q", line)
	p.addr = addr
	return p
}

// line reads the node's next line of stdout.
func (p *nodeProc) line(t testing.TB) string {
	t.Helper()
	s, err := p.out.ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSpace(s)
}

// kill SIGKILLs the node and waits until it is reaped.
func (p *nodeProc) kill(t testing.TB) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done
}

// client returns a Client of a fresh testdata/node.
func client(t testing.TB, args ...string) (*remote.Client, *nodeProc) {
	t.Helper()
	p := startNode(t, args...)
	return shared.Manager(p.addr), p
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sleeper() resman.ProcessSpec {
	return resman.ProcessSpec{Command: []string{"sleep", "1000"}}
}

// requireGoneSoon waits (bounded) until none of pids is alive.
func requireGoneSoon(t testing.TB, within time.Duration, pids ...int) {
	t.Helper()
	require.Eventuallyf(t, func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	}, within, 5*time.Millisecond, "pids %v survived", pids)
}

// pidsOf returns the PIDs of a status's processes, each non-zero.
func pidsOf(t testing.TB, st resman.Status) []int {
	t.Helper()
	var pids []int
	for _, p := range st.Processes {
		require.NotZero(t, p.PID, p.Key)
		pids = append(pids, p.PID)
	}
	return pids
}

// requireGone asserts that none of pids is alive now.
func requireGone(t testing.TB, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		require.Falsef(t, alive(pid), "pid %d survived (state %q)", pid, procState(pid))
	}
}

// runNode runs testdata/node to its end with exactly args (no default
// certificates) and returns its stdout, trimmed.
func runNode(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, args...)
	cmd.Stdin = strings.NewReader("")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

// unreachableWithin asserts that a -status line says unreachable within d.
func unreachableWithin(t testing.TB, line string, d time.Duration) {
	t.Helper()
	f := strings.Fields(line)
	require.GreaterOrEqualf(t, len(f), 3, "line %q", line)
	require.Equalf(t, []string{"err", "unreachable"}, f[:2], "line %q", line)
	ms, err := strconv.Atoi(f[2])
	require.NoError(t, err)
	require.LessOrEqualf(t, time.Duration(ms)*time.Millisecond, d, "line %q", line)
}
