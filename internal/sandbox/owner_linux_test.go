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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Two sandboxes on one host: each leaves the other's cgroups and jobs
// alone, whatever pid namespace it lives in, and what a dead one left is
// removed.

// neighbourEnv, set to a state directory, makes the test binary a
// neighbouring worker: it starts a sandbox there (which cleans up at
// start), runs one command, closes it and exits.
const neighbourEnv = "GRAPPE_SANDBOX_TEST_NEIGHBOUR"

// neighbourBindEnv, with a new mount namespace, names a directory the
// neighbour binds over its state directory first: a copy of another
// sandbox's state directory at the very same path, as two containers made
// from one image have it.
const neighbourBindEnv = "GRAPPE_SANDBOX_TEST_NEIGHBOUR_BIND"

func neighbourMain() {
	dir := os.Getenv(neighbourEnv)
	if dir == "" {
		return
	}
	if err := runNeighbour(dir); err != nil {
		fmt.Fprintln(os.Stderr, "neighbour:", err)
		os.Exit(1)
	}
	fmt.Println("neighbour ok")
	os.Exit(0)
}

func runNeighbour(dir string) error {
	if os.Getpid() == 1 {
		// A pid namespace of its own (as a container or `unshare --pid
		// --fork --mount-proc` gives): its own /proc, where it sees only
		// itself.
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return err
		}
		if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return err
		}
		if src := os.Getenv(neighbourBindEnv); src != "" {
			if err := unix.Mount(src, dir, "", unix.MS_BIND, ""); err != nil {
				return err
			}
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l, err := New(Config{Root: dir, UIDCount: 100, PoolSize: 2, Logger: log})
	if err != nil {
		return err
	}
	defer l.Close()
	work, err := os.MkdirTemp(dir, "work-")
	if err != nil {
		return err
	}
	o, err := l.Exec(context.Background(), &Cmd{Args: []string{"/bin/true"}, Dir: work, Limits: limits})
	if err != nil {
		return err
	}
	if o.ExitCode != 0 {
		return fmt.Errorf("/bin/true: %+v", o)
	}
	return nil
}

// startNeighbour runs the test binary as a neighbour with state directory
// dir, in a new pid and mount namespace if newPID.
func startNeighbour(t *testing.T, dir string, newPID bool, env ...string) {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(append(os.Environ(), neighbourEnv+"="+dir), env...)
	if newPID {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS}
	}
	out, err := cmd.CombinedOutput()
	t.Logf("neighbour (new pid namespace: %v):\n%s", newPID, out)
	if err != nil || !strings.Contains(string(out), "neighbour ok") {
		t.Fatalf("neighbour: %v", err)
	}
}

// baseDirs lists a sandbox's base cgroups.
func baseDirs(l *Linux) []string { return l.BaseCgroups() }

func TestNeighbours(t *testing.T) {
	for _, tt := range []struct {
		name   string
		newPID bool
	}{{"same pid namespace", false}, {"other pid namespace", true}} {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestLinux(t, Config{StateDir: t.TempDir()})
			// A long job of A's, running while B starts.
			type result struct {
				o   *Outcome
				err error
			}
			done := make(chan result, 1)
			dir := t.TempDir()
			go func() {
				o, err := a.Exec(context.Background(), &Cmd{Args: sh("sleep 2; echo survived"), Dir: dir, Limits: limits})
				done <- result{o, err}
			}()
			time.Sleep(300 * time.Millisecond) // the job is in its cgroup
			startNeighbour(t, t.TempDir(), tt.newPID)
			r := <-done
			if r.err != nil || r.o.ExitCode != 0 || string(r.o.Stdout) != "survived\n" {
				t.Fatalf("A's job while B started: %v %+v %q", r.err, r.o, r.o.Stdout)
			}
			for _, d := range baseDirs(a) {
				if _, err := os.Stat(d); err != nil {
					t.Errorf("A's base cgroup: %v", err)
				}
			}
			assertHealthy(t, a)
		})
	}
}

// TestAbandonedCgroups: the base cgroup of a sandbox whose owner is gone
// (its lock free) is removed at the next start, with the processes left
// in it; unmarked ones (older grappe) are removed only when empty and
// unchanged for long, and never when they have runs.
func TestAbandonedCgroups(t *testing.T) {
	needRoot(t)
	discard := slog.New(slog.DiscardHandler)

	// A dead sandbox: its base cgroup, a run with a process in it, and
	// its lock released.
	dead, err := claimOwner(t.TempDir(), cgroupPrefix, discard)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newCgroupDriver("", dead)
	if err != nil {
		t.Fatal(err)
	}
	run, err := g.create("run-1")
	if err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("/bin/sleep", "1000")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Process.Kill()
	var deadDirs []string
	switch r := run.(type) {
	case *runCgroupV1:
		deadDirs = g.(*cgroupV1).bases()
		for _, d := range r.dirs {
			writeFile(t, filepath.Join(d, "cgroup.procs"), strconv.Itoa(sleeper.Process.Pid))
		}
	case *runCgroupV2:
		deadDirs = []string{g.(*cgroupV2).base}
		writeFile(t, filepath.Join(r.dir, "cgroup.procs"), strconv.Itoa(sleeper.Process.Pid))
	}
	dead.release()

	// Unmarked base cgroups, as older grappe made them, in the same
	// parents: one with a run (kept), one empty but just made (kept), one
	// empty and old (removed).
	parents := make(map[string]bool)
	for _, d := range deadDirs {
		parents[filepath.Dir(d)] = true
	}
	var withRun, fresh, stale []string
	for p := range parents {
		name := cgroupPrefix + strconv.Itoa(4_000_000+os.Getpid())
		for _, d := range []string{filepath.Join(p, name), filepath.Join(p, name, "run-1"), filepath.Join(p, name+"1"), filepath.Join(p, name+"2")} {
			if err := unix.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Rmdir(d) })
		}
		withRun = append(withRun, filepath.Join(p, name))
		fresh = append(fresh, filepath.Join(p, name+"1"))
		stale = append(stale, filepath.Join(p, name+"2"))
	}
	old := time.Now().Add(-2 * unmarkedAge)
	for _, d := range append(append([]string{}, withRun...), stale...) {
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}

	l := newTestLinux(t, Config{StateDir: t.TempDir()})
	for _, d := range append(deadDirs, stale...) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s not removed: %v", d, err)
		}
	}
	for _, d := range append(withRun, fresh...) {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
	if err := sleeper.Wait(); err == nil || sleeper.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("the process left in the dead sandbox's cgroup: %v", err)
	}
	assertHealthy(t, l)
}

// TestStateDirInUse: two sandboxes cannot share a state directory (they
// would share their cgroups).
func TestStateDirInUse(t *testing.T) {
	state := t.TempDir()
	newTestLinux(t, Config{StateDir: state})
	if _, err := New(Config{Root: t.TempDir(), StateDir: state}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second sandbox on one state directory: %v", err)
	}
	fi, err := os.Stat(filepath.Join(state, idFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("id file: %v %v", fi.Mode(), err)
	}
}

// TestCopiedStateDir: a state directory copied with its id (a cloned
// machine image, cp -a of a data directory) gives two live sandboxes one
// id. The second to start must leave the first's cgroups and jobs alone
// and take an id of its own; both then work. The copy may be at another
// path, or at the same path in another mount namespace (containers made
// from one image), where the lock file's path says nothing.
func TestCopiedStateDir(t *testing.T) {
	for _, tt := range []struct {
		name     string
		samePath bool
	}{{"at another path", false}, {"at the same path in another mount namespace", true}} {
		t.Run(tt.name, func(t *testing.T) {
			state := t.TempDir()
			a := newTestLinux(t, Config{StateDir: state})
			done := make(chan error, 1)
			go func() {
				o, err := a.Exec(context.Background(), &Cmd{Args: sh("sleep 2; echo survived"), Dir: t.TempDir(), Limits: limits})
				if err == nil && (o.ExitCode != 0 || string(o.Stdout) != "survived\n") {
					err = fmt.Errorf("%+v %q", o, o.Stdout)
				}
				done <- err
			}()
			time.Sleep(300 * time.Millisecond) // the job is in its cgroup

			// The copy, as cp -a makes it: the id and the lock file.
			cp := t.TempDir()
			for _, name := range []string{idFile, lockFile} {
				b, err := os.ReadFile(filepath.Join(state, name))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(cp, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.samePath {
				startNeighbour(t, state, true, neighbourBindEnv+"="+cp)
			} else {
				b := newTestLinux(t, Config{StateDir: cp})
				assertHealthy(t, b)
				if b.own.id == a.own.id {
					t.Errorf("the copy kept the id %s", a.own.id)
				}
			}
			if err := <-done; err != nil {
				t.Fatalf("the first sandbox's job while its copy started: %v", err)
			}
			for _, d := range baseDirs(a) {
				if _, err := os.Stat(d); err != nil {
					t.Errorf("the first sandbox's base cgroup: %v", err)
				}
			}
			assertHealthy(t, a)
			// The copy's id was replaced on disk, the original's kept.
			orig, _ := os.ReadFile(filepath.Join(state, idFile))
			copied, _ := os.ReadFile(filepath.Join(cp, idFile))
			if strings.TrimSpace(string(orig)) != a.own.id || string(orig) == string(copied) || !validID(strings.TrimSpace(string(copied))) {
				t.Errorf("ids on disk: original %q (in use %s), copy %q", orig, a.own.id, copied)
			}
		})
	}
}

// TestCopyMarkedItsCgroup: the base cgroup of a copy that runs a grappe
// from before cgroup locks is known only by its marker, which names the
// copy's lock file: held, the cgroup is left alone; free, the copy is
// gone and its leftover may go.
func TestCopyMarkedItsCgroup(t *testing.T) {
	needRoot(t)
	discard := slog.New(slog.DiscardHandler)
	orig, err := claimOwner(t.TempDir(), cgroupPrefix, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer orig.release()
	cp := t.TempDir()
	writeFile(t, filepath.Join(cp, idFile), orig.id+"\n")
	dup, err := claimOwner(cp, cgroupPrefix, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer dup.release()
	// A plain directory stands for the cgroup: tmpfs keeps trusted.*
	// attributes as cgroupfs does.
	cg := filepath.Join(t.TempDir(), dup.name())
	if err := os.Mkdir(cg, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(cg, ownerXattr, []byte(orig.lockPath), 0); err != nil {
		t.Skipf("no trusted attributes here: %v", err)
	}
	if err := dup.claimOwnBases([]string{cg}, "cgroup.procs"); !errors.Is(err, errIDInUse) {
		t.Fatalf("claiming a live copy's cgroup: %v", err)
	}
	if _, err := os.Stat(cg); err != nil || len(dup.cgLocks) != 0 {
		t.Fatalf("the live copy's cgroup: %v, locks kept %v", err, dup.cgLocks)
	}
	orig.release()
	if err := dup.claimOwnBases([]string{cg}, "cgroup.procs"); err != nil {
		t.Fatalf("claiming a stopped copy's cgroup: %v", err)
	}
	if _, err := os.Stat(cg); !os.IsNotExist(err) {
		t.Errorf("the stopped copy's leftover: %v", err)
	}
}
