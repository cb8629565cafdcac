// Package hooks lets resman's own packages (web) reach what a Manager
// knows but does not export. The root package sets each hook in its init.
package hooks

import (
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/internal/output"
)

// CgroupRoot returns the WithCgroup dir of a *resman.Manager, "" if none.
var CgroupRoot func(m any) string

// ActorSystem returns the actor system a *resman.Manager's supervisor runs
// on, so that a package can spawn an actor that subscribes to it.
var ActorSystem func(m any) *actor.ActorSystem

// OutputBytes returns a resman.Option (as any: this package cannot name
// it) that hands fn every output line of supervised processes as
// WithOutputHook does, before the hook, a read's lines per call as bytes
// valid only during the call: no string per line, one call per read. The
// resman command's printer uses it (BenchmarkPrefixer: a string per line
// was a third of its CPU).
var OutputBytes func(fn func(*output.Batch)) any

// StopSettings returns what a []resman.StopOption says: the grace period
// (WithTimeout) and the first signal (WithSignal), zero when not given, so
// that package remote can send them over the wire.
var StopSettings func(opts any) (timeout time.Duration, signal syscall.Signal)
