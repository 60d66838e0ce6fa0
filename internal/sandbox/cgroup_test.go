//go:build linux

package sandbox

import (
	"bufio"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCgroupDirs(t *testing.T) {
	t.Parallel()
	// This machine's layout: v1 controllers with the memory controller
	// in a nested cgroup, and an empty v2 mount beside them.
	hybridSelf := `9:name=systemd:/
8:pids:/
4:memory:/process_api/6099
2:cpuacct:/
1:cpu:/
6:freezer:/
0::/
`
	hybridMounts := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	v1, v2, err := cgroupDirs([]byte(hybridSelf), []byte(hybridMounts), "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory":  "/sys/fs/cgroup/memory/process_api/6099",
		"pids":    "/sys/fs/cgroup/pids",
		"cpuacct": "/sys/fs/cgroup/cpuacct",
		"cpu":     "/sys/fs/cgroup/cpu",
		"freezer": "/sys/fs/cgroup/freezer",
	}
	for c, dir := range want {
		if v1[c] != dir {
			t.Errorf("v1 %s: %q, want %q", c, v1[c], dir)
		}
	}
	if v2 != "/sys/fs/cgroup/unified" {
		t.Errorf("v2: %q", v2)
	}

	// A systemd service on a pure v2 system, and co-mounted cpu,cpuacct.
	v2Self := "0::/system.slice/grappe.service\n"
	v2Mounts := `25 23 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	v1, v2, err = cgroupDirs([]byte(v2Self), []byte(v2Mounts), "")
	if err != nil || len(v1) != 0 || v2 != "/sys/fs/cgroup/system.slice/grappe.service" {
		t.Errorf("pure v2: v1 %v v2 %q err %v", v1, v2, err)
	}
	if cgroupV2Root("/sys/fs/cgroup/system.slice/grappe.service", []byte(v2Mounts)) || !cgroupV2Root("/sys/fs/cgroup", []byte(v2Mounts)) {
		t.Error("cgroupV2Root")
	}
	co := "2:cpu,cpuacct:/x\n"
	coMounts := "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
	v1, _, _ = cgroupDirs([]byte(co), []byte(coMounts), "")
	if v1["cpuacct"] != "/sys/fs/cgroup/cpu,cpuacct/x" || v1["cpu"] != v1["cpuacct"] {
		t.Errorf("co-mounted: %v", v1)
	}
	// Mounts outside CgroupRoot are ignored.
	v1, _, _ = cgroupDirs([]byte(hybridSelf), []byte(hybridMounts), "/elsewhere")
	if len(v1) != 0 {
		t.Errorf("outside root: %v", v1)
	}
}

// fakeCgroupFS emulates cgroupfs in a plain directory: a new cgroup gets
// the v2 control files the code under test reads and writes.
func fakeCgroupFS(t *testing.T) cgroupFS {
	return cgroupFS{
		mkdir: func(dir string) error {
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
			for name, content := range map[string]string{
				"cgroup.controllers": "memory pids", "cgroup.subtree_control": "", "cgroup.procs": "",
				"cgroup.kill": "", "cgroup.freeze": "0", "cgroup.events": "populated 0\nfrozen 0\n",
				"memory.max": "max", "memory.swap.max": "max", "memory.peak": "0", "memory.events": "oom 0\noom_kill 0\n",
				"pids.max": "max", "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
			} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			return nil
		},
		rmdir: os.RemoveAll,
		mark:  func(*owner, string) error { return nil },
	}
}

// testOwner claims a fresh state directory, released at the end of the
// test.
func testOwner(t *testing.T, prefix string) *owner {
	t.Helper()
	own, err := claimOwner(t.TempDir(), prefix, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(own.release)
	return own
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCgroupV2Fake(t *testing.T) {
	t.Parallel()
	fs := fakeCgroupFS(t)
	root := t.TempDir()
	// The worker's own cgroup, not the root, with two processes in it and
	// no controller delegated yet.
	self := filepath.Join(root, "system.slice", "grappe.service")
	if err := os.MkdirAll(filepath.Dir(self), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fs.mkdir(self); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(self, "cgroup.controllers"), "cpu io memory pids")
	writeFile(t, filepath.Join(self, "cgroup.procs"), "123\n456\n")

	g, err := newCgroupV2FS(self, testOwner(t, "grappe-"), false, fs)
	if err != nil {
		t.Fatal(err)
	}
	if g.kind() != "cgroup-v2" {
		t.Errorf("kind %q", g.kind())
	}
	// The processes were moved to a leaf, then the controllers enabled.
	if got := readFile(t, filepath.Join(self, "grappe-worker", "cgroup.procs")); got != "456" {
		t.Errorf("leaf cgroup.procs %q, want the last pid moved", got)
	}
	if got := readFile(t, filepath.Join(self, "cgroup.subtree_control")); got != "+memory +pids" {
		t.Errorf("subtree_control %q", got)
	}
	if got := readFile(t, filepath.Join(g.base, "cgroup.subtree_control")); got != "+memory +pids" {
		t.Errorf("base subtree_control %q", got)
	}

	cg, err := g.create("run-1")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(g.base, "run-1")
	if err := cg.setLimits(256<<20, 64); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"memory.max": "268435456", "memory.swap.max": "0", "pids.max": "64"} {
		if got := readFile(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if d, files := cg.join(); d == nil || len(files) != 0 {
		t.Errorf("join: v2 clones into the directory, got %v %v", d, files)
	}

	writeFile(t, filepath.Join(dir, "cpu.stat"), "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
	writeFile(t, filepath.Join(dir, "memory.peak"), "10485760\n")
	writeFile(t, filepath.Join(dir, "memory.events"), "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n")
	st, err := cg.stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU != 1500*time.Microsecond || st.PeakBytes != 10<<20 || st.OOMKills != 1 {
		t.Errorf("stats %+v", st)
	}
	// Before Linux 5.19 there is no memory.peak: 0, and the caller falls
	// back on the processes' maximum resident size.
	os.Remove(filepath.Join(dir, "memory.peak"))
	if st, err := cg.stats(); err != nil || st.PeakBytes != 0 {
		t.Errorf("without memory.peak: %+v %v", st, err)
	}

	writeFile(t, filepath.Join(dir, "cgroup.procs"), "789\n")
	if busy, err := cg.populated(); err != nil || !busy {
		t.Errorf("populated %v %v", busy, err)
	}
	// cgroup.kill is written; a real kernel then kills everything.
	if err := cg.kill(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "cgroup.kill")); got != "1" {
		t.Errorf("cgroup.kill %q", got)
	}
	// Without cgroup.kill (before 5.14): freeze, kill, thaw. The pid is
	// our own child so that killing it is harmless.
	child := exec.Command("/bin/sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "cgroup.kill"))
	writeFile(t, filepath.Join(dir, "cgroup.events"), "populated 1\nfrozen 1\n")
	writeFile(t, filepath.Join(dir, "cgroup.procs"), strconv.Itoa(child.Process.Pid)+"\n")
	if err := cg.kill(); err != nil {
		t.Fatal(err)
	}
	if err := child.Wait(); err == nil || child.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("freeze fallback did not kill: %v", err)
	}
	if got := readFile(t, filepath.Join(dir, "cgroup.freeze")); got != "0" {
		t.Errorf("left frozen: %q", got)
	}

	if err := cg.remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("run cgroup left: %v", err)
	}
	if err := g.close(); err != nil {
		t.Fatal(err)
	}
}

func TestCgroupV2FakeRootAndMissing(t *testing.T) {
	t.Parallel()
	fs := fakeCgroupFS(t)
	// At the hierarchy's root processes may stay: nothing is moved.
	root := filepath.Join(t.TempDir(), "cg")
	fs.mkdir(root)
	writeFile(t, filepath.Join(root, "cgroup.procs"), "1\n")
	g, err := newCgroupV2FS(root, testOwner(t, "grappe-"), true, fs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "grappe-worker")); !os.IsNotExist(err) {
		t.Error("processes moved out of the root cgroup")
	}
	g.close()
	// No memory controller: refused.
	other := filepath.Join(t.TempDir(), "cg")
	fs.mkdir(other)
	writeFile(t, filepath.Join(other, "cgroup.controllers"), "cpu pids")
	if _, err := newCgroupV2FS(other, testOwner(t, "grappe-"), true, fs); err == nil || !strings.Contains(err.Error(), "memory") {
		t.Errorf("no memory controller: %v", err)
	}
}

// TestCgroupV1 drives this machine's v1 hierarchies for real: limits, CPU
// accounting, and the freezer kill of a tree that keeps forking.
// testCgroupV1 creates a run cgroup in this machine's v1 hierarchies,
// removed at the end of the test; it skips without them or root.
func testCgroupV1(t *testing.T, name string) runCgroup {
	needRoot(t)
	self, _ := os.ReadFile("/proc/self/cgroup")
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	v1, _, err := cgroupDirs(self, mounts, "")
	if err != nil || v1["memory"] == "" {
		t.Skip("no cgroup v1 memory hierarchy")
	}
	g, err := newCgroupV1(v1, testOwner(t, "grappe-test-"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.close() })
	cg, err := g.create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cg.remove() })
	return cg
}

func TestCgroupV1(t *testing.T) {
	cg := testCgroupV1(t, "run-1")
	if err := cg.setLimits(64<<20, 50); err != nil {
		t.Fatal(err)
	}
	r := cg.(*runCgroupV1)
	if got := readFile(t, filepath.Join(r.memory, "memory.limit_in_bytes")); got != "67108864" {
		t.Errorf("memory limit %q", got)
	}
	if got := readFile(t, filepath.Join(r.pids, "pids.max")); got != "50" {
		t.Errorf("pids.max %q", got)
	}

	// A shell that, once in the cgroup, forks for ever (slowly enough not
	// to reach the task limit first).
	sh := exec.Command("/bin/sh", "-c", `read x; while :; do sleep 100 & sleep 0.005; done`)
	in, _ := sh.StdinPipe()
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(sh.Process.Pid)
	for _, d := range r.dirs {
		if err := cgWrite(filepath.Join(d, "cgroup.procs"), pid); err != nil {
			t.Fatal(err)
		}
	}
	in.Write([]byte("go\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, _ := cgPids(filepath.Join(r.pids, "cgroup.procs"))
		if len(pids) >= 10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if used, err := cg.cpu(); err != nil || used <= 0 {
		t.Errorf("cpu %v %v", used, err)
	}
	if err := cg.kill(); err != nil {
		t.Fatal(err)
	}
	sh.Wait()
	if ws := sh.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
		t.Errorf("shell: %v", sh.ProcessState)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		busy, err := cg.populated()
		if err != nil {
			t.Fatal(err)
		}
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("processes left after kill")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if state := readFile(t, filepath.Join(r.freezer, "freezer.state")); state != "THAWED" {
		t.Errorf("freezer left %s", state)
	}
	st, err := cg.stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU <= 0 || st.PeakBytes <= 0 || st.OOMKills != 0 {
		t.Errorf("stats %+v", st)
	}
	if err := cg.remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range r.dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left", d)
		}
	}
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// uidProcs lists the processes running as uid, on the host.
func uidProcs(uid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := os.Open(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
				if fields := strings.Fields(rest); len(fields) > 0 && fields[0] == strconv.Itoa(uid) {
					out = append(out, pid)
				}
				break
			}
		}
		f.Close()
	}
	return out
}

// TestCgroupV1Recycle: a recycled cgroup keeps its limits and rewrites only
// what the next command changes, always with memory+swap at or above the
// memory limit (the kernel refuses anything else); no limit means unlimited
// again.
func TestCgroupV1Recycle(t *testing.T) {
	cg := testCgroupV1(t, "run-recycle")
	r := cg.(*runCgroupV1)
	limit := func(name string) string { return readFile(t, filepath.Join(r.memory, name)) }
	unlimitedMem := limit("memory.limit_in_bytes") // the kernel's "no limit"
	for _, step := range []struct {
		mem, pids         int64
		wantMem, wantPids string
	}{
		{256 << 20, 64, "268435456", "64"},
		{64 << 20, 64, "67108864", "64"},   // lowered: memory before memory+swap
		{512 << 20, 10, "536870912", "10"}, // raised: memory+swap first
		{0, 0, unlimitedMem, "max"},
		{32 << 20, 5, "33554432", "5"},
	} {
		if !cg.recycle() {
			t.Fatal("an idle, clean cgroup was not recycled")
		}
		if err := cg.setLimits(step.mem, step.pids); err != nil {
			t.Fatalf("setLimits(%d, %d): %v", step.mem, step.pids, err)
		}
		if got := limit("memory.limit_in_bytes"); got != step.wantMem {
			t.Errorf("memory %d: limit_in_bytes %s, want %s", step.mem, got, step.wantMem)
		}
		if r.memswLimit >= 0 {
			if got := limit("memory.memsw.limit_in_bytes"); got != step.wantMem {
				t.Errorf("memory %d: memsw.limit_in_bytes %s, want %s", step.mem, got, step.wantMem)
			}
		}
		if got := readFile(t, filepath.Join(r.pids, "pids.max")); got != step.wantPids {
			t.Errorf("pids %d: pids.max %s, want %s", step.pids, got, step.wantPids)
		}
	}
}
