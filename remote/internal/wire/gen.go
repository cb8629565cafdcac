// Package wire holds the protobuf messages resman's remote nodes exchange.
// wire.pb.go is generated and committed (CI does not regenerate it). To
// regenerate: protoc 3.21.12 (Debian's protobuf-compiler) and
// protoc-gen-go v1.33.0 (go install
// google.golang.org/protobuf/cmd/protoc-gen-go@v1.33.0, the
// google.golang.org/protobuf version in go.sum), then go generate; the line
// below checks both versions first.
package wire

//go:generate sh -c "protoc --version | grep -qx 'libprotoc 3.21.12' && protoc-gen-go --version | grep -qx 'protoc-gen-go v1.33.0' && protoc --go_out=. --go_opt=paths=source_relative wire.proto"
