package resman

import "github.com/resman-dev/resman/messages"

// ResourceError is the error of every operation on a resource: errors.As it
// to learn the Kind, Key and Op; errors.Is it against the sentinels below.
// It prints as `resman: <op> <kind> "<key>": <cause>`.
type ResourceError = messages.ResourceError

// PanicError is what a recovered panic in a task or cleanup function
// becomes: it carries the value and the stack, and errors.Is(err, ErrPanicked).
type PanicError = messages.PanicError

// The reasons a *ResourceError wraps, the same values the messages package
// uses, so errors.Is works on replies to actor clients too.
var (
	ErrAlreadyRegistered = messages.ErrAlreadyRegistered // the key is taken in that namespace (also while it is stopping)
	ErrNotRegistered     = messages.ErrNotRegistered     // no such key in that namespace
	ErrInvalid           = messages.ErrInvalid           // a bad argument
	ErrTimeout           = messages.ErrTimeout           // a task or cleanup outlived its grace period; a process survived SIGKILL
	ErrPanicked          = messages.ErrPanicked          // a task or cleanup function panicked
	ErrClosed            = messages.ErrClosed            // the manager is shut down
	ErrRestartLimit      = messages.ErrRestartLimit      // a supervised resource gave up restarting (MaxRestarts within Window)
)

// Kind names the namespace a resource lives in.
type Kind = messages.Kind

// The three kinds; the same key may exist once in each.
const (
	KindProcess        = messages.KindProcess
	KindTask           = messages.KindTask
	KindCustomResource = messages.KindCustomResource
)
