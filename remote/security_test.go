package remote_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	premote "github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/remote/internal/wire"
)

// TestMutualTLS: a peer with a certificate of the nodes' CA is accepted;
// one with another CA's, one without TLS and one without a certificate are
// refused (ErrUnreachable within 2 s), and so is a server the client does
// not trust. Nothing they asked for ran.
func TestMutualTLS(t *testing.T) {
	c, p := client(t)
	ctx := ctxT(t)
	require.NoError(t, c.Supervise(ctx, "a", sleeper())) // accepted

	// A client node whose certificate another CA signed.
	unreachableWithin(t, runNode(t, "-certs", rogueDir, "-name", "test", "-status", p.addr), 2*time.Second)
	// A client node without TLS (loopback).
	unreachableWithin(t, runNode(t, "-status", p.addr), 2*time.Second)
	// A server whose certificate another CA signed: this node refuses it.
	rogue := startNode(t, "-certs", rogueDir, "-name", "test")
	start := time.Now()
	_, err := shared.Manager(rogue.addr).Status(ctx)
	require.ErrorIs(t, err, resman.ErrUnreachable)
	require.LessOrEqual(t, time.Since(start), 2*time.Second)

	// TLS without a client certificate: the handshake ends in an alert.
	conn, err := tls.Dial("tcp", p.addr, &tls.Config{RootCAs: testTLS.RootCAs, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS13})
	if err == nil {
		require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
		if err == nil {
			_, err = io.ReadAll(conn)
		}
		_ = conn.Close()
	}
	require.Error(t, err)
	require.NotContains(t, err.Error(), "timeout")

	st, err := c.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Processes, 1)
	require.Equal(t, "a", st.Processes[0].Key)
}

// TestNodeSurvivesBadInput: garbage on the port, a message of a type the
// node does not know, batches whose indexes point nowhere, a serializer it
// does not use, malformed bytes of a known type and protoactor's
// unimplemented unary methods: the peer's stream ends, the node serves on.
func TestNodeSurvivesBadInput(t *testing.T) {
	c, p := client(t)
	ctx := ctxT(t)
	require.NoError(t, c.Supervise(ctx, "a", sleeper()))
	before, err := c.Status(ctx)
	require.NoError(t, err)

	// Garbage on the raw port, and garbage after a good handshake.
	garbage := make([]byte, 64<<10)
	_, _ = rand.Read(garbage)
	raw, err := net.Dial("tcp", p.addr)
	require.NoError(t, err)
	_, _ = raw.Write(garbage)
	require.NoError(t, raw.Close())
	tc, err := tls.Dial("tcp", p.addr, testTLS.Clone())
	require.NoError(t, err)
	_, _ = tc.Write(garbage)
	_ = tc.Close() // the node may have dropped it already: the alert then fails

	// protoactor's own protocol, spoken badly by a peer with a good certificate.
	conn, err := grpc.Dial(p.addr, grpc.WithTransportCredentials(credentials.NewTLS(testTLS.Clone())))
	require.NoError(t, err)
	defer conn.Close()
	rc := premote.NewRemotingClient(conn)
	target := &actor.PID{Address: p.addr, Id: "resman-node/server"}
	hello, err := proto.Marshal(&wire.Request{Id: 1, Op: &wire.Request_Hello{Hello: &wire.Hello{}}})
	require.NoError(t, err)
	batches := map[string]*premote.MessageBatch{
		"unknown type": {TypeNames: []string{"no.such.Type"}, Targets: []*actor.PID{target},
			Envelopes: []*premote.MessageEnvelope{{TypeId: 0, Target: 0, MessageData: []byte{1, 2, 3}}}},
		"type index": {TypeNames: []string{"resman.remote.v1.Request"}, Targets: []*actor.PID{target},
			Envelopes: []*premote.MessageEnvelope{{TypeId: 7, Target: 0, MessageData: hello}}},
		"target index": {TypeNames: []string{"resman.remote.v1.Request"}, Targets: []*actor.PID{target},
			Envelopes: []*premote.MessageEnvelope{{TypeId: 0, Target: 3, MessageData: hello}}},
		"sender index": {TypeNames: []string{"resman.remote.v1.Request"}, Targets: []*actor.PID{target},
			Envelopes: []*premote.MessageEnvelope{{TypeId: 0, Target: 0, Sender: 5, MessageData: hello}}},
		"serializer": {TypeNames: []string{"resman.remote.v1.Request"}, Targets: []*actor.PID{target},
			Envelopes: []*premote.MessageEnvelope{{TypeId: 0, Target: 0, SerializerId: 9, MessageData: hello}}},
		"malformed": {TypeNames: []string{"resman.remote.v1.Request"}, Targets: []*actor.PID{target},
			Envelopes: []*premote.MessageEnvelope{{TypeId: 0, Target: 0, MessageData: []byte{0xff, 0xff, 0xff}}}},
	}
	for name, b := range batches {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		stream, err := rc.Receive(sctx)
		require.NoError(t, err, name)
		require.NoError(t, stream.Send(&premote.RemoteMessage{MessageType: &premote.RemoteMessage_ConnectRequest{
			ConnectRequest: &premote.ConnectRequest{ConnectionType: &premote.ConnectRequest_ServerConnection{
				ServerConnection: &premote.ServerConnection{SystemId: "bad-peer", Address: "127.0.0.1:1"}}}}}), name)
		_, err = stream.Recv() // the connect response
		require.NoError(t, err, name)
		require.NoError(t, stream.Send(&premote.RemoteMessage{MessageType: &premote.RemoteMessage_MessageBatch{MessageBatch: b}}), name)
		_, err = stream.Recv()
		require.Error(t, err, name)
		require.NotEqual(t, codes.DeadlineExceeded, status.Code(err), name)
		cancel()
	}
	// Messages the node knows but its server does not expect: ignored.
	stream, err := rc.Receive(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&premote.RemoteMessage{MessageType: &premote.RemoteMessage_ConnectRequest{
		ConnectRequest: &premote.ConnectRequest{ConnectionType: &premote.ConnectRequest_ServerConnection{
			ServerConnection: &premote.ServerConnection{SystemId: "odd-peer", Address: "127.0.0.1:1"}}}}}))
	_, err = stream.Recv()
	require.NoError(t, err)
	eventBytes, err := proto.Marshal(&wire.Event{Key: "x"})
	require.NoError(t, err)
	require.NoError(t, stream.Send(&premote.RemoteMessage{MessageType: &premote.RemoteMessage_MessageBatch{MessageBatch: &premote.MessageBatch{
		TypeNames: []string{"resman.remote.v1.Event", "resman.remote.v1.Request"}, Targets: []*actor.PID{target},
		Envelopes: []*premote.MessageEnvelope{{TypeId: 0, Target: 0, MessageData: eventBytes}, {TypeId: 1, Target: 0, MessageData: hello}},
	}}}))
	require.NoError(t, stream.CloseSend())

	// The unary methods protoactor leaves unimplemented (they panic there).
	_, err = rc.ListProcesses(ctx, &premote.ListProcessesRequest{})
	require.Equal(t, codes.Unimplemented, status.Code(err))
	_, err = rc.GetProcessDiagnostics(ctx, &premote.GetProcessDiagnosticsRequest{})
	require.Equal(t, codes.Unimplemented, status.Code(err))

	// The node serves on, its process untouched.
	after, err := c.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, before.Processes[0].PID, after.Processes[0].PID)
	require.True(t, alive(after.Processes[0].PID))
	require.NoError(t, c.StopProcess(ctx, "a"))
}
