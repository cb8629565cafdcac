// Package proc holds resman's Linux process mechanics: watching a process
// exit without blocking an OS thread, and telling when a process group is empty.
package proc

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// ExitWatch tells when a child process has exited, without reaping it (the
// zombie keeps its PID and process-group id reserved until someone waits).
// It polls a non-blocking pidfd through Go's netpoller, so watching a
// thousand processes costs no thread per process.
type ExitWatch struct {
	file   *os.File      // the pidfd; closed by the watch goroutine or by Close
	exited chan struct{} // closed when the process has exited
	done   chan struct{} // closed when the watch goroutine has returned
	once   sync.Once     // Start runs once
}

// OpenExitWatch opens a pidfd for pid. It fails when pid does not exist (for
// example because it was already reaped). Start begins the watching.
func OpenExitWatch(pid int) (*ExitWatch, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	return &ExitWatch{
		file:   os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid)),
		exited: make(chan struct{}),
		done:   make(chan struct{}),
	}, nil
}

// Start launches the goroutine, owned by the ExitWatch, that closes Exited
// when the process exits and then calls onExit (if not nil) on itself.
// onExit must not call Close.
func (w *ExitWatch) Start(onExit func()) {
	w.once.Do(func() { go w.run(onExit) })
}

func (w *ExitWatch) run(onExit func()) {
	defer close(w.done)
	rc, err := w.file.SyscallConn()
	if err != nil {
		_ = w.file.Close()
		return
	}
	// A pidfd becomes readable when its process exits. Read parks this
	// goroutine in the netpoller until then; the callback only looks.
	err = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		// WNOWAIT: look, do not reap.
		werr := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if werr != nil {
			return !errors.Is(werr, unix.EINTR) // ECHILD and the like: nothing more to wait for
		}
		return info.Signo == int32(unix.SIGCHLD) // zero while nothing is waitable
	})
	_ = w.file.Close() // the pidfd has told all it can
	if err == nil {
		close(w.exited)
		if onExit != nil {
			onExit()
		}
	}
}

// Exited is closed when the process has exited (it is not reaped).
func (w *ExitWatch) Exited() <-chan struct{} { return w.exited }

// HasExited reports whether Exited is closed.
func (w *ExitWatch) HasExited() bool {
	select {
	case <-w.exited:
		return true
	default:
		return false
	}
}

// Close stops watching and waits for the watch goroutine, if it was started,
// to return. It is safe to call more than once, but not from onExit.
func (w *ExitWatch) Close() {
	_ = w.file.Close()
	started := true
	w.once.Do(func() { started = false })
	if started {
		<-w.done
	}
}
