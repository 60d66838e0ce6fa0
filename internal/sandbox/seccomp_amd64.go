//go:build linux

package sandbox

import "golang.org/x/sys/unix"

func seccompArch() (arch uint32, denied []uintptr, ok bool) {
	denied = append(denied, deniedCommon...)
	denied = append(denied, unix.SYS_IOPL, unix.SYS_IOPERM, unix.SYS_USELIB)
	return unix.AUDIT_ARCH_X86_64, denied, true
}
