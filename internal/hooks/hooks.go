// Package hooks lets resman's own packages (web) reach what a Manager
// knows but does not export. The root package sets each hook in its init.
package hooks

import "github.com/asynkron/protoactor-go/actor"

// CgroupRoot returns the WithCgroup dir of a *resman.Manager, "" if none.
var CgroupRoot func(m any) string

// ActorSystem returns the actor system a *resman.Manager's supervisor runs
// on, so that a package can spawn an actor that subscribes to it.
var ActorSystem func(m any) *actor.ActorSystem
