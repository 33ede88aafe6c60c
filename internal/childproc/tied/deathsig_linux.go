package tied

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill cmd's process when the thread that
// starts it ends, which the locked thread of Start makes the end of this
// process. Go's fork checks the parent is still there after setting it,
// so a parent dying during the fork is covered too.
func setDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
