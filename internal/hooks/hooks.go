// Package hooks lets resman's own packages (web) reach what a Manager
// knows but does not export. The root package sets each hook in its init.
package hooks

import (
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// CgroupRoot returns the WithCgroup dir of a *resman.Manager, "" if none.
var CgroupRoot func(m any) string

// ActorSystem returns the actor system a *resman.Manager's supervisor runs
// on, so that a package can spawn an actor that subscribes to it.
var ActorSystem func(m any) *actor.ActorSystem

// StopSettings returns what a []resman.StopOption says: the grace period
// (WithTimeout) and the first signal (WithSignal), zero when not given, so
// that package remote can send them over the wire.
var StopSettings func(opts any) (timeout time.Duration, signal syscall.Signal)
