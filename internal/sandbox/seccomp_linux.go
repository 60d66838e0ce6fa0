//go:build linux

package sandbox

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The seccomp filter is a deny list: everything a program (or a compiler)
// may legitimately use stays allowed, and what only serves to attack the
// kernel or escape the sandbox fails with EPERM. Most of the denied calls
// need capabilities the program does not have anyway; the filter is the
// second wall, and it also closes what needs no capability (user
// namespaces through clone/unshare, io_uring, userfaultfd, bpf,
// perf_event_open, keyrings).
//
// Foreign system call ABIs (i386 and x32 on x86_64, arm32 on arm64) kill
// the process: the lists below are for the native ABI only.

// denied are the native system calls that fail with EPERM. Calls that do
// not exist on the architecture are left out by the per-architecture
// lists (seccomp_amd64.go, seccomp_arm64.go).
var deniedCommon = []uintptr{
	unix.SYS_PTRACE,
	unix.SYS_MOUNT,
	unix.SYS_UMOUNT2,
	unix.SYS_PIVOT_ROOT,
	unix.SYS_UNSHARE,
	unix.SYS_SETNS,
	unix.SYS_KEYCTL,
	unix.SYS_ADD_KEY,
	unix.SYS_REQUEST_KEY,
	unix.SYS_BPF,
	unix.SYS_PERF_EVENT_OPEN,
	unix.SYS_KEXEC_LOAD,
	unix.SYS_KEXEC_FILE_LOAD,
	unix.SYS_INIT_MODULE,
	unix.SYS_FINIT_MODULE,
	unix.SYS_DELETE_MODULE,
	unix.SYS_REBOOT,
	unix.SYS_SWAPON,
	unix.SYS_SWAPOFF,
	unix.SYS_CLOCK_SETTIME,
	unix.SYS_CLOCK_ADJTIME,
	unix.SYS_SETTIMEOFDAY,
	unix.SYS_ADJTIMEX,
	unix.SYS_ACCT,
	unix.SYS_QUOTACTL,
	unix.SYS_SYSLOG,
	unix.SYS_USERFAULTFD,
	unix.SYS_OPEN_BY_HANDLE_AT,
	unix.SYS_NAME_TO_HANDLE_AT,
	unix.SYS_PROCESS_VM_READV,
	unix.SYS_PROCESS_VM_WRITEV,
	unix.SYS_LOOKUP_DCOOKIE,
	unix.SYS_VHANGUP,
	unix.SYS_FANOTIFY_INIT,
	unix.SYS_IO_URING_SETUP,
	unix.SYS_IO_URING_ENTER,
	unix.SYS_IO_URING_REGISTER,
	// The new mount API and the newer namespace/mount calls: the same
	// powers as mount(2).
	unix.SYS_OPEN_TREE,
	unix.SYS_MOVE_MOUNT,
	unix.SYS_FSOPEN,
	unix.SYS_FSCONFIG,
	unix.SYS_FSMOUNT,
	unix.SYS_FSPICK,
	unix.SYS_MOUNT_SETATTR,
	unix.SYS_PROCESS_MADVISE,
	unix.SYS_PIDFD_GETFD,
}

// nsCloneFlags are the clone(2) flags that create namespaces.
const nsCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// allowedPersonalities are the personality(2) arguments a program may use:
// the query (0xffffffff), plain Linux, and what docker's default profile
// also allows. Anything else (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, …)
// fails.
var allowedPersonalities = []uint32{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// errSeccompArch is returned on architectures without a system call list.
var errSeccompArch = errors.New("sandbox: no seccomp filter for this architecture")

// seccomp_data offsets.
const (
	offNr   = 0
	offArch = 4
	offArg0 = 16 // low 32 bits on little-endian machines
)

// bpfProg assembles a classic BPF program with forward jumps to labels.
type bpfProg struct {
	insns  []unix.SockFilter
	fixups []bpfFixup
	labels map[string]int
}

type bpfFixup struct {
	at       int
	jt, jf   string // labels, "" for "next instruction"
	jumpOnly bool   // BPF_JA: k holds the offset
}

func (p *bpfProg) stmt(code uint16, k uint32) {
	p.insns = append(p.insns, unix.SockFilter{Code: code, K: k})
}

// jump adds a conditional jump to labels jt (if true) and jf (if false).
func (p *bpfProg) jump(code uint16, k uint32, jt, jf string) {
	p.fixups = append(p.fixups, bpfFixup{at: len(p.insns), jt: jt, jf: jf})
	p.insns = append(p.insns, unix.SockFilter{Code: code, K: k})
}

func (p *bpfProg) label(name string) { p.labels[name] = len(p.insns) }

func (p *bpfProg) assemble() ([]unix.SockFilter, error) {
	off := func(from int, label string) (uint8, error) {
		if label == "" {
			return 0, nil
		}
		to, ok := p.labels[label]
		if !ok {
			return 0, fmt.Errorf("sandbox: seccomp: no label %q", label)
		}
		d := to - from - 1
		if d < 0 || d > 255 {
			return 0, fmt.Errorf("sandbox: seccomp: jump to %q out of range", label)
		}
		return uint8(d), nil
	}
	for _, f := range p.fixups {
		var err error
		if p.insns[f.at].Jt, err = off(f.at, f.jt); err != nil {
			return nil, err
		}
		if p.insns[f.at].Jf, err = off(f.at, f.jf); err != nil {
			return nil, err
		}
	}
	return p.insns, nil
}

// seccompFilter builds the filter for this architecture.
func seccompFilter() ([]unix.SockFilter, error) {
	arch, denied, ok := seccompArch()
	if !ok {
		return nil, errSeccompArch
	}
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jst = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	p := &bpfProg{labels: make(map[string]int)}
	p.stmt(ld, offArch)
	p.jump(jeq, arch, "", "kill")
	p.stmt(ld, offNr)
	// x32 system calls are the x86_64 numbers with bit 30 set; on other
	// architectures no native call is that high either.
	p.jump(jge, 0x40000000, "kill", "")
	for _, nr := range denied {
		p.jump(jeq, uint32(nr), "eperm", "")
	}
	p.jump(jeq, uint32(unix.SYS_CLONE), "clone", "")
	// clone3 passes its flags in memory, out of the filter's sight: ENOSYS
	// makes the C library fall back to clone, whose flags are checked.
	p.jump(jeq, uint32(unix.SYS_CLONE3), "enosys", "")
	p.jump(jeq, uint32(unix.SYS_PERSONALITY), "personality", "")
	p.stmt(ret, unix.SECCOMP_RET_ALLOW)

	p.label("clone")
	p.stmt(ld, offArg0)
	p.jump(jst, nsCloneFlags, "eperm", "")
	p.stmt(ret, unix.SECCOMP_RET_ALLOW)

	p.label("personality")
	p.stmt(ld, offArg0)
	for _, v := range allowedPersonalities {
		p.jump(jeq, v, "allow", "")
	}
	p.label("eperm")
	p.stmt(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
	p.label("allow")
	p.stmt(ret, unix.SECCOMP_RET_ALLOW)
	p.label("enosys")
	p.stmt(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	p.label("kill")
	p.stmt(ret, unix.SECCOMP_RET_KILL_PROCESS)
	return p.assemble()
}
