//go:build linux

package sandbox

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The init starts each command with its own vfork and exec rather than
// syscall.ForkExec, because the child must do things between the two that
// ForkExec cannot: enter the run's cgroup (clone3 CLONE_INTO_CGROUP, or a
// write to the v1 tasks files) and take a cgroup namespace rooted there.
// The seccomp filter, no_new_privs and the empty capability bounding set
// are inherited from the init's forking thread (see initState). The child runs in the init's memory (and on
// its stack) until it execs, so after the fork it may only make raw
// system calls on data prepared beforehand, as syscall's own
// forkAndExecInChild does: no allocation, no stack growth, no locks, no
// write to anything the init reads after the fork but its own results.

//go:linkname runtime_BeforeFork syscall.runtime_BeforeFork
func runtime_BeforeFork()

//go:linkname runtime_AfterFork syscall.runtime_AfterFork
func runtime_AfterFork()

//go:linkname runtime_AfterForkInChild syscall.runtime_AfterForkInChild
func runtime_AfterForkInChild()

// cloneArgs is struct clone_args of clone3(2), up to the cgroup field.
type cloneArgs struct {
	flags      uint64
	pidFD      uint64
	childTID   uint64
	parentTID  uint64
	exitSignal uint64
	stack      uint64
	stackSize  uint64
	tls        uint64
	setTID     uint64
	setTIDSize uint64
	cgroup     uint64
}

// childRlimit is one setrlimit of the child.
type childRlimit struct {
	resource uintptr
	lim      unix.Rlimit
}

// childSpec is everything the child needs, prepared before the fork.
type childSpec struct {
	path       *byte
	argv, envv []*byte // nil-terminated
	dir        *byte
	stdio      [3]int
	// cgroupDir, if ≥ 0, is the v2 cgroup to clone into; cgroupFiles get
	// "0" written to them by the child (v1 tasks files, or cgroup.procs
	// when clone3 is missing).
	cgroupDir   int
	cgroupFiles []int
	unshare     uintptr
	rlimits     []childRlimit
	resetSigs   []uintptr // signals the init inherited as ignored
	umask       uintptr
	uid, gid    uintptr
	filter      *unix.SockFprog // stacked on the init's own, or nil
	errPipe     int
}

// childStep names the child's steps, for the error it reports.
var childSteps = [...]string{
	1: "join cgroup", 2: "unshare", 3: "setpgid", 4: "setrlimit", 5: "reset signals",
	6: "set up stdio", 8: "set groups", 9: "set gid", 10: "set uid",
	11: "chdir", 13: "seccomp", 14: "exec",
}

// stepExec is the step of the execve itself.
const stepExec = 14

// childError is what the child reports through its error pipe.
type childError struct {
	step  uint32
	errno syscall.Errno
}

func (e *childError) Error() string {
	name := "step ?"
	if int(e.step) < len(childSteps) && childSteps[e.step] != "" {
		name = childSteps[e.step]
	}
	return fmt.Sprintf("%s: %v", name, e.errno)
}

// forkChild forks the command's process, which sets itself up and execs;
// a failure before the exec is reported on s.errPipe as a childError.
//
//go:norace
//go:nocheckptr
//go:noinline
func forkChild(s *childSpec) (int, error) {
	var (
		r1     uintptr
		errno  syscall.Errno
		step   uint32
		i      int
		zero   = [1]byte{'0'}
		report [2]uint32
		none   [2]uintptr // an empty signal set
		sigact [4]uintptr // struct sigaction: SIG_DFL, no flags, empty mask
		args   cloneArgs
	)
	if s.cgroupDir >= 0 {
		args.flags = vforkFlags | unix.CLONE_INTO_CGROUP
		args.exitSignal = uint64(unix.SIGCHLD)
		args.cgroup = uint64(s.cgroupDir)
	}

	syscall.ForkLock.Lock()
	runtime_BeforeFork()
	if s.cgroupDir >= 0 {
		r1, errno = rawVforkSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args), 0)
	} else {
		r1, errno = rawVforkSyscall(unix.SYS_CLONE, vforkFlags|uintptr(unix.SIGCHLD), 0, 0)
	}
	if errno != 0 || r1 != 0 {
		runtime_AfterFork()
		syscall.ForkLock.Unlock()
		if errno != 0 {
			return 0, errno
		}
		return int(r1), nil
	}

	// The child. Nothing below may allocate or call anything but raw
	// system calls.
	runtime_AfterForkInChild()
	if _, _, errno = syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&none[0])), 0, 8, 0, 0); errno != 0 {
		step = 5
		goto fail
	}
	for i = 0; i < len(s.cgroupFiles); i++ {
		if _, _, errno = syscall.RawSyscall(unix.SYS_WRITE, uintptr(s.cgroupFiles[i]), uintptr(unsafe.Pointer(&zero[0])), 1); errno != 0 {
			step = 1
			goto fail
		}
	}
	if s.unshare != 0 {
		if _, _, errno = syscall.RawSyscall(unix.SYS_UNSHARE, s.unshare, 0, 0); errno != 0 {
			step = 2
			goto fail
		}
	}
	// Its own process group; the session is the init's (a new session per
	// command would create a scheduler autogroup each time, which is slow).
	if _, _, errno = syscall.RawSyscall(unix.SYS_SETPGID, 0, 0, 0); errno != 0 {
		step = 3
		goto fail
	}
	for i = 0; i < len(s.rlimits); i++ {
		if _, _, errno = syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, s.rlimits[i].resource, uintptr(unsafe.Pointer(&s.rlimits[i].lim)), 0, 0, 0); errno != 0 {
			step = 4
			goto fail
		}
	}
	for i = 0; i < len(s.resetSigs); i++ {
		if _, _, errno = syscall.RawSyscall6(unix.SYS_RT_SIGACTION, s.resetSigs[i], uintptr(unsafe.Pointer(&sigact[0])), 0, 8, 0, 0); errno != 0 {
			step = 5
			goto fail
		}
	}
	for i = 0; i < 3; i++ {
		if _, _, errno = syscall.RawSyscall(unix.SYS_DUP3, uintptr(s.stdio[i]), uintptr(i), 0); errno != 0 {
			step = 6
			goto fail
		}
	}
	// Nothing but stdio may reach the program; everything the init holds
	// is close-on-exec already, this makes sure. The error pipe must stay
	// open until the exec (it is close-on-exec). ENOSYS before Linux 5.9.
	if s.errPipe > 3 {
		syscall.RawSyscall(unix.SYS_CLOSE_RANGE, 3, uintptr(s.errPipe-1), 0)
	}
	syscall.RawSyscall(unix.SYS_CLOSE_RANGE, uintptr(s.errPipe+1), uintptr(^uint32(0)), 0)

	// The uid change clears the permitted and effective capabilities; the
	// bounding and ambient sets were emptied on the init's forking thread.
	if _, _, errno = syscall.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); errno != 0 {
		step = 8
		goto fail
	}
	if _, _, errno = syscall.RawSyscall(unix.SYS_SETRESGID, s.gid, s.gid, s.gid); errno != 0 {
		step = 9
		goto fail
	}
	if _, _, errno = syscall.RawSyscall(unix.SYS_SETRESUID, s.uid, s.uid, s.uid); errno != 0 {
		step = 10
		goto fail
	}
	if _, _, errno = syscall.RawSyscall(unix.SYS_CHDIR, uintptr(unsafe.Pointer(s.dir)), 0, 0); errno != 0 {
		step = 11
		goto fail
	}
	syscall.RawSyscall(unix.SYS_UMASK, s.umask, 0, 0)
	if s.filter != nil {
		if _, _, errno = syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(s.filter))); errno != 0 {
			step = 13
			goto fail
		}
	}
	_, _, errno = syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(s.path)),
		uintptr(unsafe.Pointer(&s.argv[0])), uintptr(unsafe.Pointer(&s.envv[0])))
	step = stepExec

fail:
	report[0] = step
	report[1] = uint32(errno)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(s.errPipe), uintptr(unsafe.Pointer(&report[0])), unsafe.Sizeof(report))
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
	}
}

// readChildError reads the child's report: nil when the pipe closed
// without one, i.e. the exec succeeded.
func readChildError(fd int) error {
	var b [8]byte
	if err := waitReadable(fd); err != nil {
		return fmt.Errorf("read child status: %w", err)
	}
	for {
		n, err := unix.Read(fd, b[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read child status: %w", err)
		}
		if n == 0 {
			return nil
		}
		if n < len(b) {
			return fmt.Errorf("short child status (%d bytes)", n)
		}
		r := (*[2]uint32)(unsafe.Pointer(&b[0]))
		return &childError{step: r[0], errno: syscall.Errno(r[1])}
	}
}
