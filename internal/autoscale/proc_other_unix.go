//go:build unix && !linux

package autoscale

import "syscall"

// workerProcAttr puts a local worker in its own process group; only Linux
// can also tie its life to the master's.
func workerProcAttr() *syscall.SysProcAttr { return groupProcAttr() }
