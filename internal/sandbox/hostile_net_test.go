//go:build linux

package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Hostile programs against the socket family allow-list (seccomp_linux.go),
// run from TestHostile.

// refusedFamilies are socket families a program must not get, with a type
// the family accepts (so that, without the filter, the kernel would give
// the socket, or refuse it for a reason of its own). The unknown numbers
// stand for families that do not exist yet.
var refusedFamilies = []struct {
	name        string
	family, typ int
}{
	{"AF_VSOCK", unix.AF_VSOCK, unix.SOCK_STREAM},
	{"AF_NETLINK", unix.AF_NETLINK, unix.SOCK_RAW},
	{"AF_PACKET", unix.AF_PACKET, unix.SOCK_DGRAM},
	{"AF_BLUETOOTH", unix.AF_BLUETOOTH, unix.SOCK_STREAM},
	{"AF_ALG", unix.AF_ALG, unix.SOCK_SEQPACKET},
	{"AF_KEY", unix.AF_KEY, unix.SOCK_RAW},
	{"AF_XDP", unix.AF_XDP, unix.SOCK_RAW},
	{"AF_CAN", unix.AF_CAN, unix.SOCK_RAW},
	{"AF_TIPC", unix.AF_TIPC, unix.SOCK_RDM},
	{"AF_RDS", unix.AF_RDS, unix.SOCK_SEQPACKET},
	{"AF_APPLETALK", unix.AF_APPLETALK, unix.SOCK_DGRAM},
	{"AF_X25", unix.AF_X25, unix.SOCK_SEQPACKET},
	{"AF_LLC", unix.AF_LLC, unix.SOCK_DGRAM},
	{"AF_NFC", unix.AF_NFC, unix.SOCK_SEQPACKET},
	{"AF_QIPCRTR", unix.AF_QIPCRTR, unix.SOCK_DGRAM},
	{"AF_SMC", unix.AF_SMC, unix.SOCK_STREAM},
	{"AF_MCTP", 45, unix.SOCK_DGRAM},
	{"family 46", 46, unix.SOCK_STREAM},
	{"family 200", 200, unix.SOCK_STREAM},
	{"family -1", -1, unix.SOCK_STREAM},
	// The kernel reads the family as an int: the upper half of the
	// register must not hide a refused family from the filter.
	{"AF_VSOCK in a 64-bit register", 1<<32 | unix.AF_VSOCK, unix.SOCK_STREAM},
}

// hostileSocketFamilies: socket(2) and socketpair(2) give AF_UNIX, AF_INET
// and AF_INET6 sockets, and fail with EAFNOSUPPORT (not a kill) for every
// other family.
func hostileSocketFamilies(t *testing.T, l *Linux) {
	type call struct {
		name        string
		nr          uintptr
		family, typ int
		wantOK      bool
	}
	calls := []call{
		{"socket AF_UNIX", unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, true},
		{"socket AF_INET", unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, true},
		{"socket AF_INET udp", unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_DGRAM, true},
		{"socket AF_INET6", unix.SYS_SOCKET, unix.AF_INET6, unix.SOCK_STREAM, true},
		{"socketpair AF_UNIX", unix.SYS_SOCKETPAIR, unix.AF_UNIX, unix.SOCK_STREAM, true},
	}
	for _, f := range refusedFamilies {
		calls = append(calls,
			call{"socket " + f.name, unix.SYS_SOCKET, f.family, f.typ, false},
			call{"socketpair " + f.name, unix.SYS_SOCKETPAIR, f.family, f.typ, false})
	}
	// perl's syscall() passes the numbers as they are; socketpair gets a
	// buffer for its two descriptors.
	var script strings.Builder
	script.WriteString("my $sv = \"\\0\" x 8;\n")
	for _, c := range calls {
		extra := ""
		if c.nr == unix.SYS_SOCKETPAIR {
			extra = ", $sv"
		}
		fmt.Fprintf(&script, "print \"%s|\", syscall(%d, %d, %d, 0%s) == -1 ? ($!+0) : \"ok\", \"\\n\";\n",
			c.name, c.nr, c.family, c.typ, extra)
	}
	script.WriteString("print \"alive\\n\";\n")
	o := hostileExec(t, l, &Cmd{Args: []string{"/usr/bin/perl", "-e", script.String()}, Limits: limits})
	if o.ExitCode != 0 || !strings.HasSuffix(string(o.Stdout), "alive\n") {
		t.Fatalf("the program did not survive its refused sockets: %+v stdout %q stderr %q", o, o.Stdout, o.Stderr)
	}
	got := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(string(o.Stdout)), "\n") {
		name, res, _ := strings.Cut(line, "|")
		got[name] = res
	}
	for _, c := range calls {
		res, ok := got[c.name]
		switch {
		case !ok:
			t.Errorf("%s: no result", c.name)
		case c.wantOK && res != "ok":
			t.Errorf("%s: failed with errno %s, want a socket", c.name, res)
		case !c.wantOK && res != strconv.Itoa(int(unix.EAFNOSUPPORT)):
			t.Errorf("%s: %s, want errno %d (EAFNOSUPPORT)", c.name, res, unix.EAFNOSUPPORT)
		}
	}
}

// compatSyscalls is a C program that makes an AF_VSOCK socket through a
// foreign system call ABI of x86_64: the i386 socketcall(2) (int $0x80),
// or the x32 socket(2). Each must kill the program: the filter is written
// for the native ABI only.
const compatSyscalls = `
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
	long r;
	puts("started");
	fflush(stdout);
	if (strcmp(argv[1], "socketcall") == 0) {
		/* socketcall(SYS_SOCKET, {AF_VSOCK, SOCK_STREAM, 0}); the
		   arguments must lie below 4 GiB for the 32-bit ABI. */
		static unsigned int args[3] = {40, 1, 0};
		__asm__ volatile("int $0x80" : "=a"(r) : "a"(102), "b"(1), "c"(args) : "memory");
	} else {
		r = syscall(0x40000000 | SYS_socket, 40, 1, 0);
	}
	printf("returned %ld\n", r);
	return 0;
}
`

// hostileCompatSyscalls: the i386 and x32 ABIs cannot go around the
// filter (socketcall, x32 socket): the program is killed by SIGSYS.
func hostileCompatSyscalls(t *testing.T, l *Linux) {
	if runtime.GOARCH != "amd64" {
		t.Skip("x86_64 only")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "compat.c")
	if err := os.WriteFile(src, []byte(compatSyscalls), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "compat")
	if out, err := exec.Command(gcc, "-O0", "-o", bin, src).CombinedOutput(); err != nil {
		t.Skipf("cannot compile the test program: %v\n%s", err, out)
	}
	for _, abi := range []string{"socketcall", "x32"} {
		o := hostileExec(t, l, &Cmd{Args: []string{bin, abi}, Dir: dir, Limits: limits})
		if string(o.Stdout) != "started\n" || o.Signal != "SIGSYS" {
			t.Errorf("%s: %+v stdout %q, want killed by SIGSYS", abi, o, o.Stdout)
		}
	}
}
