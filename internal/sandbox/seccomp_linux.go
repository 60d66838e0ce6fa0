//go:build linux

package sandbox

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

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
// the process: the lists below are for the native ABI only. That also
// closes socketcall(2), the multiplexer through which 32-bit programs make
// sockets: it exists in none of the native ABIs the filter allows.
//
// Socket families are the exception to the deny list: socket(2) and
// socketpair(2) are allowed for an allow-list of families only
// (socketFamilies), because a family that is not network-namespaced
// (AF_VSOCK reaches the hypervisor and the host's vsock ports) or that
// exposes kernel interfaces (AF_NETLINK, AF_ALG, AF_KEY, …) is a way out
// of the sandbox's loopback-only network, and new families keep appearing.

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

// socketFamilies are the socket families a program may create: local
// sockets and the loopback-only IP network of its network namespace.
// Every runtime of the catalogue needs no more (glibc's getaddrinfo and
// getifaddrs fall back without AF_NETLINK). Any other family fails with
// EAFNOSUPPORT, the error of a kernel built without it, which programs
// that probe for a family already handle.
var socketFamilies = []uint32{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6}

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
	jumpOnly bool   // BPF_JA to jt: the offset goes in k
}

func (p *bpfProg) stmt(code uint16, k uint32) {
	p.insns = append(p.insns, unix.SockFilter{Code: code, K: k})
}

// jump adds a conditional jump to labels jt (if true) and jf (if false).
func (p *bpfProg) jump(code uint16, k uint32, jt, jf string) {
	p.fixups = append(p.fixups, bpfFixup{at: len(p.insns), jt: jt, jf: jf})
	p.insns = append(p.insns, unix.SockFilter{Code: code, K: k})
}

// ja adds an unconditional jump to a label.
func (p *bpfProg) ja(label string) {
	p.fixups = append(p.fixups, bpfFixup{at: len(p.insns), jt: label, jumpOnly: true})
	p.insns = append(p.insns, unix.SockFilter{Code: bpfJa})
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
		if f.jumpOnly {
			to, ok := p.labels[f.jt]
			if !ok {
				return nil, fmt.Errorf("sandbox: seccomp: no label %q", f.jt)
			}
			p.insns[f.at].K = uint32(to - f.at - 1)
			continue
		}
		if p.insns[f.at].Jt, err = off(f.at, f.jt); err != nil {
			return nil, err
		}
		if p.insns[f.at].Jf, err = off(f.at, f.jf); err != nil {
			return nil, err
		}
	}
	return p.insns, nil
}

// seccompFilter builds the filter for this architecture. The system call
// number is looked up in a binary tree of the special cases, so a call
// runs through about ten instructions, not one per denied call: the filter
// runs on every system call, and installing it evaluates it for every
// number (the seccomp action cache).
//
// The init installs it once on the thread it forks commands from, so that
// commands inherit it at no cost; the exceptions below are for what the
// command's process does between fork and exec, and are harmless to an
// unprivileged program. unshare(CLONE_NEWCGROUP) alone is allowed (it
// needs CAP_SYS_ADMIN, which the program lacks). With allowClone3 (cgroup
// v2, where the init clones straight into the command's cgroup), clone3
// passes, and each command adds cloneThreeFilter before it execs.
func seccompFilter(allowClone3 bool) ([]unix.SockFilter, error) {
	arch, denied, ok := seccompArch()
	if !ok {
		return nil, errSeccompArch
	}
	cases := make([]syscallCase, 0, len(denied)+6)
	for _, nr := range denied {
		cases = append(cases, syscallCase{uint32(nr), "eperm"})
	}
	clone3 := "enosys"
	if allowClone3 {
		clone3 = "allow"
	}
	cases = slices.DeleteFunc(cases, func(c syscallCase) bool { return c.nr == uint32(unix.SYS_UNSHARE) })
	cases = append(cases,
		syscallCase{uint32(unix.SYS_CLONE), "clone"},
		// clone3 passes its flags in memory, out of the filter's sight:
		// ENOSYS makes the C library fall back to clone, whose flags are
		// checked.
		syscallCase{uint32(unix.SYS_CLONE3), clone3},
		syscallCase{uint32(unix.SYS_PERSONALITY), "personality"},
		syscallCase{uint32(unix.SYS_UNSHARE), "unshare"},
		syscallCase{uint32(unix.SYS_SOCKET), "socket"},
		syscallCase{uint32(unix.SYS_SOCKETPAIR), "socket"},
	)
	slices.SortFunc(cases, func(a, b syscallCase) int { return cmp.Compare(a.nr, b.nr) })

	p := &bpfProg{labels: make(map[string]int)}
	p.stmt(bpfLd, offArch)
	p.jump(bpfJeq, arch, "", "kill")
	p.stmt(bpfLd, offNr)
	// x32 system calls are the x86_64 numbers with bit 30 set; on other
	// architectures no native call is that high either.
	p.jump(bpfJge, 0x40000000, "kill", "")
	p.tree(cases)

	p.label("clone")
	p.stmt(bpfLd, offArg0)
	p.jump(bpfJset, nsCloneFlags, "eperm", "allow")

	p.label("unshare")
	p.stmt(bpfLd, offArg0)
	p.jump(bpfJeq, unix.CLONE_NEWCGROUP, "allow", "eperm")

	// The family is an int: the kernel ignores the upper half of the
	// register, so the lower one is all there is to check.
	p.label("socket")
	p.stmt(bpfLd, offArg0)
	for _, f := range socketFamilies {
		p.jump(bpfJeq, f, "allow", "")
	}
	p.ja("eafnosupport")

	p.label("personality")
	p.stmt(bpfLd, offArg0)
	for _, v := range allowedPersonalities {
		p.jump(bpfJeq, v, "allow", "")
	}
	p.label("eperm")
	p.stmt(bpfRet, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
	p.label("allow")
	p.stmt(bpfRet, unix.SECCOMP_RET_ALLOW)
	p.label("eafnosupport")
	p.stmt(bpfRet, unix.SECCOMP_RET_ERRNO|uint32(unix.EAFNOSUPPORT))
	p.label("enosys")
	p.stmt(bpfRet, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	p.label("kill")
	p.stmt(bpfRet, unix.SECCOMP_RET_KILL_PROCESS)
	return p.assemble()
}

// cloneThreeFilter denies clone3 with ENOSYS; it is stacked on the filter
// of a command whose init needed clone3 for itself (see seccompFilter). It
// is short, so installing it per command is cheap.
func cloneThreeFilter() ([]unix.SockFilter, error) {
	arch, _, ok := seccompArch()
	if !ok {
		return nil, errSeccompArch
	}
	p := &bpfProg{labels: make(map[string]int)}
	p.stmt(bpfLd, offArch)
	p.jump(bpfJeq, arch, "", "kill")
	p.stmt(bpfLd, offNr)
	p.jump(bpfJeq, uint32(unix.SYS_CLONE3), "", "allow")
	p.stmt(bpfRet, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	p.label("allow")
	p.stmt(bpfRet, unix.SECCOMP_RET_ALLOW)
	p.label("kill")
	p.stmt(bpfRet, unix.SECCOMP_RET_KILL_PROCESS)
	return p.assemble()
}

// BPF opcodes used by the filter.
const (
	bpfLd   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	bpfJset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	bpfJa   = unix.BPF_JMP | unix.BPF_JA
	bpfRet  = unix.BPF_RET | unix.BPF_K
)

// syscallCase sends a system call number to a label.
type syscallCase struct {
	nr    uint32
	label string
}

// tree emits a binary search over sorted cases, the number being in the
// accumulator; numbers that match no case jump to "allow".
func (p *bpfProg) tree(cases []syscallCase) {
	if len(cases) <= 4 {
		for _, c := range cases {
			p.jump(bpfJeq, c.nr, c.label, "")
		}
		p.ja("allow")
		return
	}
	mid := len(cases) / 2
	right := fmt.Sprintf("ge%d_%d", cases[mid].nr, len(p.insns))
	p.jump(bpfJge, cases[mid].nr, right, "")
	p.tree(cases[:mid])
	p.label(right)
	p.tree(cases[mid:])
}
