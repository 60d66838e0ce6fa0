//go:build linux

package sandbox

import (
	"context"
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
func startNeighbour(t *testing.T, dir string, newPID bool) {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), neighbourEnv+"="+dir)
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
func baseDirs(l *Linux) []string {
	switch g := l.cg.(type) {
	case *cgroupV1:
		return g.bases()
	case *cgroupV2:
		return []string{g.base}
	}
	return nil
}

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
