package remote_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/internal/certs"
	"github.com/resman-dev/resman/remote"
)

// TestNodeKilledIsUnreachable: a node SIGKILLed is seen by the remote
// watch; a call waiting on it and every later call fail with
// ErrUnreachable within 2 s, and the node's processes are gone.
func TestNodeKilledIsUnreachable(t *testing.T) {
	c, p := client(t)
	ctx := ctxT(t)
	require.NoError(t, c.Supervise(ctx, "a", sleeper()))
	require.NoError(t, c.Supervise(ctx, "tree", resman.ProcessSpec{Command: []string{"sh", "-c", "sleep 1000 & exec sleep 1000"}}))
	st, err := c.Status(ctx)
	require.NoError(t, err)
	pids := pidsOf(t, st)

	waitErr := make(chan error, 1)
	// Owned by the test: a WaitProcess pending when the node dies.
	go func() {
		_, err := c.WaitProcess(ctx, "a")
		waitErr <- err
	}()
	tail, err := c.Tail(ctx, "a", 1) // a round trip after the wait was sent: it is on the node
	require.NoError(t, err)
	require.Empty(t, tail)

	start := time.Now()
	p.kill(t)
	select {
	case err := <-waitErr:
		require.ErrorIs(t, err, resman.ErrUnreachable)
		var re *resman.ResourceError
		require.ErrorAs(t, err, &re)
		require.Equal(t, "a", re.Key)
		require.Equal(t, "wait", re.Op)
	case <-time.After(5 * time.Second):
		t.Fatal("WaitProcess still waits 5 s after the node died")
	}
	require.LessOrEqual(t, time.Since(start), 2*time.Second)

	start = time.Now()
	_, err = c.Status(ctx)
	require.ErrorIs(t, err, resman.ErrUnreachable)
	require.ErrorIs(t, c.StopProcess(ctx, "a"), resman.ErrUnreachable)
	require.Less(t, time.Since(start), 100*time.Millisecond)

	// The node's host-death watcher took its processes along, the
	// background child of "tree" included.
	requireGoneSoon(t, 5*time.Second, pids...)
}

// TestHungNodeIsUnreachable: a node that stops answering (SIGSTOP: its
// connections stay open) is seen by the keepalive pings; a call waiting on
// it fails with ErrUnreachable.
func TestHungNodeIsUnreachable(t *testing.T) {
	c, p := client(t)
	ctx := ctxT(t)
	require.NoError(t, c.Supervise(ctx, "a", sleeper()))
	waitErr := make(chan error, 1)
	// Owned by the test: a WaitProcess pending when the node hangs.
	go func() {
		_, err := c.WaitProcess(ctx, "a")
		waitErr <- err
	}()
	_, err := c.Status(ctx) // a round trip after the wait was sent
	require.NoError(t, err)

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = p.cmd.Process.Signal(syscall.SIGCONT) })
	start := time.Now()
	select {
	case err := <-waitErr:
		require.ErrorIs(t, err, resman.ErrUnreachable)
	case <-time.After(30 * time.Second):
		t.Fatal("WaitProcess still waits 30 s after the node hung")
	}
	t.Logf("seen after %v", time.Since(start))
	require.Less(t, time.Since(start), 20*time.Second)
	_, err = c.Status(ctx)
	require.ErrorIs(t, err, resman.ErrUnreachable)
}

// TestLateNodeIsReachableOnceItAnswers: a node that answers the Client's
// first call late (here: stopped while the Client connects) is unreachable
// meanwhile, fast, and reachable once it answers; a slow handshake on a
// loaded machine does not make a Client useless.
func TestLateNodeIsReachableOnceItAnswers(t *testing.T) {
	p := startNode(t)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGSTOP))
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = p.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	c := shared.Manager(p.addr)
	start := time.Now()
	_, err := c.Status(ctxT(t))
	require.ErrorIs(t, err, resman.ErrUnreachable)
	require.LessOrEqual(t, time.Since(start), 2*time.Second)

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGCONT))
	resumed = true
	require.Eventually(t, func() bool {
		_, err := c.Status(ctxT(t))
		return err == nil
	}, 20*time.Second, 10*time.Millisecond, "reachable once the node answers")
}

// TestDownNodeIsUnreachable: a node that is not there fails a call within
// 2 s (protoactor's endpoint would retry for 10 s).
func TestDownNodeIsUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	c := shared.Manager(addr)
	start := time.Now()
	err = c.Supervise(ctxT(t), "a", sleeper())
	require.ErrorIs(t, err, resman.ErrUnreachable)
	require.LessOrEqual(t, time.Since(start), 2*time.Second)
	_, err = c.WaitProcess(ctxT(t), "a")
	require.ErrorIs(t, err, resman.ErrUnreachable)
	stop, err := c.Subscribe(ctxT(t), func(resman.Event) {})
	require.ErrorIs(t, err, resman.ErrUnreachable)
	require.Nil(t, stop)
	_, err = c.Subscribe(ctxT(t), nil)
	require.ErrorIs(t, err, resman.ErrInvalid)
}

// TestOwnedByCaller: what a client node started with OwnedByCaller is
// stopped when that node is SIGKILLed; what other clients started stays,
// and so does what a client without the option started.
func TestOwnedByCaller(t *testing.T) {
	c, srv := client(t)
	ctx := ctxT(t)
	require.NoError(t, c.Supervise(ctx, "mine", sleeper()))
	owner := startNode(t, "-drive", srv.addr, "-n", "3", "-prefix", "owned-")
	require.Equal(t, "ready", owner.line(t))
	plain := startNode(t, "-drive", srv.addr, "-n", "1", "-prefix", "plain-", "-owned=false")
	require.Equal(t, "ready", plain.line(t))

	pidOf := func() map[string]int {
		st, err := c.Status(ctx)
		require.NoError(t, err)
		m := map[string]int{}
		for _, p := range st.Processes {
			m[p.Key] = p.PID
		}
		return m
	}
	before := pidOf()
	require.Len(t, before, 5, "%v", before)

	owner.kill(t)
	plain.kill(t)
	require.Eventually(t, func() bool { return len(pidOf()) == 2 }, 5*time.Second, 10*time.Millisecond)
	after := pidOf()
	require.Equal(t, before["mine"], after["mine"])
	require.Equal(t, before["plain-0"], after["plain-0"])
	require.True(t, alive(after["mine"]))
	require.True(t, alive(after["plain-0"]))
	requireGone(t, before["owned-0"], before["owned-1"], before["owned-2"])
}

// TestOwnedByCallerOnClose: a client node that closes (gracefully) also
// takes its owned processes along.
func TestOwnedByCallerOnClose(t *testing.T) {
	c, srv := client(t)
	ctx := ctxT(t)
	owner := startNode(t, "-drive", srv.addr, "-n", "2")
	require.Equal(t, "ready", owner.line(t))
	st, err := c.Status(ctx)
	require.NoError(t, err)
	pids := pidsOf(t, st)
	require.Len(t, pids, 2)
	require.NoError(t, owner.stdin.Close())
	<-owner.done
	require.Eventually(t, func() bool {
		st, err := c.Status(ctx)
		return err == nil && len(st.Processes) == 0
	}, 5*time.Second, 10*time.Millisecond)
	requireGone(t, pids...)
}

// TestNodeConfigChecks: bad configuration is ErrInvalid before anything
// listens; a port in use is an error, not a panic.
func TestNodeConfigChecks(t *testing.T) {
	for _, cfg := range []remote.Config{
		{Address: "0.0.0.0:0"},
		{Address: ":0"},
		{Address: "192.0.2.1:7000"},
		{Address: "example.com:7000"},
		{Address: "nope"},
		{Address: "127.0.0.1:99999"},
		{Address: "127.0.0.1:x"},
		{MaxMessageBytes: 1000},
		{MaxMessageBytes: -1},
	} {
		n, err := remote.NewNode(cfg)
		require.ErrorIsf(t, err, resman.ErrInvalid, "%+v", cfg)
		require.Nil(t, n)
	}

	// TLS that cannot do mutual TLS between nodes.
	ca, err := certs.NewCA("ca")
	require.NoError(t, err)
	serverOnly, err := ca.IssueFor("server-only", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
	require.NoError(t, err)
	serverOnlyTLS, err := ca.Config(serverOnly)
	require.NoError(t, err)
	noCA := testTLS.Clone()
	noCA.RootCAs, noCA.ClientCAs = nil, nil
	noCert := testTLS.Clone()
	noCert.Certificates = nil
	for name, c := range map[string]*tls.Config{"server-only certificate": serverOnlyTLS, "no CA": noCA, "no certificate": noCert} {
		n, err := remote.NewNode(remote.Config{TLS: c})
		require.ErrorIs(t, err, resman.ErrInvalid, name)
		require.Nil(t, n, name)
	}

	// A Client of an address that is not host:port.
	bad := shared.Manager("nope")
	require.ErrorIs(t, bad.Supervise(ctxT(t), "a", sleeper()), resman.ErrInvalid)
	_, err = bad.Status(ctxT(t))
	require.ErrorIs(t, err, resman.ErrInvalid)
	_, err = bad.Subscribe(ctxT(t), func(resman.Event) {})
	require.ErrorIs(t, err, resman.ErrInvalid)

	// A port in use (the shared node's), in a process of its own.
	cmd := exec.Command(nodeBin, "-certs", certDir, "-addr", shared.Address())
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 1, exit.ExitCode())
	require.Contains(t, string(out), "address already in use")
}

// TestServeChecks: Serve wants a manager on the node's own actor system,
// once.
func TestServeChecks(t *testing.T) {
	m, err := resman.New()
	require.NoError(t, err)
	defer m.Close()
	require.ErrorIs(t, shared.Serve(m), resman.ErrInvalid)
	require.ErrorIs(t, shared.Serve(nil), resman.ErrInvalid)

	// A node that serves no manager: a Client of it is unreachable.
	p := startNode(t, "-serve=false")
	start := time.Now()
	_, err = shared.Manager(p.addr).Status(ctxT(t))
	require.ErrorIs(t, err, resman.ErrUnreachable)
	require.LessOrEqual(t, time.Since(start), 2*time.Second)
}

// callGoroutines counts the serving node's call goroutines in this process.
func callGoroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "remote.(*server).request.func")
}

// TestDeadClientsCallsAreCancelled: when a client's node dies, the calls it
// left waiting on the serving node (here the test process) are cancelled,
// not left to wait as long as the process runs; what it started without
// OwnedByCaller stays.
func TestDeadClientsCallsAreCancelled(t *testing.T) {
	m := servedManager(t)
	ctx := ctxT(t)
	driver := startNode(t, "-drive", shared.Address(), "-n", "1", "-owned=false", "-prefix", "dead-client-", "-wait")
	require.Equal(t, "ready", driver.line(t))
	require.Eventually(t, func() bool { return callGoroutines() == 1 }, 5*time.Second, 5*time.Millisecond)

	driver.kill(t)
	require.Eventually(t, func() bool { return callGoroutines() == 0 }, 5*time.Second, 5*time.Millisecond)
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Processes, 1)
	require.True(t, alive(st.Processes[0].PID))
	require.NoError(t, m.StopProcess(ctx, "dead-client-0"))
	requireGone(t, st.Processes[0].PID)
}

// TestCancelledCallEndsOnTheNode: a caller whose context ends stops the
// call on the serving node too (here the test process serving itself).
func TestCancelledCallEndsOnTheNode(t *testing.T) {
	m := servedManager(t)
	ctx := ctxT(t)
	c := shared.Manager(shared.Address())
	require.NoError(t, c.Supervise(ctx, "cancel-me", sleeper()))
	short, cancel := context.WithCancel(ctx)
	waitErr := make(chan error, 1)
	// Owned by the test: a WaitProcess to cancel.
	go func() {
		_, err := c.WaitProcess(short, "cancel-me")
		waitErr <- err
	}()
	require.Eventually(t, func() bool { return callGoroutines() == 1 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-waitErr, context.Canceled)
	require.Eventually(t, func() bool { return callGoroutines() == 0 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, c.StopProcess(ctx, "cancel-me"))
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Processes)
}
