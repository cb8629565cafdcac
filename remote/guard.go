package remote

import (
	"context"
	"fmt"

	premote "github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// The pinned protoactor-go trusts its peers: its endpoint reader indexes a
// batch's type names, targets and senders by what the peer says, and its
// protobuf serializer dereferences nil for a type name it does not know; its
// unary methods panic("implement me"). Any of these, from a peer that passed
// mutual TLS but is buggy or of another version, would crash the node: a
// panic in a gRPC handler ends the process. The interceptors below check
// each batch before protoactor reads it and end that peer's stream (never the
// node) on anything it could not handle, and recover what slips through.

// guardStream wraps protoactor's Receive stream.
func guardStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = status.Errorf(codes.Internal, "resman: remote: %s: %v", info.FullMethod, p)
		}
	}()
	return handler(srv, &checkedStream{ServerStream: ss})
}

// guardUnary refuses protoactor's unimplemented unary methods.
func guardUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, status.Errorf(codes.Unimplemented, "resman: remote: %s", info.FullMethod)
		}
	}()
	return handler(ctx, req)
}

type checkedStream struct{ grpc.ServerStream }

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	msg, ok := m.(*premote.RemoteMessage)
	if !ok {
		return nil
	}
	if b := msg.GetMessageBatch(); b != nil {
		if err := checkBatch(b); err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
	}
	return nil
}

// checkBatch refuses a batch protoactor's endpoint reader would crash on.
func checkBatch(b *premote.MessageBatch) error {
	for i, name := range b.TypeNames {
		if _, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name)); err != nil {
			return fmt.Errorf("resman: remote: batch type %d: unknown message type %q", i, name)
		}
	}
	for i, t := range b.Targets {
		if t == nil {
			return fmt.Errorf("resman: remote: batch target %d is nil", i)
		}
	}
	for i, s := range b.Senders {
		if s == nil {
			return fmt.Errorf("resman: remote: batch sender %d is nil", i)
		}
	}
	for i, e := range b.Envelopes {
		switch {
		case e == nil:
			return fmt.Errorf("resman: remote: envelope %d is nil", i)
		case e.TypeId < 0 || int(e.TypeId) >= len(b.TypeNames):
			return fmt.Errorf("resman: remote: envelope %d: type %d out of range", i, e.TypeId)
		case e.Target < 0 || int(e.Target) >= len(b.Targets):
			return fmt.Errorf("resman: remote: envelope %d: target %d out of range", i, e.Target)
		case e.Sender < 0 || int(e.Sender) > len(b.Senders):
			return fmt.Errorf("resman: remote: envelope %d: sender %d out of range", i, e.Sender)
		case e.SerializerId != 0:
			return fmt.Errorf("resman: remote: envelope %d: serializer %d (only protobuf, 0, is used)", i, e.SerializerId)
		}
	}
	return nil
}
