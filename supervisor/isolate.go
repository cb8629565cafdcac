package supervisor

import (
	"os/exec"
	"syscall"
)

// isolate gives a cmd that StartProcess will start its own process group,
// so a stop can reach its whole tree, and a parent-death signal, so it dies
// with the host. A cmd whose SysProcAttr the caller set is left alone.
func isolate(cmd *exec.Cmd) {
	if cmd.SysProcAttr != nil {
		return
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
