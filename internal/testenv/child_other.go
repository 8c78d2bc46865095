//go:build !linux

package testenv

import "os/exec"

// Child is a no-op where the kernel has no parent-death signal: a killed
// test binary may leave its children running there.
func Child(cmd *exec.Cmd) *exec.Cmd { return cmd }
