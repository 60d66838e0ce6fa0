//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Hostile programs: each must end with the right verdict, leave the
// worker healthy, and the next command must run normally.

const (
	hostileTmp  = 32 << 20
	hostileFile = 16 << 20
)

func TestHostile(t *testing.T) {
	// The range of uids is the sandbox's own on this host (leased): the
	// check at the end, which is host-wide, is not confused by another
	// sandbox (another test binary, a grappe) on the machine.
	l := newTestLinux(t, Config{TmpBytes: hostileTmp, FileSizeBytes: hostileFile})
	base, count := l.cfg.UIDBase, l.cfg.UIDCount
	t.Run("group", func(t *testing.T) {
		for _, h := range hostileTests {
			t.Run(h.name, func(t *testing.T) {
				t.Parallel()
				for _, p := range h.needs {
					if _, err := os.Stat(p); err != nil {
						t.Skip(err)
					}
				}
				h.run(t, l)
				assertHealthy(t, l)
			})
		}
	})
	// Nothing of any command is left running.
	for uid := base; uid < base+count; uid++ {
		if pids := uidProcs(uid); len(pids) > 0 {
			t.Errorf("uid %d still runs %v", uid, pids)
		}
	}
}

var hostileTests = []struct {
	name  string
	needs []string
	run   func(t *testing.T, l *Linux)
}{
	{"fork bomb", []string{"/usr/bin/perl"}, func(t *testing.T, l *Linux) {
		// Every process forks for ever; the task limit stops the growth,
		// the time limit the run.
		o := hostileExec(t, l, &Cmd{Args: sh(`id -u; exec perl -e 'while (1) { fork }'`), Limits: Limits{Processes: 32, Wall: time.Second, CPU: 2 * time.Second, OutputBytes: 1 << 20}})
		if !o.TimeLimit || o.Wall > 3*time.Second {
			t.Errorf("outcome %+v", o)
		}
		assertGone(t, o)
		// The classic one returns at once, its children failing to fork.
		o = hostileExec(t, l, &Cmd{Args: sh(`id -u; f() { f | f & }; f`), Limits: Limits{Processes: 32, Wall: time.Second, OutputBytes: 1 << 20}})
		assertGone(t, o)
	}},
	{"memory bomb", []string{"/usr/bin/perl"}, func(t *testing.T, l *Linux) {
		// Several processes, each touching its pages: the cgroup counts
		// them together.
		o := hostileExec(t, l, &Cmd{Args: sh(`for i in 1 2 3 4 5 6; do perl -e '$x = "a" x (40*1024*1024); sleep 3' & done; wait`), Limits: Limits{MemoryBytes: 128 << 20, Processes: 32, Wall: 10 * time.Second}})
		if !o.MemoryLimit {
			t.Errorf("outcome %+v", o)
		}
	}},
	{"infinite loop", nil, func(t *testing.T, l *Linux) {
		o := hostileExec(t, l, &Cmd{Args: sh(`while :; do :; done`), Limits: Limits{CPU: 200 * time.Millisecond}})
		if !o.TimeLimit || o.Signal != "SIGKILL" || o.CPU < 200*time.Millisecond {
			t.Errorf("outcome %+v", o)
		}
	}},
	{"sleep forever", nil, func(t *testing.T, l *Linux) {
		o := hostileExec(t, l, &Cmd{Args: sh(`id -u; exec sleep 100000`), Limits: Limits{CPU: time.Second, Wall: 300 * time.Millisecond}})
		if !o.TimeLimit || o.Wall > 2*time.Second {
			t.Errorf("outcome %+v", o)
		}
		assertGone(t, o)
	}},
	{"1 GB of output", nil, func(t *testing.T, l *Linux) {
		o := hostileExec(t, l, &Cmd{Args: sh(`head -c 1000000000 /dev/zero & head -c 1000000000 /dev/zero >&2; wait`), Limits: Limits{OutputBytes: 1 << 20, Wall: 20 * time.Second}})
		if !o.OutputTruncated || o.Wall > 3*time.Second || len(o.Stdout) > 1<<20 || len(o.Stderr) > 1<<20 {
			t.Errorf("truncated %v wall %v stdout %d stderr %d", o.OutputTruncated, o.Wall, len(o.Stdout), len(o.Stderr))
		}
	}},
	{"fill /tmp", nil, func(t *testing.T, l *Linux) {
		// Files under the size limit, until the tmpfs is full.
		o := hostileExec(t, l, &Cmd{Args: sh(`for i in 1 2 3; do dd if=/dev/zero of=/tmp/fill$i bs=1M count=15 2>&1 | grep -o 'No space left'; done; du -sb /tmp | cut -f1`), Limits: limits})
		lines := strings.Fields(string(o.Stdout))
		if len(lines) < 2 || lines[0] != "No" {
			t.Fatalf("stdout %q stderr %q", o.Stdout, o.Stderr)
		}
		// du counts the directory's own size too.
		if used, _ := strconv.Atoi(lines[len(lines)-1]); used > hostileTmp+64<<10 {
			t.Errorf("/tmp holds %d bytes, over its %d", used, hostileTmp)
		}
	}},
	{"fill the work directory", nil, func(t *testing.T, l *Linux) {
		dir := t.TempDir()
		o := hostileExec(t, l, &Cmd{Args: sh(`dd if=/dev/zero of=big bs=1M count=100`), Dir: dir, Limits: limits})
		fi, err := os.Stat(filepath.Join(dir, "big"))
		if err != nil || fi.Size() != hostileFile {
			t.Errorf("file %v %v, want %d bytes", fi.Size(), err, hostileFile)
		}
		// dd died of SIGXFSZ; the shell reports it.
		if o.ExitCode != 128+int(unix.SIGXFSZ) {
			t.Errorf("outcome %+v %q", o, o.Stderr)
		}
	}},
	{"network", []string{"/bin/bash", "/usr/bin/getent"}, func(t *testing.T, l *Linux) {
		// The master's port, on the host's loopback.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan struct{}, 1)
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
				accepted <- struct{}{}
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		script := fmt.Sprintf(`
			(exec 3<>/dev/tcp/127.0.0.1/%d) 2>/dev/null && echo CONNECTED-LOOPBACK
			(exec 3<>/dev/tcp/1.1.1.1/53) 2>/dev/null && echo CONNECTED-REMOTE
			(exec 3<>/dev/tcp/%s/%d) 2>/dev/null && echo CONNECTED-HOST
			getent hosts example.com && echo RESOLVED
			grep -c : /proc/net/dev
			exit 0`, port, hostIP(), port)
		o := hostileExec(t, l, &Cmd{Args: []string{"/bin/bash", "-c", script}, Limits: limits})
		// Only lo: the header has no colon, the one interface line does.
		if string(o.Stdout) != "1\n" {
			t.Errorf("stdout %q stderr %q", o.Stdout, o.Stderr)
		}
		select {
		case <-accepted:
			t.Error("the host's listener accepted a connection from the sandbox")
		case <-time.After(50 * time.Millisecond):
		}
	}},
	{"secrets", nil, func(t *testing.T, l *Linux) {
		data := t.TempDir() // the worker's data directory, keys, another job
		os.WriteFile(filepath.Join(data, "key.pem"), []byte("SECRET"), 0o644)
		other := t.TempDir()
		os.WriteFile(filepath.Join(other, "main.c"), []byte("SECRET"), 0o644)
		os.Setenv("GRAPPE_TEST_SECRET", "SECRET")
		script := fmt.Sprintf(`
			for f in /etc/shadow /etc/gshadow %s/key.pem %s/main.c %s /root /home /proc/1/environ /proc/1/cmdline; do
				cat "$f" 2>/dev/null && echo "READ $f"
				ls "$f" >/dev/null 2>&1 && echo "LISTED $f"
			done
			cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n' | grep -c SECRET
			ls -d /proc/[0-9]* | grep -cx /proc/1
			exit 0`, data, other, l.cfg.Root)
		o := hostileExec(t, l, &Cmd{Args: sh(script), Limits: limits})
		if string(o.Stdout) != "0\n0\n" {
			t.Errorf("stdout %q stderr %q", o.Stdout, o.Stderr)
		}
	}},
	{"write outside the work directory", nil, func(t *testing.T, l *Linux) {
		script := `for d in / /usr /usr/bin /etc /dev /proc /bin /lib /box/..; do
				touch "$d/grappe-test" 2>/dev/null && echo "WROTE $d"
			done
			mkdir /newdir 2>/dev/null && echo MKDIR
			echo x > /etc/passwd 2>/dev/null && echo PASSWD
			chmod 777 /tmp 2>/dev/null && echo CHMOD
			exit 0`
		o := hostileExec(t, l, &Cmd{Args: sh(script), Limits: limits})
		if len(o.Stdout) != 0 {
			t.Errorf("stdout %q", o.Stdout)
		}
		if _, err := os.Stat("/usr/grappe-test"); err == nil {
			t.Error("wrote into the host's /usr")
		}
	}},
	{"kill -1 and signalling another command", nil, func(t *testing.T, l *Linux) {
		// A concurrent command; its host pids are visible to the test.
		uidc := make(chan string, 1)
		var a *Outcome
		var wg sync.WaitGroup
		wg.Go(func() {
			a = hostileExec(t, l, &Cmd{
				Args:   sh(`id -u; sleep 1.5; echo alive`),
				Limits: limits,
				OnOutput: func(_ string, data []byte) {
					select {
					case uidc <- strings.TrimSpace(string(data)):
					default:
					}
				},
			})
		})
		uid, _ := strconv.Atoi(<-uidc)
		var hostPids []string
		for _, p := range uidProcs(uid) {
			hostPids = append(hostPids, strconv.Itoa(p))
		}
		if len(hostPids) == 0 {
			t.Fatal("other command not found")
		}
		b := hostileExec(t, l, &Cmd{Args: sh(fmt.Sprintf(`
			for p in %s $(seq 2 400); do kill -9 $p 2>/dev/null && echo "KILLED $p"; done
			kill -9 -1; echo survived`, strings.Join(hostPids, " "))), Limits: limits})
		wg.Wait()
		if b.Signal != "SIGKILL" || strings.Contains(string(b.Stdout), "survived") {
			t.Errorf("kill -1: %+v %q", b, b.Stdout)
		}
		// It could only kill itself (its own pid is below 400).
		if n := strings.Count(string(b.Stdout), "KILLED"); n > 1 {
			t.Errorf("killed %d processes: %q", n, b.Stdout)
		}
		if a.ExitCode != 0 || !strings.HasSuffix(string(a.Stdout), "alive\n") {
			t.Errorf("the other command: %+v %q", a, a.Stdout)
		}
	}},
	{"ptrace and other denied calls", []string{"/usr/bin/perl"}, func(t *testing.T, l *Linux) {
		calls := map[string][]uintptr{
			"ptrace":           {unix.SYS_PTRACE, unix.PTRACE_TRACEME},
			"mount":            {unix.SYS_MOUNT, 0, 0, 0, 0, 0},
			"umount2":          {unix.SYS_UMOUNT2, 0, 0},
			"unshare user":     {unix.SYS_UNSHARE, unix.CLONE_NEWUSER},
			"unshare net":      {unix.SYS_UNSHARE, unix.CLONE_NEWNET},
			"clone user":       {unix.SYS_CLONE, unix.CLONE_NEWUSER | uintptr(unix.SIGCHLD), 0, 0, 0, 0},
			"setns":            {unix.SYS_SETNS, 0, 0},
			"bpf":              {unix.SYS_BPF, 0, 0, 0},
			"perf_event_open":  {unix.SYS_PERF_EVENT_OPEN, 0, 0, 0, 0, 0},
			"keyctl":           {unix.SYS_KEYCTL, 0},
			"userfaultfd":      {unix.SYS_USERFAULTFD, 0},
			"io_uring_setup":   {unix.SYS_IO_URING_SETUP, 1, 0},
			"process_vm_readv": {unix.SYS_PROCESS_VM_READV, 1, 0, 0, 0, 0, 0},
			"personality":      {unix.SYS_PERSONALITY, 0x0400000},
			"reboot":           {unix.SYS_REBOOT, 0, 0, 0, 0},
			"pivot_root":       {unix.SYS_PIVOT_ROOT, 0, 0},
		}
		var script strings.Builder
		for name, args := range calls {
			var a []string
			for _, v := range args {
				a = append(a, strconv.FormatUint(uint64(v), 10))
			}
			fmt.Fprintf(&script, "print \"%s|\", syscall(%s) == -1 ? ($!+0) : \"ALLOWED\", \"\\n\";\n", name, strings.Join(a, ", "))
		}
		fmt.Fprintf(&script, "print \"clone3|\", syscall(%d, 0, 0) == -1 ? ($!+0) : \"ALLOWED\", \"\\n\";\n", unix.SYS_CLONE3)
		o := hostileExec(t, l, &Cmd{Args: []string{"/usr/bin/perl", "-e", script.String()}, Limits: limits})
		for _, line := range strings.Split(strings.TrimSpace(string(o.Stdout)), "\n") {
			name, errno, _ := strings.Cut(line, "|")
			want := strconv.Itoa(int(unix.EPERM))
			if name == "clone3" {
				want = strconv.Itoa(int(unix.ENOSYS))
			}
			if errno != want {
				t.Errorf("%s: %s, want errno %s", name, errno, want)
			}
		}
		if n := strings.Count(string(o.Stdout), "\n"); n != len(calls)+1 {
			t.Errorf("%d results: %q %q", n, o.Stdout, o.Stderr)
		}
	}},
	{"socket families", []string{"/usr/bin/perl"}, hostileSocketFamilies},
	{"32-bit system calls", nil, hostileCompatSyscalls},
	{"mount and unshare commands", []string{"/usr/bin/unshare"}, func(t *testing.T, l *Linux) {
		o := hostileExec(t, l, &Cmd{Args: sh(`unshare -Ur true 2>/dev/null && echo USERNS; unshare -n true 2>/dev/null && echo NETNS; mount -t tmpfs none /tmp 2>/dev/null && echo MOUNTED; exit 0`), Limits: limits})
		if len(o.Stdout) != 0 {
			t.Errorf("stdout %q", o.Stdout)
		}
	}},
	{"setuid binary", []string{"/usr/bin/id"}, func(t *testing.T, l *Linux) {
		// A setuid-root copy of id, shown to the command (with nosuid, and
		// no_new_privs even without it).
		dir := t.TempDir()
		b, _ := os.ReadFile("/usr/bin/id")
		suid := filepath.Join(dir, "id")
		os.WriteFile(suid, b, 0o755)
		if err := os.Chmod(suid, 0o4755); err != nil {
			t.Fatal(err)
		}
		script := suid + " -u; " + suid + " -ru"
		if _, err := os.Stat("/usr/bin/su"); err == nil {
			script += "; su -c true root </dev/null 2>/dev/null && echo SU"
		}
		o := hostileExec(t, l, &Cmd{Args: sh(script + "; exit 0"), ReadOnlyPaths: []string{dir}, Limits: limits})
		lines := strings.Fields(string(o.Stdout))
		if len(lines) != 2 || lines[0] == "0" || lines[0] != lines[1] {
			t.Errorf("stdout %q stderr %q", o.Stdout, o.Stderr)
		}
	}},
	{"background child", nil, func(t *testing.T, l *Linux) {
		o := hostileExec(t, l, &Cmd{Args: sh(`id -u; sleep 100 & sleep 100 > /dev/null 2>&1 &`), Limits: limits})
		if o.ExitCode != 0 || o.Wall > 2*time.Second {
			t.Errorf("outcome %+v", o)
		}
		assertGone(t, o)
	}},
	{"setsid escape and double fork", []string{"/usr/bin/setsid"}, func(t *testing.T, l *Linux) {
		o := hostileExec(t, l, &Cmd{Args: sh(`id -u; setsid sleep 100 & (setsid sh -c 'sleep 100 &' &); sleep 0.1`), Limits: limits})
		if o.ExitCode != 0 || o.Wall > 2*time.Second {
			t.Errorf("outcome %+v", o)
		}
		assertGone(t, o)
	}},
	{"symlinks in the work directory", nil, func(t *testing.T, l *Linux) {
		victimDir := t.TempDir()
		victim := filepath.Join(victimDir, "victim")
		os.WriteFile(victim, []byte("host file"), 0o600)
		before := ownerships(t, victim, victimDir, "/etc/shadow", "/etc", "/root")
		dir := t.TempDir()
		// The command plants links; the worker then gives the directory to
		// the next command's uid.
		hostileExec(t, l, &Cmd{Args: sh(fmt.Sprintf(`ln -s %s victim; ln -s %s vdir; ln -s /etc/shadow shadow; ln -s /etc etc; ln -s /root root; mkdir d; ln -s /etc d/etc`, victim, victimDir)), Dir: dir, Limits: limits})
		o := hostileExec(t, l, &Cmd{Args: sh(`cat victim shadow 2>/dev/null; ls root/ 2>/dev/null; echo x > victim 2>/dev/null; exit 0`), Dir: dir, Limits: limits})
		if len(o.Stdout) != 0 {
			t.Errorf("read through links: %q", o.Stdout)
		}
		if after := ownerships(t, victim, victimDir, "/etc/shadow", "/etc", "/root"); !slices.Equal(before, after) {
			t.Errorf("host files changed: %v → %v", before, after)
		}
		if b, _ := os.ReadFile(victim); string(b) != "host file" {
			t.Errorf("victim %q", b)
		}
		// The links themselves were given to the command's uid.
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, "shadow"), &st); err != nil || !ownUID(l, int(st.Uid)) {
			t.Errorf("link owner %d %v", st.Uid, err)
		}
	}},
	{"huge argv and environment", nil, func(t *testing.T, l *Linux) {
		args := append([]string{"/bin/true"}, slices.Repeat([]string{strings.Repeat("a", 4096)}, 1024)...)
		env := slices.Repeat([]string{"E=" + strings.Repeat("b", 4096)}, 1024)
		for _, c := range []*Cmd{{Args: args}, {Args: []string{"/bin/true"}, Env: env}} {
			c.Dir, c.Limits = t.TempDir(), limits
			start := time.Now()
			if _, err := l.Exec(context.Background(), c); !errors.Is(err, ErrInvalidCmd) || time.Since(start) > time.Second {
				t.Errorf("error %v after %v", err, time.Since(start))
			}
		}
		// Just under the cap, it runs.
		o := hostileExec(t, l, &Cmd{Args: append([]string{"/bin/sh", "-c", `echo $#`, "sh"}, slices.Repeat([]string{strings.Repeat("a", 1000)}, 900)...), Limits: limits})
		if string(o.Stdout) != "900\n" {
			t.Errorf("stdout %q stderr %q", o.Stdout, o.Stderr)
		}
	}},
}

// hostileExec runs c in a fresh work directory unless it has one.
func hostileExec(t *testing.T, l *Linux, c *Cmd) *Outcome {
	t.Helper()
	if c.Limits == (Limits{}) {
		c.Limits = limits
	}
	if c.Limits.Wall == 0 {
		c.Limits.Wall = 20 * time.Second
	}
	return execOK(t, l, c)
}

// assertGone checks that nothing runs as the uid the command printed on
// its first line.
func assertGone(t *testing.T, o *Outcome) {
	t.Helper()
	first, _, _ := strings.Cut(string(o.Stdout), "\n")
	uid, err := strconv.Atoi(first)
	if err != nil {
		t.Fatalf("no uid in %q", o.Stdout)
	}
	if pids := uidProcs(uid); len(pids) > 0 {
		t.Errorf("processes of uid %d left: %v", uid, pids)
	}
}

// assertHealthy checks that the sandbox runs a normal command normally.
func assertHealthy(t *testing.T, l *Linux) {
	t.Helper()
	o := execOK(t, l, &Cmd{Args: sh("echo ok"), Limits: limits})
	if o.ExitCode != 0 || string(o.Stdout) != "ok\n" || o.TimeLimit || o.MemoryLimit {
		t.Errorf("next command: %+v", o)
	}
}

// ownerships describes the owner and mode of paths, to compare.
func ownerships(t *testing.T, paths ...string) []string {
	var out []string
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			out = append(out, p+": "+err.Error())
			continue
		}
		out = append(out, fmt.Sprintf("%s %d:%d %o", p, st.Uid, st.Gid, st.Mode))
	}
	return out
}

// hostIP is an address of the host other than loopback, or a documentation
// address when there is none.
func hostIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil && !ip.IP.IsLoopback() {
			return ip.IP.String()
		}
	}
	return "192.0.2.1"
}
