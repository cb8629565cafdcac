package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	premote "github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/internal/hooks"
)

// DefaultMaxMessageBytes is Config.MaxMessageBytes's default: 64 MiB.
const DefaultMaxMessageBytes = 64 << 20

// writerBatch is how many messages protoactor's endpoint writer puts in one
// gRPC message. A single message may take up to MaxMessageBytes/writerBatch
// (less a little for the envelope), so that a whole batch stays within the
// gRPC limit on the receiving side.
const writerBatch = 8

// envelopeSlack is what a message's envelope (type name, target, sender,
// header) may add to its bytes in a batch, kept free under each share.
const envelopeSlack = 16 << 10

// Keepalive of every connection a node dials: gRPC's shortest allowed
// ping interval, and how long a ping may go unanswered.
const (
	keepaliveTime    = 10 * time.Second
	keepaliveTimeout = 3 * time.Second
)

// helloTimeout bounds how long a Client waits for the first answer of its
// node before it calls it unreachable: protoactor's endpoint writer retries
// a dial for 2 s per attempt, the contract says 2 s.
const helloTimeout = 1500 * time.Millisecond

// The node's actors: one guardian, whose children are the serving actor,
// every Client's actor and every subscriber. Stopping the guardian waits
// for them all, down to their last remote notice, before the remote stops.
const (
	guardianName = "resman-node"
	serverName   = guardianName + "/server" // the serving actor's id on every node
)

// Config configures a Node. The zero value listens on 127.0.0.1, any port,
// without TLS.
type Config struct {
	// Address is the listen address, host:port; default "127.0.0.1:0". An
	// address that is not loopback ("", "0.0.0.0", a LAN address, a host
	// name other than localhost) needs TLS.
	Address string
	// TLS is the node's mutual TLS, for the server and the client side
	// alike: Certificates holds this node's certificate (with both
	// ServerAuth and ClientAuth key usages), RootCAs the authority that
	// signs its peers' (ClientCAs, if nil, is RootCAs, and the other way
	// round). The node always requires and verifies a peer's certificate,
	// whatever ClientAuth says. NewNode refuses (ErrInvalid) a config
	// without a certificate, without an authority, or whose certificate
	// lacks one of the two key usages. Nil: no TLS, loopback only.
	TLS *tls.Config
	// MaxMessageBytes bounds one gRPC message on the wire; default
	// DefaultMaxMessageBytes (gRPC's own 4 MiB drops the connection on a
	// big Status). One reply (a Status, a Tail) may take an eighth of it:
	// protoactor batches up to eight messages into one gRPC message. A
	// reply over that is refused with an error wrapping resman.ErrInvalid,
	// and so is a request. Give every node the same value: a node receives
	// up to its own MaxMessageBytes in one gRPC message, and a peer with a
	// bigger one could send more (the connection would then fail). Below
	// 1 MiB is ErrInvalid.
	MaxMessageBytes int
}

// Node is one machine's end of resman's remote: an actor system of its own
// with protoactor's remote (gRPC) started on Address. Serve lets peers drive
// a Manager running on it; Manager drives one served elsewhere.
type Node struct {
	system  *actor.ActorSystem
	remote  *premote.Remote
	address string
	limit   int // the most bytes one reply or request may take
	guard   *actor.PID

	done chan struct{} // closed by Close

	mu      sync.Mutex // guards the fields below
	closed  bool
	serving *server // once Serve

	closeOnce sync.Once
}

// NewNode starts a node: an actor system of its own, with protoactor's
// remote listening on cfg.Address. Bad configuration (an address that is not
// host:port, a non-loopback address without TLS, a MaxMessageBytes under
// 1 MiB) is resman.ErrInvalid; nothing is left running then.
func NewNode(cfg Config) (*Node, error) {
	addr := cfg.Address
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("resman: remote: address %q: %w", addr, errors.Join(resman.ErrInvalid, err))
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("resman: remote: address %q: bad port: %w", addr, resman.ErrInvalid)
	}
	if cfg.TLS == nil && !loopback(host) {
		return nil, fmt.Errorf("resman: remote: address %q is not loopback and Config.TLS is nil: %w", addr, resman.ErrInvalid)
	}
	if cfg.TLS != nil {
		if err := checkTLS(cfg.TLS); err != nil {
			return nil, fmt.Errorf("resman: remote: Config.TLS: %w", err)
		}
	}
	max := cfg.MaxMessageBytes
	if max == 0 {
		max = DefaultMaxMessageBytes
	}
	if max < 1<<20 {
		return nil, fmt.Errorf("resman: remote: MaxMessageBytes %d is under 1 MiB: %w", cfg.MaxMessageBytes, resman.ErrInvalid)
	}

	serverOpts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(max),
		grpc.MaxSendMsgSize(max),
		grpc.StreamInterceptor(guardStream),
		grpc.UnaryInterceptor(guardUnary),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveTime / 2, PermitWithoutStream: true}),
	}
	dialOpts := []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(max), grpc.MaxCallSendMsgSize(max)),
		// A peer that hangs or is cut off without its connection failing
		// (no RST, no FIN) stops answering pings: its connection is then
		// dropped, which protoactor reports as the endpoint terminated.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: keepaliveTime, Timeout: keepaliveTimeout, PermitWithoutStream: true}),
	}
	if cfg.TLS != nil {
		sc, cc := tlsConfigs(cfg.TLS)
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(sc)))
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(credentials.NewTLS(cc)))
	} else {
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	rc := premote.Configure(host, port,
		premote.WithServerOptions(serverOpts...),
		premote.WithDialOptions(dialOpts...),
		premote.WithEndpointWriterBatchSize(writerBatch),
	)
	// One dial attempt per endpoint: a Client calls a node unreachable
	// within helloTimeout anyway, and the next message dials afresh.
	rc.MaxRetryCount = 1

	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
	)
	r := premote.NewRemote(system, rc)
	if err := start(r); err != nil {
		system.Shutdown()
		return nil, fmt.Errorf("resman: remote: listen on %q: %w", addr, err)
	}
	guard, err := system.Root.SpawnNamed(actor.PropsFromFunc(guardian), guardianName)
	if err != nil {
		r.Shutdown(true)
		system.Shutdown()
		return nil, fmt.Errorf("resman: remote: %w", err)
	}
	return &Node{
		system:  system,
		remote:  r,
		address: system.Address(),
		limit:   max/writerBatch - envelopeSlack,
		guard:   guard,
		done:    make(chan struct{}),
	}, nil
}

// spawnChild asks the guardian to spawn a child.
type spawnChild struct {
	props *actor.Props
	name  string // "": a generated one
	reply chan spawned
}

type spawned struct {
	pid *actor.PID
	err error
}

func guardian(ctx actor.Context) {
	if m, ok := ctx.Message().(*spawnChild); ok {
		var r spawned
		if m.name == "" {
			r.pid = ctx.Spawn(m.props)
		} else {
			r.pid, r.err = ctx.SpawnNamed(m.props, m.name)
		}
		m.reply <- r
	}
}

// spawn spawns a child of the guardian; the caller holds n.mu and has
// checked that the node is open.
func (n *Node) spawn(props *actor.Props, name string) (*actor.PID, error) {
	reply := make(chan spawned, 1)
	n.system.Root.Send(n.guard, &spawnChild{props: props, name: name, reply: reply})
	r := <-reply
	return r.pid, r.err
}

// start runs Remote.Start, which panics when it cannot listen.
func start(r *premote.Remote) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	r.Start()
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkTLS refuses a config that cannot do mutual TLS between nodes: no
// certificate, no authority to verify peers with (the system's roots would
// do), or a certificate without both ServerAuth and ClientAuth (a node
// dials and is dialed: the peer would refuse it one way).
func checkTLS(c *tls.Config) error {
	if c.RootCAs == nil && c.ClientCAs == nil {
		return fmt.Errorf("%w: no RootCAs or ClientCAs to verify peers with", resman.ErrInvalid)
	}
	if len(c.Certificates) == 0 {
		if c.GetCertificate != nil || c.GetClientCertificate != nil {
			return nil // the caller picks certificates at handshake time
		}
		return fmt.Errorf("%w: no certificate", resman.ErrInvalid)
	}
	leaf := c.Certificates[0].Leaf
	if leaf == nil {
		if len(c.Certificates[0].Certificate) == 0 {
			return fmt.Errorf("%w: an empty certificate", resman.ErrInvalid)
		}
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificates[0].Certificate[0]); err != nil {
			return fmt.Errorf("%w: %v", resman.ErrInvalid, err)
		}
	}
	if len(leaf.ExtKeyUsage) == 0 {
		return nil // no restriction: good for both
	}
	server, client := false, false
	for _, u := range leaf.ExtKeyUsage {
		server = server || u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny
		client = client || u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny
	}
	if !server || !client {
		return fmt.Errorf("%w: the certificate %q needs both ServerAuth and ClientAuth key usages (a node dials and is dialed)", resman.ErrInvalid, leaf.Subject.CommonName)
	}
	return nil
}

// tlsConfigs returns the server and the client side of a mutual TLS
// config: both present the node's certificate, both verify the peer's.
func tlsConfigs(c *tls.Config) (server, client *tls.Config) {
	server, client = c.Clone(), c.Clone()
	if server.ClientCAs == nil {
		server.ClientCAs = c.RootCAs
	}
	server.ClientAuth = tls.RequireAndVerifyClientCert
	if client.RootCAs == nil {
		client.RootCAs = c.ClientCAs
	}
	if server.MinVersion < tls.VersionTLS12 {
		server.MinVersion = tls.VersionTLS12
	}
	if client.MinVersion < tls.VersionTLS12 {
		client.MinVersion = tls.VersionTLS12
	}
	return server, client
}

// System returns the node's actor system: pass it to
// resman.New(resman.WithActorSystem(n.System())) for a manager to Serve.
func (n *Node) System() *actor.ActorSystem { return n.system }

// Address returns the host:port the node listens on, its port resolved.
func (n *Node) Address() string { return n.address }

// Serve lets peers drive m: Supervise, StopProcess, RestartProcess,
// WaitProcess, Status, Tail, CleanupAll and events. m must run on
// n.System() (else ErrInvalid); a node serves one manager (a second Serve
// is ErrInvalid); after Close, ErrClosed. Closing the node does not shut m
// down: the caller does, after Close.
func (n *Node) Serve(m *resman.Manager) error {
	if m == nil || hooks.ActorSystem(m) != n.system {
		return fmt.Errorf("resman: remote: serve: the manager does not run on the node's actor system: %w", resman.ErrInvalid)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("resman: remote: serve: %w", resman.ErrClosed)
	}
	if n.serving != nil {
		return fmt.Errorf("resman: remote: serve: the node serves a manager already: %w", resman.ErrInvalid)
	}
	s := newServer(n, m)
	if _, err := n.spawn(actor.PropsFromProducer(func() actor.Actor { return s }), "server"); err != nil {
		return fmt.Errorf("resman: remote: serve: %w", err)
	}
	n.serving = s
	return nil
}

// Manager returns a Client of the manager that the node at address
// (host:port; else every call is ErrInvalid) serves. It connects at once.
// If the node does not answer within 1.5 s, calls fail with
// resman.ErrUnreachable until it does (a late answer revives the Client).
// Once the node is gone (a remote watch sees it go, or the endpoint cannot
// deliver), every call fails with resman.ErrUnreachable from then on: ask
// Manager again for a new Client.
// With OwnedByCaller, the serving node stops every process this Client
// started when this node terminates (Close, or its process dies).
func (n *Node) Manager(address string, opts ...ClientOption) *Client {
	var co clientOptions
	for _, o := range opts {
		if o != nil {
			o(&co)
		}
	}
	c := &Client{node: n, address: address, owned: co.owned}
	if _, _, err := net.SplitHostPort(address); err != nil {
		c.bad = fmt.Errorf("%w: address %q: %v", resman.ErrInvalid, address, err)
		return c
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return c // every call: ErrClosed
	}
	a := &clientActor{server: actor.NewPID(address, serverName), pending: map[uint64]*call{}}
	c.pid, _ = n.spawn(actor.PropsFromProducer(func() actor.Actor { return a }), "")
	return c
}

// Close stops serving, ends every Client of this node (their calls return
// resman.ErrClosed), stops protoactor's remote (peers see this node go) and
// the actor system. The served manager keeps running: shut it down after.
// Close is idempotent. It may take about 2 s when a peer that drove or
// subscribed to this node is gone already: protoactor dials it once to
// tell it this node's actors stopped, and waits 2 s after the failed dial.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		serving := n.serving
		n.mu.Unlock()
		close(n.done)
		_ = n.system.Root.StopFuture(n.guard).Wait()
		if serving != nil {
			serving.wait()
		}
		// Not Remote.Shutdown(true): its endpoint manager's stop writes
		// fields that goroutines of protoactor's own (a lost connection's
		// reader) read without synchronisation, a data race. The gRPC
		// server's hard stop ends every peer's stream (peers see this node
		// terminate, as on a graceful stop); stopping the endpoint
		// supervisor closes the connections this node dialed.
		n.remote.Shutdown(false)
		for _, name := range []string{"EndpointSupervisor", "activator"} {
			_ = n.system.Root.StopFuture(actor.NewPID(n.address, name)).Wait()
		}
		n.system.Shutdown()
	})
	return nil
}

// ClientOption configures a Client.
type ClientOption func(*clientOptions)

type clientOptions struct {
	owned bool
}

// OwnedByCaller makes the serving node stop every process this Client
// supervised there when the Client's node terminates: Erlang's link across
// nodes, the remote counterpart of the host-death watcher. The serving node
// learns it by a remote watch: a node SIGKILLed, or closed, is seen at
// once; one hung or cut off by the network after about 13 s (keepalive).
// The serving node keeps the keys: a key stopped through any Client (or
// CleanupAll) is forgotten, but one stopped by the serving program itself
// and supervised again under the same key by someone else would still be
// stopped with the owner.
func OwnedByCaller() ClientOption {
	return func(o *clientOptions) { o.owned = true }
}
