package messages

import (
	"errors"
	"fmt"
)

// The reasons a *ResourceError wraps. Match them with errors.Is.
var (
	// ErrAlreadyRegistered: the key is taken in that namespace (also while it is stopping).
	ErrAlreadyRegistered = errors.New("already registered")
	// ErrNotRegistered: no such key in that namespace.
	ErrNotRegistered = errors.New("not registered")
	// ErrInvalid: a bad argument (empty key, nil cmd, task or cleanup, a cmd
	// not started or already waited, a negative timeout, ...).
	ErrInvalid = errors.New("invalid argument")
	// ErrTimeout: a task or cleanup function outlived its grace period (it is
	// reported, not killed: goroutines cannot be killed), or a process survived
	// even SIGKILL.
	ErrTimeout = errors.New("grace period expired")
	// ErrPanicked: a task or cleanup function panicked; the error is a
	// *PanicError that carries the value and the stack.
	ErrPanicked = errors.New("panicked")
	// ErrClosed: the manager is shut down or its supervisor is stopping.
	ErrClosed = errors.New("manager is shut down")
	// ErrRestartLimit: a supervised resource gave up restarting (more than
	// MaxRestarts restarts within Window).
	ErrRestartLimit = errors.New("restart limit reached")
	// ErrUnreachable: a remote node is down or cannot be reached (package
	// remote); the call's outcome there is unknown.
	ErrUnreachable = errors.New("node unreachable")
)

// ResourceError is the error type of every operation on a resource.
type ResourceError struct {
	Kind Kind
	Key  string
	Op   string // "register", "start", "unregister", "stop", "cancel", "cleanup", "wait"
	Err  error  // a sentinel above, a cleanup function's or task's own error, or the caller's context error
}

// Error formats as `resman: <op> <kind> "<key>": <cause>`.
func (e *ResourceError) Error() string {
	return fmt.Sprintf("resman: %s %s %q: %v", e.Op, e.Kind, e.Key, e.Err)
}

// Unwrap returns the reason.
func (e *ResourceError) Unwrap() error { return e.Err }

// PanicError is what a recovered panic in a task or cleanup function becomes.
// errors.Is(err, ErrPanicked) holds for it.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack
}

// Error returns the panic value followed by the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("panicked: %v\n%s", e.Value, e.Stack)
}

// Unwrap returns ErrPanicked, and the panic value too when it is an error.
func (e *PanicError) Unwrap() []error {
	if err, ok := e.Value.(error); ok {
		return []error{ErrPanicked, err}
	}
	return []error{ErrPanicked}
}

// NewError returns a *ResourceError.
func NewError(kind Kind, key, op string, err error) error {
	return &ResourceError{Kind: kind, Key: key, Op: op, Err: err}
}

// Invalid returns a *ResourceError wrapping ErrInvalid with a detail.
func Invalid(kind Kind, key, op, detail string) error {
	return NewError(kind, key, op, fmt.Errorf("%w: %s", ErrInvalid, detail))
}
