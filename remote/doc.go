// Package remote drives resman managers on other machines: a manager runs
// on each node, served over protoactor-go's own remote (gRPC), and any
// node drives the others through a [Client] with the calls of
// resman.Manager that carry plain data.
//
// # Nodes
//
// [NewNode] starts a node: an actor system of its own with the remote
// listening on [Config.Address]. A node that serves runs its manager on
// that system and calls [Node.Serve]:
//
//	node, err := remote.NewNode(remote.Config{Address: "10.0.0.5:7600", TLS: tlsConfig})
//	m, err := resman.New(resman.WithActorSystem(node.System()))
//	err = node.Serve(m)
//	defer m.Close()    // after the node's Close
//	defer node.Close()
//
// Any node drives one that serves:
//
//	c := node.Manager("10.0.0.6:7600")
//	err := c.Supervise(ctx, "web", resman.ProcessSpec{Command: []string{"./web"}})
//
// # What crosses the wire
//
// Only plain data, as protobuf messages (internal/wire, generated code
// committed): process specs and what ResourceOptions say (restart policy,
// dependencies, stop signal, grace period, TCP, HTTP and Output ready
// checks), stops, restarts, waits, status, output tails, events and
// cleanup-all. Tasks and custom resources stay local: functions do not
// travel (a Func ready check is resman.ErrInvalid). Errors keep their
// identity: errors.Is(err, resman.ErrNotRegistered) and errors.As to a
// *resman.ResourceError hold on a Client's errors as on a Manager's; an
// error that is none of resman's keeps its text only.
//
// # Security
//
// With [Config.TLS], both sides of every connection present a certificate
// and verify the other's against the configured authority (mutual TLS): a
// peer without a certificate the node trusts is refused, whichever side
// dials. Without TLS a node listens on loopback only: any other address
// is refused with resman.ErrInvalid. A peer that passed TLS may ask for
// anything a Client can (start any command as the node's user): give
// certificates only to nodes you would give a shell. A peer's malformed
// input (a message of a type the node does not know, a batch whose indexes
// point nowhere) ends that peer's connection, never the node.
//
// # Failure
//
// A Client watches the manager it drives (a remote watch): when the node
// dies, or cannot be reached within 1.5 s of the Client's creation, every
// waiting and later call fails with an error wrapping
// resman.ErrUnreachable, within 2 s — not after protoactor's 10 s of
// retries. A node that hangs, or is cut off without its connection
// failing, stops answering gRPC keepalive pings (every 10 s, 3 s to
// answer) and is unreachable after about 13 s. With [OwnedByCaller], the serving node watches the Client back
// and stops the processes it started when the Client's node terminates.
// When a serving node dies, its own host-death watcher takes its processes
// along.
//
// # Limits
//
// One Node per process at a time: the pinned protoactor-go sets gRPC's
// global logger at every remote's start, which races with a closed
// remote's last gRPC goroutines. A reply (a Status, a Tail) may take an
// eighth of [Config.MaxMessageBytes]: protoactor's endpoint writer
// batches up to eight messages into one gRPC message. A Client whose node
// went away (a remote watch saw it go) stays unreachable: ask
// [Node.Manager] again. One whose node only answered late (after 1.5 s)
// fails the calls made meanwhile and works once the answer comes.
package remote
