//go:build linux && (amd64 || arm64)

package sandbox

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// vforkFlags make the command's fork a vfork: no copy of the init's page
// tables (a fork of a Go process costs hundreds of microseconds), and the
// init resumes once the child has exec'd.
const vforkFlags = unix.CLONE_VM | unix.CLONE_VFORK

// rawVforkSyscall is in vfork_$GOARCH.s.
func rawVforkSyscall(trap, a1, a2, a3 uintptr) (r1 uintptr, err syscall.Errno)
