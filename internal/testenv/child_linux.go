package testenv

import (
	"os/exec"
	"syscall"
)

// Child makes the process cmd starts die with the test binary: the kernel
// sends it SIGKILL when the thread that started it ends, which for a Go
// program is when the program does (its threads live as long as it does
// unless a goroutine ends locked to one, which these tests never do). So
// a test binary killed by go test's timeout or by SIGKILL leaves no
// central, agency or Prometheus behind. It keeps cmd.SysProcAttr's other
// settings.
func Child(cmd *exec.Cmd) *exec.Cmd {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	return cmd
}
