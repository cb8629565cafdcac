// Package proc holds resman's Linux process mechanics: watching a process
// exit without blocking an OS thread, and telling when a process group is empty.
package proc

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ExitWatch tells when a child process has exited, without reaping it (the
// zombie keeps its PID and process-group id reserved until someone waits).
// It polls a non-blocking pidfd through Go's netpoller, so watching a
// thousand processes costs no thread per process.
type ExitWatch struct {
	file   *os.File      // the pidfd; closed by the watch goroutine or by Close
	code   int           // the exit code (-1: a signal); written before exited is closed
	exited chan struct{} // closed when the process has exited
	done   chan struct{} // closed when the watch goroutine has returned
	once   sync.Once     // Start runs once
}

// OpenExitWatch opens a pidfd for pid. It fails when pid does not exist (for
// example because it was already reaped) or is not a child of this process
// (os.FindProcess gives a Process for any pid: it could be neither reaped
// nor told apart from a stranger). Start begins the watching.
func OpenExitWatch(pid int) (*ExitWatch, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	if _, err := waitInfo(fd); errors.Is(err, unix.ECHILD) {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("process %d is not a child of this process", pid)
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
		info, werr := waitInfo(int(fd))
		if werr != nil {
			return !errors.Is(werr, unix.EINTR) // ECHILD and the like: nothing more to wait for
		}
		if info.signo != int32(unix.SIGCHLD) {
			return false // zero while nothing is waitable
		}
		w.code = -1
		if info.code == cldExited {
			w.code = int(info.status)
		}
		return true
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

// ExitCode is the exit code once Exited is closed, -1 if a signal ended
// the process (as os.ProcessState.ExitCode), known before the reap.
func (w *ExitWatch) ExitCode() int { return w.code }

// sigchld is the kernel's siginfo_t as waitid fills it for SIGCHLD (x/sys
// hides the union's fields).
type sigchld struct {
	signo  int32
	errno  int32
	code   int32
	_      int32
	pid    int32
	uid    uint32
	status int32
	_      [100]byte
}

const cldExited = 1 // CLD_EXITED: status is the exit code

// waitInfo looks at the pidfd's process without reaping it (WNOWAIT).
func waitInfo(fd int) (sigchld, error) {
	var info sigchld
	_, _, e := unix.Syscall6(unix.SYS_WAITID, unix.P_PIDFD, uintptr(fd), uintptr(unsafe.Pointer(&info)),
		unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0, 0)
	if e != 0 {
		return info, e
	}
	return info, nil
}

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
