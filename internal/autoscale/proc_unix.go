//go:build unix

package autoscale

import (
	"os"
	"syscall"
)

// groupProcAttr starts a command in a process group of its own, so that
// killGroup ends it with everything it started.
func groupProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// terminate asks a worker to drain and exit.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// killGroup kills the process group led by pid.
func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }
