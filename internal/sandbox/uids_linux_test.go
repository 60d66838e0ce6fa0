//go:build linux

package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Two sandboxes on one host never share a uid (uids_linux.go).

func TestUIDRangesDisjoint(t *testing.T) {
	stateA := t.TempDir()
	a := newTestLinux(t, Config{StateDir: stateA})
	b := newTestLinux(t, Config{StateDir: t.TempDir()})
	for _, l := range []*Linux{a, b} {
		if l.cfg.UIDBase < autoUIDFirst || l.cfg.UIDBase+l.cfg.UIDCount > autoUIDEnd || l.cfg.UIDCount != defaultUIDCount {
			t.Errorf("automatic range %d+%d outside the space", l.cfg.UIDBase, l.cfg.UIDCount)
		}
	}
	if a.cfg.UIDBase < b.cfg.UIDBase+b.cfg.UIDCount && b.cfg.UIDBase < a.cfg.UIDBase+a.cfg.UIDCount {
		t.Fatalf("ranges overlap: %d+%d and %d+%d", a.cfg.UIDBase, a.cfg.UIDCount, b.cfg.UIDBase, b.cfg.UIDCount)
	}
	// Both run commands as their own uids, the name of which programs
	// (Java, Python's getpass) can look up.
	for _, l := range []*Linux{a, b} {
		o := execOK(t, l, &Cmd{Args: sh(`id -u; id -un; ls -ln /box/f | awk '{print $3}'`), Dir: dirWith(t, "f"), Limits: limits})
		f := strings.Fields(string(o.Stdout))
		if uid, _ := strconv.Atoi(f[0]); len(f) != 3 || !ownUID(l, uid) || f[1] != "sandbox" || f[2] != f[0] {
			t.Errorf("id and owner %q, stderr %q", o.Stdout, o.Stderr)
		}
	}

	// The range follows the id: a restarted sandbox has the same.
	base := a.cfg.UIDBase
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	again := newTestLinux(t, Config{StateDir: stateA})
	if again.cfg.UIDBase != base {
		t.Errorf("after a restart: uids from %d, before from %d", again.cfg.UIDBase, base)
	}
}

// dirWith makes a work directory holding an empty file name.
func dirWith(t *testing.T, name string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestUIDRangeInUse: an explicit range that overlaps a live sandbox's is
// refused, whoever chose it; next to it is fine.
func TestUIDRangeInUse(t *testing.T) {
	a := newTestLinux(t, Config{})
	base, count := a.cfg.UIDBase, a.cfg.UIDCount
	for _, b := range []int{base, base + count - 1, base - 10} {
		_, err := New(Config{Root: t.TempDir(), UIDBase: b, UIDCount: 100})
		if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "--uid-base") {
			t.Errorf("uids %d+100 beside %d+%d: %v", b, base, count, err)
		}
	}
	// The same explicit range twice: the second is refused.
	b := newTestLinux(t, Config{UIDBase: base + count, UIDCount: 100})
	if _, err := New(Config{Root: t.TempDir(), UIDBase: base + count, UIDCount: 100}); !errors.Is(err, ErrInUse) {
		t.Errorf("the same explicit range twice: %v", err)
	}
	// Closing gives the range back.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	newTestLinux(t, Config{UIDBase: base + count, UIDCount: 100})
}

// TestUIDRangeProbe: when the id's own range is held, the next candidate
// is taken.
func TestUIDRangeProbe(t *testing.T) {
	needRoot(t)
	state := t.TempDir()
	const id = "0123456789abcdef0123456789abcdef"
	if err := os.WriteFile(filepath.Join(state, idFile), []byte(id+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	first, _ := autoUIDBase(id, defaultUIDCount, 0)
	second, _ := autoUIDBase(id, defaultUIDCount, 1)
	held, err := leaseUIDs(uidLeaseFile, first, defaultUIDCount)
	if errors.Is(err, ErrInUse) {
		t.Skip("the test's range is held by another sandbox (this test, run elsewhere at once?)")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer held.release()
	l := newTestLinux(t, Config{StateDir: state})
	if l.cfg.UIDBase != second {
		t.Errorf("uids from %d; the id's first range %d is held, the next is %d", l.cfg.UIDBase, first, second)
	}
}

// TestUIDNeighbourForkBomb: a fork bomb that exhausts its uid's process
// limit in one sandbox does not make another sandbox's commands fail.
// With a shared uid (every worker once defaulted to 60000) the neighbour's
// fork fails with EAGAIN: RLIMIT_NPROC counts the uid's processes on the
// whole host.
func TestUIDNeighbourForkBomb(t *testing.T) {
	a := newTestLinux(t, Config{})
	b := newTestLinux(t, Config{})
	const bombProcs = 48
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// Forks until the limit refuses (the subshell then dies), and
		// holds its processes while B runs.
		_, err := a.Exec(ctx, &Cmd{
			Args:   sh(`(while :; do sleep 100 & done) 2>/dev/null; touch full; sleep 100`),
			Dir:    dir,
			Limits: Limits{Wall: 30 * time.Second, CPU: 30 * time.Second, MemoryBytes: 256 << 20, Processes: bombProcs},
		})
		done <- err
	}()
	defer func() {
		cancel()
		<-done
	}()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := os.Stat(filepath.Join(dir, "full")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fork bomb never reached its limit")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := procsInRange(a.cfg.UIDBase, a.cfg.UIDCount); n < bombProcs/2 {
		t.Fatalf("the bomb holds %d processes", n)
	}
	o := execOK(t, b, &Cmd{
		Args:   sh(`for i in 1 2 3 4 5 6 7 8; do /bin/true & done; wait; echo ok`),
		Limits: Limits{Wall: 10 * time.Second, CPU: 10 * time.Second, MemoryBytes: 64 << 20, Processes: 16},
	})
	if o.ExitCode != 0 || string(o.Stdout) != "ok\n" {
		t.Errorf("B's job beside A's fork bomb: %+v stdout %q stderr %q", o, o.Stdout, o.Stderr)
	}
}

// procsInRange counts the host's processes whose real uid is in
// [base, base+count).
func procsInRange(base, count int) int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					if uid, err := strconv.Atoi(f[0]); err == nil && uid >= base && uid < base+count {
						n++
					}
				}
				break
			}
		}
	}
	return n
}

func TestAutoUIDBase(t *testing.T) {
	for _, count := range []int{1, 100, 1000, 1001, 5000} {
		seen := make(map[int]bool)
		for probe := range 50 {
			base, ok := autoUIDBase("ab", count, probe)
			if !ok || base < autoUIDFirst || base+count > autoUIDEnd || (base-autoUIDFirst)%uidBlock != 0 || seen[base] {
				t.Fatalf("count %d probe %d: %d %v", count, probe, base, ok)
			}
			seen[base] = true
		}
	}
	x, _ := autoUIDBase("aa", 1000, 0)
	y, _ := autoUIDBase("bb", 1000, 0)
	if x == y {
		t.Errorf("two ids, one range %d", x)
	}
	if _, ok := autoUIDBase("ab", autoUIDEnd, 0); ok {
		t.Error("a range larger than the space")
	}
}

func TestCovered(t *testing.T) {
	all := []idExtent{{0, 1 << 32}}
	small := []idExtent{{0, 65536}}
	split := []idExtent{{2000, 3000}, {0, 1000}, {1000, 2000}}
	for _, tt := range []struct {
		ext        []idExtent
		first, end int
		want       bool
	}{
		{all, autoUIDFirst, autoUIDFirst + 1000, true},
		{small, 60000, 61000, true},
		{small, 65000, 66000, false},
		{small, autoUIDFirst, autoUIDFirst + 1000, false},
		{split, 500, 2500, true},
		{split, 2500, 3001, false},
		{nil, 1, 2, false},
	} {
		if got := covered(tt.ext, tt.first, tt.end); got != tt.want {
			t.Errorf("covered(%v, %d, %d) = %v", tt.ext, tt.first, tt.end, got)
		}
	}
}
