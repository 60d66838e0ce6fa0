//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newTestLinux makes a sandbox for one test, closed when it ends. It
// skips the test when not run as root.
func newTestLinux(t *testing.T, cfg Config) *Linux {
	t.Helper()
	needRoot(t)
	if cfg.Root == "" {
		cfg.Root = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// ownUID reports whether uid is one of l's.
func ownUID(l *Linux, uid int) bool {
	return uid >= l.cfg.UIDBase && uid < l.cfg.UIDBase+l.cfg.UIDCount
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// exec runs c (in a fresh work directory if c.Dir is empty) and fails the
// test on an error.
func execOK(t *testing.T, l *Linux, c *Cmd) *Outcome {
	t.Helper()
	if c.Dir == "" {
		c.Dir = t.TempDir()
	}
	o, err := l.Exec(context.Background(), c)
	if err != nil {
		t.Fatalf("Exec %q: %v", c.Args, err)
	}
	return o
}

// limits are generous defaults for tests that are not about limits.
var limits = Limits{CPU: 10 * time.Second, Wall: 20 * time.Second, MemoryBytes: 256 << 20, Processes: 64, OutputBytes: 1 << 20}

func TestLinuxExec(t *testing.T) {
	l := newTestLinux(t, Config{})
	if k := l.Kind(); k != "cgroup-v1" && k != "cgroup-v2" {
		t.Errorf("Kind %q", k)
	}
	tests := []struct {
		name  string
		cmd   Cmd
		check func(t *testing.T, o *Outcome)
	}{
		{
			name: "exit code and output",
			cmd:  Cmd{Args: sh("echo out; echo err >&2; exit 3")},
			check: func(t *testing.T, o *Outcome) {
				if o.ExitCode != 3 || o.Signal != "" || o.TimeLimit || o.MemoryLimit {
					t.Errorf("outcome %+v", o)
				}
				if string(o.Stdout) != "out\n" || string(o.Stderr) != "err\n" {
					t.Errorf("stdout %q stderr %q", o.Stdout, o.Stderr)
				}
				if o.CPU <= 0 || o.MemoryKB <= 0 || o.Wall <= 0 {
					t.Errorf("not measured: %+v", o)
				}
			},
		},
		{
			name: "signal",
			cmd:  Cmd{Args: sh("kill -SEGV $$")},
			check: func(t *testing.T, o *Outcome) {
				if o.Signal != "SIGSEGV" || o.ExitCode != 128+11 {
					t.Errorf("signal %q exit %d", o.Signal, o.ExitCode)
				}
			},
		},
		{
			name: "stdin",
			cmd:  Cmd{Args: []string{"/bin/cat"}, Stdin: []byte("hello\nworld\n")},
			check: func(t *testing.T, o *Outcome) {
				if string(o.Stdout) != "hello\nworld\n" {
					t.Errorf("stdout %q", o.Stdout)
				}
			},
		},
		{
			name: "identity",
			cmd:  Cmd{Args: sh(`id -u; id -g; id -G; pwd; hostname; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status; ls /proc/self/fd`)},
			check: func(t *testing.T, o *Outcome) {
				lines := strings.Split(strings.TrimSpace(string(o.Stdout)), "\n")
				if len(lines) < 13 {
					t.Fatalf("stdout %q stderr %q", o.Stdout, o.Stderr)
				}
				uid, _ := strconv.Atoi(lines[0])
				if !ownUID(l, uid) || lines[1] != lines[0] || lines[2] != lines[0] {
					t.Errorf("uid/gid/groups %q", lines[:3])
				}
				if lines[3] != "/box" || lines[4] != "grappe" {
					t.Errorf("cwd %q hostname %q", lines[3], lines[4])
				}
				for _, l := range lines[5:10] {
					if !strings.HasSuffix(l, "0000000000000000") {
						t.Errorf("capabilities: %q", l)
					}
				}
				if lines[10] != "NoNewPrivs:\t1" || lines[11] != "Seccomp:\t2" {
					t.Errorf("%q %q", lines[10], lines[11])
				}
				// ls's own directory descriptor is 3.
				if fds := strings.Join(lines[12:], " "); fds != "0 1 2 3" {
					t.Errorf("open descriptors: %s", fds)
				}
			},
		},
		{
			name: "environment only as given, work dir rewritten",
			cmd:  Cmd{Args: sh(`env | sort`), Env: []string{"A=1", "HOME=@DIR@", "P=@DIR@/x:/usr/bin"}},
			check: func(t *testing.T, o *Outcome) {
				var got []string
				for _, kv := range strings.Split(strings.TrimSpace(string(o.Stdout)), "\n") {
					// What the shell itself sets.
					if k, _, _ := strings.Cut(kv, "="); k != "PWD" && k != "OLDPWD" && k != "SHLVL" && k != "_" {
						got = append(got, kv)
					}
				}
				if want := []string{"A=1", "HOME=/box", "P=/box/x:/usr/bin"}; !slices.Equal(got, want) {
					t.Errorf("env %q, want %q", got, want)
				}
			},
		},
		{
			name: "wall limit",
			cmd:  Cmd{Args: []string{"/bin/sleep", "10"}, Limits: Limits{Wall: 200 * time.Millisecond}},
			check: func(t *testing.T, o *Outcome) {
				if !o.TimeLimit || o.Signal != "SIGKILL" || o.Wall > 2*time.Second {
					t.Errorf("outcome %+v", o)
				}
			},
		},
		{
			name: "cpu limit",
			cmd:  Cmd{Args: sh("while :; do :; done"), Limits: Limits{CPU: 300 * time.Millisecond}},
			check: func(t *testing.T, o *Outcome) {
				if !o.TimeLimit || o.CPU < 300*time.Millisecond || o.CPU > 800*time.Millisecond {
					t.Errorf("outcome %+v", o)
				}
			},
		},
		{
			name: "output limit",
			cmd:  Cmd{Args: []string{"/usr/bin/yes"}, Limits: Limits{OutputBytes: 1000, Wall: 10 * time.Second}},
			check: func(t *testing.T, o *Outcome) {
				if !o.OutputTruncated || len(o.Stdout) != 1000 || o.Signal != "SIGKILL" || o.TimeLimit {
					t.Errorf("truncated %v len %d signal %q tle %v", o.OutputTruncated, len(o.Stdout), o.Signal, o.TimeLimit)
				}
			},
		},
		{
			name: "memory limit",
			cmd:  Cmd{Args: []string{"/usr/bin/perl", "-e", `$x = "a" x (400*1024*1024); print length($x)`}, Limits: Limits{MemoryBytes: 64 << 20, Wall: 20 * time.Second}},
			check: func(t *testing.T, o *Outcome) {
				if !o.MemoryLimit || o.Signal != "SIGKILL" || o.MemoryKB < 60<<10 || o.MemoryKB > 66<<10 {
					t.Errorf("outcome %+v stderr %q", o, o.Stderr)
				}
			},
		},
		{
			name: "memory under the limit is measured",
			cmd:  Cmd{Args: []string{"/usr/bin/perl", "-e", `$x = "a" x (40*1024*1024); print length($x)`}, Limits: Limits{MemoryBytes: 256 << 20}},
			check: func(t *testing.T, o *Outcome) {
				if o.MemoryLimit || o.ExitCode != 0 || o.MemoryKB < 40<<10 || o.MemoryKB > 120<<10 {
					t.Errorf("outcome %+v", o)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.cmd
			c.Dir = t.TempDir()
			for i, e := range c.Env {
				c.Env[i] = strings.ReplaceAll(e, "@DIR@", c.Dir)
			}
			if c.Limits == (Limits{}) {
				c.Limits = limits
			}
			if _, err := os.Stat(c.Args[0]); err != nil {
				t.Skip(err)
			}
			start := time.Now()
			o := execOK(t, l, &c)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			tt.check(t, o)
		})
	}
}

func TestLinuxWorkDir(t *testing.T) {
	l := newTestLinux(t, Config{})
	dir := t.TempDir()
	// A program written by the worker (root) into the work directory.
	script := "#!/bin/sh\necho made > out.txt\nmkdir -p sub/deeper && echo deep > sub/deeper/f\ncat in.txt\n"
	if err := os.WriteFile(filepath.Join(dir, "prog"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("input\n"), 0o600)
	o := execOK(t, l, &Cmd{Args: []string{"./prog"}, Dir: dir, Limits: limits})
	if o.ExitCode != 0 || string(o.Stdout) != "input\n" {
		t.Fatalf("outcome %+v stderr %q", o, o.Stderr)
	}
	for _, f := range []string{"out.txt", "sub/deeper/f"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; !ownUID(l, int(uid)) {
			t.Errorf("%s owned by %d", f, uid)
		}
	}
	// The same directory for a second command (another uid): it owns
	// everything, including what the first one made.
	o = execOK(t, l, &Cmd{Args: sh("echo again >> out.txt && rm -r sub && id -u"), Dir: dir, Limits: limits})
	if o.ExitCode != 0 {
		t.Fatalf("second command: %+v %q", o, o.Stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out.txt")); string(b) != "made\nagain\n" {
		t.Errorf("out.txt %q", b)
	}
	// The worker (root) can still remove it all.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
}

func TestLinuxErrors(t *testing.T) {
	l := newTestLinux(t, Config{})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notexec"), []byte("#!/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "garbage"), []byte("\x01\x02\x03\x04garbage"), 0o755)
	for _, tt := range []struct {
		name  string
		cmd   Cmd
		want  error
		errno syscall.Errno
	}{
		{"missing program", Cmd{Args: []string{"/no/such/program"}}, ErrExec, syscall.ENOENT},
		{"host path not in the sandbox", Cmd{Args: []string{os.Args[0]}}, ErrExec, syscall.ENOENT},
		{"not executable", Cmd{Args: []string{"./notexec"}}, ErrExec, syscall.EACCES},
		{"not a program", Cmd{Args: []string{"./garbage"}}, ErrExec, syscall.ENOEXEC},
		{"one argument too long", Cmd{Args: []string{"/bin/true", strings.Repeat("x", 200<<10)}}, ErrExec, syscall.E2BIG},
		{"bare name", Cmd{Args: []string{"true"}}, ErrInvalidCmd, 0},
		{"no program", Cmd{}, ErrInvalidCmd, 0},
		{"NUL", Cmd{Args: []string{"/bin/echo", "a\x00b"}}, ErrInvalidCmd, 0},
		{"arguments too long", Cmd{Args: append([]string{"/bin/true"}, slices.Repeat([]string{strings.Repeat("x", 1000)}, 2000)...)}, ErrInvalidCmd, 0},
		{"environment too long", Cmd{Args: []string{"/bin/true"}, Env: slices.Repeat([]string{"X=" + strings.Repeat("y", 100<<10)}, 20)}, ErrInvalidCmd, 0},
		{"bad extra path", Cmd{Args: []string{"/bin/true"}, ReadOnlyPaths: []string{"/"}}, ErrInvalidCmd, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cmd
			c.Dir = dir
			c.Limits = limits
			start := time.Now()
			_, err := l.Exec(context.Background(), &c)
			if !errors.Is(err, tt.want) || tt.errno != 0 && !errors.Is(err, tt.errno) {
				t.Errorf("error %v, want %v (%v)", err, tt.want, tt.errno)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	if _, err := l.Exec(context.Background(), &Cmd{Args: []string{"/bin/true"}}); !errors.Is(err, ErrInvalidCmd) {
		t.Errorf("no work dir: %v", err)
	}
	// The sandbox still works.
	if o := execOK(t, l, &Cmd{Args: []string{"/bin/true"}, Limits: limits}); o.ExitCode != 0 {
		t.Errorf("after errors: %+v", o)
	}
}

func TestLinuxContextAndConcurrency(t *testing.T) {
	l := newTestLinux(t, Config{PoolSize: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := l.Exec(ctx, &Cmd{Args: []string{"/bin/sleep", "30"}, Dir: t.TempDir(), Limits: limits})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("cancelled: %v after %v", err, time.Since(start))
	}

	// More commands at once than prepared sandboxes; every one gets its
	// own uid.
	var mu sync.Mutex
	uids := make(map[string]bool)
	var wg sync.WaitGroup
	for i := 0; i < 24; i++ {
		wg.Go(func() {
			o, err := l.Exec(context.Background(), &Cmd{Args: sh("id -u; sleep 0.2"), Dir: t.TempDir(), Limits: limits})
			if err != nil || o.ExitCode != 0 {
				t.Errorf("concurrent: %v %+v", err, o)
				return
			}
			mu.Lock()
			uids[string(o.Stdout)] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(uids) != 24 {
		t.Errorf("%d distinct uids for 24 concurrent commands", len(uids))
	}
}

// TestLinuxReset checks that a sandbox serving its next command has
// nothing left of the previous one.
func TestLinuxReset(t *testing.T) {
	l := newTestLinux(t, Config{PoolSize: 1})
	have := func(p string) bool { _, err := os.Stat(p); return err == nil }
	ipc := have("/usr/bin/ipcmk") && have("/usr/bin/ipcs")
	dirty := `echo x > /tmp/left; mkdir /tmp/d; touch /dev/shm/shm; sleep 100 & echo pid $$`
	if ipc {
		dirty += `; ipcmk -M 4096 >/dev/null; ipcmk -Q >/dev/null; ipcmk -S 2 >/dev/null`
	}
	check := `ls -A /tmp /dev/mqueue; ps -e -o pid= | wc -l`
	if ipc {
		check += `; ipcs | grep -c '^0x'`
	}
	o := execOK(t, l, &Cmd{Args: sh(dirty), Limits: limits})
	if o.ExitCode != 0 {
		t.Fatalf("dirty: %+v %q", o, o.Stderr)
	}
	if o.Wall > 5*time.Second {
		t.Errorf("a background child held the command open: %v", o.Wall)
	}
	o = execOK(t, l, &Cmd{Args: sh(check), Limits: limits})
	want := "/dev/mqueue:\n\n/tmp:\n3\n" // ps, wc and the shell
	if ipc {
		want += "0\n"
	}
	if string(o.Stdout) != want {
		t.Errorf("next command sees %q, want %q (stderr %q)", o.Stdout, want, o.Stderr)
	}
}

func TestLinuxSingleUse(t *testing.T) {
	l := newTestLinux(t, Config{SingleUse: true, PoolSize: 1})
	for i := 0; i < 5; i++ {
		// A fresh pid namespace each time: the command's pid comes right
		// after the init's threads', where a reused sandbox counts on.
		o := execOK(t, l, &Cmd{Args: sh("echo $$"), Limits: limits})
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(o.Stdout))); pid < 2 || pid > 16 {
			t.Errorf("run %d: pid %q", i, o.Stdout)
		}
	}
}

// TestLinuxWithoutMountAPI runs the path for kernels before 5.2, where
// each command gets a sandbox built with its directories.
func TestLinuxWithoutMountAPI(t *testing.T) {
	l := newTestLinux(t, Config{forceBinds: true})
	if l.mountAPI {
		t.Fatal("mount API still used")
	}
	extra := t.TempDir()
	os.WriteFile(filepath.Join(extra, "hello"), []byte("#!/bin/sh\necho hello\n"), 0o755)
	o := execOK(t, l, &Cmd{Args: []string{filepath.Join(extra, "hello")}, ReadOnlyPaths: []string{extra}, Limits: limits})
	if o.ExitCode != 0 || string(o.Stdout) != "hello\n" {
		t.Errorf("outcome %+v %q", o, o.Stderr)
	}
	o = execOK(t, l, &Cmd{Args: sh("echo x > f && cat f"), Limits: limits})
	if string(o.Stdout) != "x\n" {
		t.Errorf("stdout %q stderr %q", o.Stdout, o.Stderr)
	}
}

// Toolchains of this machine that live under /root.
const (
	rustSysroot = "/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu"
	pyenvPython = "/root/.pyenv/versions/3.11.7/bin/python3"
)

// TestLinuxToolchains runs what the runner runs, under the default 256 MB
// memory limit: counting real memory, not address space, lets the JVM, Go
// and node start.
func TestLinuxToolchains(t *testing.T) {
	l := newTestLinux(t, Config{})
	lim := Limits{CPU: 10 * time.Second, Wall: 30 * time.Second, MemoryBytes: 256 << 20, Processes: 64, OutputBytes: 1 << 20}
	gobin := t.TempDir()
	hello := filepath.Join(gobin, "main.go")
	os.WriteFile(hello, []byte("package main\nimport \"fmt\"\nfunc main() { fmt.Println(\"hello go\") }\n"), 0o644)
	build := exec.Command("go", "build", "-o", filepath.Join(gobin, "hello"), hello)
	build.Dir = gobin
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	goOK := build.Run() == nil
	for _, tt := range []struct {
		name, want string
		args       []string
		dir        string // copied into the work directory
	}{
		{"java", `version "`, []string{"/usr/bin/java", "-Xshare:auto", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", "-version"}, ""},
		{"node", "hello node", []string{"/usr/bin/node", "-e", "console.log('hello node')"}, ""},
		{"python", "hello python", []string{"/usr/bin/python3", "-c", "print('hello python')"}, ""},
		{"go", "hello go", []string{"./hello"}, gobin},
		{"gcc", "hello c", sh(`printf '#include <stdio.h>\nint main(void){puts("hello c");}\n' > m.c && gcc -O2 -o m m.c && ./m`), ""},
		// Toolchains under /root, shown by their directory only.
		{"rust", "hello rust", sh(`printf 'fn main() { println!("hello rust"); }\n' > m.rs && ` + rustSysroot + `/bin/rustc -O -o m m.rs && ./m`), ""},
		{"pyenv", "hello pyenv", []string{pyenvPython, "-c", "print('hello pyenv')"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.name == "go" && !goOK {
				t.Skip("no go toolchain")
			}
			if _, err := os.Stat(tt.args[0]); err != nil && filepath.IsAbs(tt.args[0]) {
				t.Skip(err)
			}
			var ro []string
			switch tt.name {
			case "rust":
				ro = []string{rustSysroot}
			case "pyenv":
				ro = []string{filepath.Dir(filepath.Dir(pyenvPython))}
			}
			for _, d := range ro {
				if _, err := os.Stat(d); err != nil {
					t.Skip(err)
				}
			}
			dir := t.TempDir()
			if tt.dir != "" {
				b, _ := os.ReadFile(filepath.Join(tt.dir, "hello"))
				os.WriteFile(filepath.Join(dir, "hello"), b, 0o755)
			}
			o := execOK(t, l, &Cmd{Args: tt.args, Dir: dir, Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir}, ReadOnlyPaths: ro, Limits: lim})
			out := string(o.Stdout) + string(o.Stderr)
			if o.ExitCode != 0 || !strings.Contains(out, tt.want) {
				t.Errorf("outcome %+v\n%s", o, out)
			}
			t.Logf("%s: cpu %v wall %v memory %d KB", tt.name, o.CPU, o.Wall, o.MemoryKB)
		})
	}
}

// TestLinuxRecycle checks that reused cgroups (v1) and sandboxes measure
// each command on its own.
func TestLinuxRecycle(t *testing.T) {
	l := newTestLinux(t, Config{PoolSize: 1})
	dir := t.TempDir()
	lim := limits
	lim.MemoryBytes = 64 << 20
	// Heavy commands first: CPU, an OOM kill, a large file.
	o := execOK(t, l, &Cmd{Args: sh(`i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done`), Dir: dir, Limits: lim})
	if o.CPU < 50*time.Millisecond {
		t.Fatalf("busy loop used %v", o.CPU)
	}
	if _, err := os.Stat("/usr/bin/perl"); err == nil {
		o = execOK(t, l, &Cmd{Args: []string{"/usr/bin/perl", "-e", `$x = "a" x (100*1024*1024)`}, Dir: dir, Limits: lim})
		if !o.MemoryLimit {
			t.Fatalf("no OOM: %+v", o)
		}
	}
	execOK(t, l, &Cmd{Args: sh(`head -c 8000000 /dev/zero > big`), Dir: dir, Limits: lim})
	created := l.cgSeq.Load()
	for i := 0; i < 20; i++ {
		o := execOK(t, l, &Cmd{Args: []string{"/bin/true"}, Dir: dir, Limits: lim})
		if o.ExitCode != 0 || o.MemoryLimit || o.TimeLimit || o.CPU > 20*time.Millisecond || o.MemoryKB > 4<<10 {
			t.Errorf("run %d: %+v", i, o)
		}
	}
	if l.Kind() == "cgroup-v1" {
		if n := l.cgSeq.Load() - created; n > 6 {
			t.Errorf("%d cgroups created for 20 commands", n)
		}
	}
}

// TestLinuxDeadSandbox kills a prepared sandbox behind the pool's back:
// the next command runs in another.
func TestLinuxDeadSandbox(t *testing.T) {
	l := newTestLinux(t, Config{PoolSize: 1})
	execOK(t, l, &Cmd{Args: []string{"/bin/true"}, Limits: limits})
	for _, wait := range []bool{true, false} {
		// Leave the dead one alone in the pool (the filler may still add
		// others).
		dead := <-l.pool.slots
	drain:
		for {
			select {
			case s := <-l.pool.slots:
				l.pool.discard(s)
			default:
				break drain
			}
		}
		dead.kill()
		if wait {
			<-dead.exited
		}
		select {
		case l.pool.slots <- dead:
		default:
			l.pool.discard(dead)
		}
		if o := execOK(t, l, &Cmd{Args: sh("echo ok"), Limits: limits}); string(o.Stdout) != "ok\n" {
			t.Errorf("outcome %+v", o)
		}
	}
}

// TestLinuxClose checks that Close ends every sandbox and goroutine and
// removes the cgroups.
func TestLinuxClose(t *testing.T) {
	needRoot(t)
	before := runtime.NumGoroutine()
	l, err := New(Config{Root: t.TempDir(), PoolSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Cmd{
		{Args: sh("sleep 100 & echo x")},
		{Args: []string{"/usr/bin/yes"}, Limits: Limits{OutputBytes: 10}},
		{Args: []string{"/bin/sleep", "100"}, Limits: Limits{Wall: 50 * time.Millisecond}},
	} {
		c.Dir = t.TempDir()
		if _, err := l.Exec(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	var bases []string
	switch g := l.cg.(type) {
	case *cgroupV1:
		bases = g.bases()
	case *cgroupV2:
		bases = []string{g.base}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Exec(context.Background(), &Cmd{Args: []string{"/bin/true"}, Dir: t.TempDir()}); !errors.Is(err, ErrClosed) {
		t.Errorf("Exec after Close: %v", err)
	}
	for _, b := range bases {
		if _, err := os.Stat(b); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left: %v", b, err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after, %d before", n, before)
	}
}

// TestLinuxStackedFilter runs commands as on cgroup v2, where the init
// may use clone3 and each command stacks a filter denying it.
func TestLinuxStackedFilter(t *testing.T) {
	if _, err := os.Stat("/usr/bin/perl"); err != nil {
		t.Skip(err)
	}
	l := newTestLinux(t, Config{forceClone3: true})
	script := fmt.Sprintf(`print syscall(%d, 0, 0) == -1 ? ($!+0) : "ALLOWED", "\n"; print syscall(%d, %d) == -1 ? ($!+0) : "ALLOWED", "\n"; system("grep Seccomp_filters /proc/self/status")`,
		unix.SYS_CLONE3, unix.SYS_UNSHARE, unix.CLONE_NEWUSER)
	o := execOK(t, l, &Cmd{Args: []string{"/usr/bin/perl", "-e", script}, Limits: limits})
	want := fmt.Sprintf("%d\n%d\nSeccomp_filters:\t2\n", unix.ENOSYS, unix.EPERM)
	if string(o.Stdout) != want {
		t.Errorf("stdout %q, want %q (stderr %q)", o.Stdout, want, o.Stderr)
	}
}
