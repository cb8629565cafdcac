// Package wire holds the protobuf messages resman's remote nodes exchange.
// wire.pb.go is generated and committed; regenerate it with go generate
// (protoc 3.21.12 from Debian's protobuf-compiler, and protoc-gen-go v1.33.0:
// go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.33.0).
package wire

//go:generate protoc --go_out=. --go_opt=paths=source_relative wire.proto
