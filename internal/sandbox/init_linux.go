//go:build linux

package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// initHooked records that this program calls InitMain. New refuses to run
// without it: the re-executed binary would otherwise run its own main (or a
// test binary all its tests) instead of the init. It is the one piece of
// package state, set once at start.
var initHooked atomic.Bool

// InitMain runs the sandbox init when this process was started as one by
// the Linux sandbox, and then never returns; otherwise it returns at once.
// The sandbox re-executes /proc/self/exe as its init (Go cannot fork
// without exec), so every program that creates a Linux sandbox must call
// InitMain first thing in main, and test binaries in TestMain.
func InitMain() {
	initHooked.Store(true)
	if len(os.Args) != 1 || os.Args[0] != initArg0 {
		return
	}
	// Commands are forked from this thread only: it carries the state they
	// inherit (seccomp filter, no_new_privs, empty capability bounding
	// set). Locking it also starts the runtime's template thread now, from
	// which later threads are cloned, so none inherits that state.
	runtime.LockOSThread()
	// This thread blocks in raw system calls that keep its P
	// (rawwait_linux.go): a second P lets the mounter run meanwhile.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	os.Exit(runInit())
}

// The init is pid 1 of the sandbox's pid namespace and root of its mount,
// network, IPC and UTS namespaces. It builds the root once, then runs
// commands one at a time, each in a child it forks (child_linux.go).
//
// Between two commands it resets everything a command could change:
//   - processes: all dead (the pid namespace holds only the init);
//   - mounts: the writable ones (/box, extra paths) are detached, /tmp is
//     replaced if anything was left in it; the rest belongs to root;
//   - IPC: System V objects and POSIX message queues are removed;
//   - cgroup namespace: each command makes its own;
//   - network: nothing outlives its sockets (TIME_WAIT is off); addresses
//     and routes need CAP_NET_ADMIN;
//   - host name: needs CAP_SYS_ADMIN.
//
// The forking thread carries the seccomp filter, so it cannot mount; mount
// work is done by the mounter, a goroutine locked to another thread.

// initState is the init's state between commands.
type initState struct {
	tmpBytes, tmpInodes int64
	filter              *unix.SockFprog // stacked per command, or nil
	insns               []unix.SockFilter
	resetSigs           []uintptr
	attached            []string // per-command mount points, to detach
	mounter             chan func()
}

func runInit() int {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "grappe: the sandbox init must be started by the sandbox")
		return 2
	}
	if _, err := unix.FcntlInt(initCtlFD, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		fmt.Fprintln(os.Stderr, "grappe: sandbox init: no control socket")
		return 2
	}
	buf := make([]byte, 64<<10)
	b, _, err := recvMsgFD(initCtlFD, buf)
	if err != nil {
		return 2
	}
	var setup setupMsg
	if err := json.Unmarshal(b, &setup); err != nil {
		return 2
	}
	st, err := newInit(&setup)
	if err != nil {
		r := replyMsg{Err: err.Error(), Fatal: true}
		sendMsgFD(initCtlFD, r.marshal(), nil)
		return 1
	}
	ready := replyMsg{Ready: true}
	if err := sendMsgFD(initCtlFD, ready.marshal(), nil); err != nil {
		return 1
	}
	for {
		b, fds, err := recvMsgFD(initCtlFD, buf)
		if errors.Is(err, errEOF) {
			return 0
		}
		if err != nil {
			return 1
		}
		var m runMsg
		reply := replyMsg{Err: "malformed request", Fatal: true}
		if err := m.unmarshal(b); err == nil {
			reply = st.run(&m, fds)
		} else {
			closeFDs(fds)
		}
		if err := sendMsgFD(initCtlFD, reply.marshal(), nil); err != nil || reply.Fatal {
			return 1
		}
		// After the reply, off the command's clock; the next request waits
		// in the socket meanwhile. A failure ends the init, and the worker
		// sees the sandbox gone.
		if err := st.onMounter(st.reset); err != nil {
			return 1
		}
	}
}

// newInit sets the sandbox up: root file system, loopback, host name,
// privileges of the forking thread.
func newInit(s *setupMsg) (*initState, error) {
	st := &initState{tmpBytes: s.TmpBytes, tmpInodes: s.TmpInodes, mounter: make(chan func())}
	// Modes below are meant as written (/dev/null is 0666); each command
	// gets its own umask.
	unix.Umask(0)
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return nil, fmt.Errorf("read cap_last_cap: %w", err)
	}
	capLast, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("parse cap_last_cap: %w", err)
	}
	filter, err := seccompFilter(s.CloneIntoCgroup)
	if err != nil {
		return nil, err
	}
	if s.CloneIntoCgroup {
		if st.insns, err = cloneThreeFilter(); err != nil {
			return nil, err
		}
		st.filter = &unix.SockFprog{Len: uint16(len(st.insns)), Filter: &st.insns[0]}
	}
	st.resetSigs = ignoredSignals()
	if err := buildRoot(s, s.Stage); err != nil {
		return nil, err
	}
	// POSIX message queues of this IPC namespace, visible to the init so
	// that it can remove what a command left.
	if err := unix.Mount("mqueue", "/dev/mqueue", "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("mount /dev/mqueue: %w", err)
	}
	if err := loopbackUp(); err != nil {
		return nil, err
	}
	// No TIME_WAIT sockets: a closed connection leaves nothing behind for
	// the next command (this /proc/sys/net is the sandbox's own).
	if err := os.WriteFile("/proc/sys/net/ipv4/tcp_max_tw_buckets", []byte("0"), 0); err != nil {
		return nil, fmt.Errorf("disable TIME_WAIT: %w", err)
	}
	if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
		return nil, fmt.Errorf("sethostname: %w", err)
	}
	if err := unix.Setdomainname([]byte("(none)")); err != nil {
		return nil, fmt.Errorf("setdomainname: %w", err)
	}
	// The sandbox's own session, without a controlling terminal, shared by
	// its commands (each in its own process group). The scheduler gives
	// each session its group (autogroup), so a sandbox running many
	// threads does not crowd out the others.
	if _, err := unix.Setsid(); err != nil {
		return nil, fmt.Errorf("setsid: %w", err)
	}
	st.startMounter()
	if err := dropPrivileges(capLast); err != nil {
		return nil, err
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	// This thread only (no TSYNC): the mounter's must keep mounting.
	if _, _, errno := syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog))); errno != 0 {
		return nil, fmt.Errorf("seccomp: %w", errno)
	}
	return st, nil
}

// startMounter starts the goroutine that does the init's mount work, on a
// thread of its own that never carries the seccomp filter.
func (st *initState) startMounter() {
	ready := make(chan struct{})
	go func() {
		runtime.LockOSThread() // for good: the thread serves nothing else
		close(ready)
		for f := range st.mounter {
			f()
		}
	}()
	<-ready
}

// onMounter runs f on the mounter's thread.
func (st *initState) onMounter(f func() error) error {
	done := make(chan error, 1)
	st.mounter <- func() { done <- f() }
	return <-done
}

// dropPrivileges empties this thread's capability bounding and ambient
// sets and sets no_new_privs. The init keeps its effective capabilities
// (it never execs), and every command forked from this thread inherits
// the rest: once its uid is not 0 it has no capability and can gain none,
// setuid binaries included. Done once here, it costs no command anything.
func dropPrivileges(capLast int) error {
	for c := 0; c <= capLast; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("drop capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	return nil
}

// ignoredSignals lists the signals the init inherited as ignored (they
// would stay ignored across exec); the child resets them to default.
func ignoredSignals() []uintptr {
	var out []uintptr
	for sig := uintptr(1); sig <= 64; sig++ {
		if sig == uintptr(unix.SIGKILL) || sig == uintptr(unix.SIGSTOP) {
			continue
		}
		var old [4]uintptr
		_, _, errno := syscall.RawSyscall6(unix.SYS_RT_SIGACTION, sig, 0, uintptr(unsafe.Pointer(&old[0])), 8, 0, 0)
		if errno == 0 && old[0] == 1 { // SIG_IGN
			out = append(out, sig)
		}
	}
	return out
}

// loopbackUp brings lo up: the sandbox's network is loopback only.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	return nil
}

// run runs one command and reports how its main process ended, once
// every process it started is dead.
func (st *initState) run(m *runMsg, fds []int) replyMsg {
	want := 3 + len(m.Mounts) + m.CgroupFiles
	if m.CgroupDir {
		want++
	}
	if len(fds) != want || len(m.Args) == 0 {
		closeFDs(fds)
		return replyMsg{Err: fmt.Sprintf("malformed request: %d descriptors, want %d", len(fds), want), Fatal: true}
	}
	defer func() { closeFDs(fds) }()
	err := st.onMounter(func() error {
		for i, mnt := range m.Mounts {
			if err := attachMount(fds[3+i], mnt); err != nil {
				return err
			}
			st.attached = append(st.attached, mnt.Target)
		}
		return nil
	})
	if err != nil {
		return replyMsg{Err: err.Error()}
	}
	spec, err := st.childSpec(m, fds)
	if err != nil {
		return replyMsg{Err: err.Error(), Exec: true, Errno: int(unix.EINVAL)}
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return replyMsg{Err: fmt.Sprintf("pipe: %v", err)}
	}
	spec.errPipe = p[1]
	pid, err := forkChild(spec)
	if err != nil && spec.cgroupDir >= 0 && (errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.E2BIG) || errors.Is(err, unix.EINVAL)) {
		// No clone3 or CLONE_INTO_CGROUP (before Linux 5.7): the child
		// joins by writing to cgroup.procs instead.
		var procs int
		procs, err = unix.Openat(spec.cgroupDir, "cgroup.procs", unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			fds = append(fds, procs)
			spec.cgroupDir, spec.cgroupFiles = -1, []int{procs}
			pid, err = forkChild(spec)
		}
	}
	unix.Close(p[1])
	// The command's stdio must have no other holder, or its pipes would
	// never see EOF.
	closeFDs(fds)
	fds = nil
	if err != nil {
		unix.Close(p[0])
		return replyMsg{Err: fmt.Sprintf("fork: %v", err)}
	}
	childErr := readChildError(p[0])
	unix.Close(p[0])
	status, maxRSS, err := reapAll(pid)
	if err != nil {
		return replyMsg{Err: err.Error(), Fatal: true}
	}
	var ce *childError
	switch {
	case errors.As(childErr, &ce) && ce.step == stepExec:
		return replyMsg{Err: ce.errno.Error(), Exec: true, Errno: int(ce.errno)}
	case childErr != nil:
		return replyMsg{Err: "start command: " + childErr.Error()}
	}
	return replyMsg{Status: int(status), MaxRSSKB: maxRSS}
}

// childSpec prepares the child's data; it fails for a NUL in a string.
func (st *initState) childSpec(m *runMsg, fds []int) (*childSpec, error) {
	s := &childSpec{
		stdio:     [3]int{fds[0], fds[1], fds[2]},
		cgroupDir: -1,
		unshare:   unix.CLONE_NEWCGROUP,
		resetSigs: st.resetSigs,
		umask:     uintptr(m.Umask),
		uid:       uintptr(m.UID),
		gid:       uintptr(m.GID),
		filter:    st.filter,
	}
	var err error
	if s.path, err = syscall.BytePtrFromString(m.Path); err != nil {
		return nil, err
	}
	if s.dir, err = syscall.BytePtrFromString(m.Dir); err != nil {
		return nil, err
	}
	if s.argv, err = syscall.SlicePtrFromStrings(m.Args); err != nil {
		return nil, err
	}
	if s.envv, err = syscall.SlicePtrFromStrings(m.Env); err != nil {
		return nil, err
	}
	i := 3 + len(m.Mounts)
	if m.CgroupDir {
		s.cgroupDir = fds[i]
		i++
	}
	s.cgroupFiles = fds[i:]
	for _, r := range m.Rlimits {
		s.rlimits = append(s.rlimits, childRlimit{resource: uintptr(r.Resource), lim: unix.Rlimit{Cur: r.Cur, Max: r.Max}})
	}
	return s, nil
}

// reapAll waits for the main process, then kills whatever is left in the
// pid namespace (background children, daemons that called setsid or
// double-forked: orphans are all the init's children) and reaps it all.
func reapAll(pid int) (status unix.WaitStatus, maxRSSKB int64, err error) {
	var ru unix.Rusage
	for {
		var ws unix.WaitStatus
		wpid, err := rawWait4(-1, &ws, 0, &ru)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, 0, fmt.Errorf("wait: %w", err)
		}
		maxRSSKB = max(maxRSSKB, ru.Maxrss)
		if wpid == pid {
			status = ws
			break
		}
	}
	// From pid 1, kill(-1) reaches every other process of the namespace.
	unix.Kill(-1, unix.SIGKILL)
	for {
		_, err := rawWait4(-1, nil, 0, &ru)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			break // ECHILD: nothing left
		}
		maxRSSKB = max(maxRSSKB, ru.Maxrss)
	}
	return status, maxRSSKB, nil
}

// reset undoes what the last command could change (see initState); it
// runs on the mounter's thread.
func (st *initState) reset() error {
	for i := len(st.attached) - 1; i >= 0; i-- {
		if err := unix.Unmount(st.attached[i], unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detach %s: %w", st.attached[i], err)
		}
	}
	st.attached = st.attached[:0]
	// A fresh /tmp only if something is left in it: an unmount costs an
	// RCU grace period.
	var fs unix.Statfs_t
	if err := unix.Statfs("/tmp", &fs); err != nil {
		return fmt.Errorf("statfs /tmp: %w", err)
	}
	if fs.Files-fs.Ffree > 1 {
		if err := unix.Unmount("/tmp", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detach /tmp: %w", err)
		}
		if err := mountTmp("/tmp", st.tmpBytes, st.tmpInodes); err != nil {
			return err
		}
	}
	return cleanIPC()
}
