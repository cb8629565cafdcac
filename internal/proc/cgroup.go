package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// CgroupRoot is a directory on a writable cgroup v2 hierarchy below which
// each started process gets a cgroup of its own.
type CgroupRoot struct {
	dir  string
	next atomic.Uint64
}

// OpenCgroupRoot creates dir if missing and checks that it is a writable
// cgroup v2 directory that supports cgroup.kill.
func OpenCgroupRoot(dir string) (*CgroupRoot, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cgroup %q: %w", dir, err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(abs), &fs); err != nil {
		return nil, fmt.Errorf("cgroup %q: parent: %w", abs, err)
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Errorf("cgroup %q: parent is not on a cgroup v2 hierarchy", abs)
	}
	if err := os.Mkdir(abs, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup %q: %w", abs, err)
	}
	if err := unix.Statfs(abs, &fs); err != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Errorf("cgroup %q: not a cgroup v2 directory", abs)
	}
	r := &CgroupRoot{dir: abs}
	// Prove it: create, look for cgroup.kill, remove.
	probe, err := r.New()
	if err != nil {
		return nil, err
	}
	_, statErr := os.Stat(filepath.Join(probe.dir, "cgroup.kill"))
	probe.Close()
	if rmErr := probe.Remove(); rmErr != nil {
		return nil, fmt.Errorf("cgroup %q: %w", abs, rmErr)
	}
	if statErr != nil {
		return nil, fmt.Errorf("cgroup %q: no cgroup.kill (Linux 5.14 or later is needed): %w", abs, statErr)
	}
	return r, nil
}

// Dir is the root's absolute path.
func (r *CgroupRoot) Dir() string { return r.dir }

// Cgroup is one process's cgroup.
type Cgroup struct {
	dir string
	fd  int // an O_PATH|O_DIRECTORY descriptor, for SysProcAttr.CgroupFD; -1 once closed
}

// New creates a fresh cgroup below the root. Names come from the host's
// pid and a counter, so a host that died by SIGKILL (whose empty cgroups the
// host-death watcher leaves behind) and a later host with the same pid (a
// container's PID 1, restarted) could meet: an empty leftover is removed
// and its name reused, a populated one skipped.
func (r *CgroupRoot) New() (*Cgroup, error) {
	var dir string
	for tries := 0; ; tries++ {
		dir = filepath.Join(r.dir, fmt.Sprintf("p%d-%d", os.Getpid(), r.next.Add(1)))
		err := os.Mkdir(dir, 0o755)
		if err != nil && errors.Is(err, fs.ErrExist) && os.Remove(dir) == nil {
			err = os.Mkdir(dir, 0o755)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || tries == 1000 {
			return nil, fmt.Errorf("cgroup %q: %w", dir, err)
		}
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("cgroup %q: %w", dir, err)
	}
	return &Cgroup{dir: dir, fd: fd}, nil
}

// Dir is the cgroup's path.
func (c *Cgroup) Dir() string { return c.dir }

// FD is the descriptor to put in SysProcAttr.CgroupFD.
func (c *Cgroup) FD() int { return c.fd }

// Close releases the descriptor (the cgroup stays).
func (c *Cgroup) Close() {
	if c.fd >= 0 {
		_ = unix.Close(c.fd)
		c.fd = -1
	}
}

// Procs lists the member processes.
func (c *Cgroup) Procs() []int {
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range bytes.Fields(b) {
		if pid, err := strconv.Atoi(string(f)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Signal sends sig to every member. Members are live (zombies leave the
// cgroup), so their PIDs cannot have been reused.
func (c *Cgroup) Signal(sig syscall.Signal) {
	for _, pid := range c.Procs() {
		_ = unix.Kill(pid, sig)
	}
}

// Kill SIGKILLs every member, including those forked meanwhile (cgroup.kill).
func (c *Cgroup) Kill() error {
	return os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0)
}

// Populated reports whether a live process is left in the cgroup.
func (c *Cgroup) Populated() bool {
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.events"))
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte("populated 1"))
}

// WaitEmpty polls cgroup.events until the cgroup is empty or the deadline
// passes, and reports whether it emptied.
func (c *Cgroup) WaitEmpty(until Until) bool {
	return pollUntil(func() bool { return !c.Populated() }, until)
}

// Remove deletes the (empty) cgroup.
func (c *Cgroup) Remove() error {
	if err := unix.Rmdir(c.dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove cgroup %q: %w", c.dir, err)
	}
	return nil
}
