// Package proctest reads /proc for the tests of every package: whether a
// process is still there, alive, or a zombie of the test's own.
package proctest

import (
	"os"
	"strconv"
	"strings"
)

// fields returns the fields of /proc/<pid>/stat after the command name
// (state, ppid, ...); nil if pid is gone.
func fields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// State is a process's state letter from /proc; "" if it is gone.
func State(pid int) string {
	if f := fields(pid); len(f) > 0 {
		return f[0]
	}
	return ""
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	st := State(pid)
	return st != "" && st != "Z" && st != "X"
}

// OurZombie reports whether pid is a zombie child of this process. A reaped
// pid may have been reused already (by a process of another test, on a busy
// machine): that one is not ours.
func OurZombie(pid int) bool {
	f := fields(pid)
	return len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(os.Getpid())
}
