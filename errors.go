package resman

import "github.com/resman-dev/resman/messages"

// ResourceError is the error of every operation on a resource: errors.As it
// to learn the Kind, Key and Op; errors.Is it against the sentinels
// (ErrAlreadyRegistered, ErrNotRegistered, ErrInvalid, ErrTimeout,
// ErrPanicked, ErrClosed, ErrRestartLimit, ErrUnreachable). It prints as `resman: <op> <kind> "<key>": <cause>`.
// It is [messages.ResourceError] (an alias), with the fields
//
//	Kind Kind   // KindProcess, KindTask or KindCustomResource
//	Key  string
//	Op   string // "register", "start", "unregister", "stop", "cancel", "cleanup", "wait", "track"
//	Err  error  // a sentinel, or the cause: a cleanup's own error, a start's exec error, ctx's error
//
// and the methods Error and Unwrap (which returns Err).
type ResourceError = messages.ResourceError

// PanicError is what a recovered panic in a task or cleanup function
// becomes: it carries the value and the stack, and errors.Is(err, ErrPanicked).
// It is [messages.PanicError] (an alias), with the fields
//
//	Value any    // what was passed to panic
//	Stack []byte // the panicking goroutine's stack
//
// Its Error prints the value and the stack; its Unwrap gives ErrPanicked,
// and the value too when that is an error.
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
	ErrUnreachable       = messages.ErrUnreachable       // a remote node is down or cannot be reached (package remote)
)

// Kind names the namespace a resource lives in. It is [messages.Kind] (an
// alias), an int whose values are the constants KindProcess, KindTask and
// KindCustomResource; its String method gives "process", "task" or
// "custom resource".
type Kind = messages.Kind

// The three kinds; the same key may exist once in each.
const (
	KindProcess        = messages.KindProcess
	KindTask           = messages.KindTask
	KindCustomResource = messages.KindCustomResource
)
