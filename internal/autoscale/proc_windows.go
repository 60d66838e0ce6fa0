package autoscale

import (
	"os"
	"syscall"
)

// Windows has neither process groups to kill nor SIGTERM: a stopped local
// worker is killed without draining, and a command's children may survive
// its timeout. grappe's workers are meant for Linux; this keeps the master
// building elsewhere.

func workerProcAttr() *syscall.SysProcAttr { return nil }

func groupProcAttr() *syscall.SysProcAttr { return nil }

func terminate(p *os.Process) error { return p.Kill() }

func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
