//go:build linux && !amd64 && !arm64

package sandbox

import "syscall"

// vforkFlags: a plain fork where no vfork trampoline exists (the sandbox
// does not run there anyway: no seccomp filter for the architecture).
const vforkFlags = 0

//go:nosplit
func rawVforkSyscall(trap, a1, a2, a3 uintptr) (uintptr, syscall.Errno) {
	r1, _, err := syscall.RawSyscall6(trap, a1, a2, a3, 0, 0, 0)
	return r1, err
}
