// Package hooks lets resman's own packages (web) reach what a Manager
// knows but does not export. The root package sets each hook in its init.
package hooks

// CgroupRoot returns the WithCgroup dir of a *resman.Manager, "" if none.
var CgroupRoot func(m any) string
