package autoscale

import "syscall"

// workerProcAttr puts a local worker in its own process group (a Ctrl-C at
// the master's terminal is the master's to handle) and has the kernel send
// it SIGTERM if the master dies, so no worker outlives its master unseen.
// Pdeathsig follows the thread that started the process. Go keeps its
// threads for the life of the process unless a goroutine locked to one
// exits: in a master, only the sandbox of `grappe up`'s in-process workers
// does that, when it shuts down, as the started workers are being stopped
// anyway.
func workerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
