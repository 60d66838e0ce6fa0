//go:build linux

package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupStats is what a run used, read from its cgroup once every process
// in it has exited.
type cgroupStats struct {
	CPU       time.Duration
	PeakBytes int64 // 0 when the kernel does not record it
	OOMKills  int64
}

// cgroupDriver creates the cgroups of runs under the sandbox's own base
// cgroup. There is one implementation per cgroup version, each working on
// plain files under a root directory, so the logic can be tested against
// a fake tree.
type cgroupDriver interface {
	kind() string
	create(name string) (runCgroup, error)
	// ensure re-creates the base cgroup if it was removed from under the
	// sandbox (an operator, a neighbour running an older grappe).
	ensure() error
	// close removes the base cgroup; every run cgroup must be gone.
	close() error
	// bases lists the base cgroup's directories, one per hierarchy.
	bases() []string
}

// runCgroup is the cgroup of one run.
type runCgroup interface {
	// setLimits sets the memory limit (swap off) and the task limit; zero
	// leaves a resource unlimited.
	setLimits(memoryBytes, pids int64) error
	// join says how a new process enters the cgroup: with clone3's
	// CLONE_INTO_CGROUP on the directory (v2), else by writing "0" to each
	// of the files (v1: every hierarchy's tasks file).
	join() (dir *os.File, files []*os.File)
	// cpu is the CPU time used so far, cheap enough to poll.
	cpu() (time.Duration, error)
	stats() (cgroupStats, error)
	// kill sends SIGKILL to every process in the cgroup, including ones
	// forking at that moment.
	kill() error
	// signal sends sig to every process in the cgroup (a client's signal
	// to an interactive run); one forking at that moment may miss it.
	signal(sig unix.Signal) error
	// populated reports whether any process is left.
	populated() (bool, error)
	// recycle makes an empty cgroup ready for another command, if what the
	// last one left does not disturb the next one's measurements (see
	// recycleMaxBytes); false means it must be removed.
	recycle() bool
	// remove closes the join files and removes the (empty) cgroup.
	remove() error
}

// recycleMaxBytes is the most memory a command may leave charged to its
// cgroup (kernel objects, page cache of files it wrote) for the cgroup to
// serve another command; the next command's peak then includes it. The
// usual leftover of a short program is 100-300 KiB.
const recycleMaxBytes = 1 << 20

// newCgroupDriver finds the cgroup hierarchies this process lives in, under
// root (the mount point of the cgroup file systems), and prepares the
// owner's base cgroup under this process's own cgroup in each. cgroup v1 is
// used when the memory controller is on a v1 hierarchy (hybrid systems
// keep an empty v2 mount beside it); otherwise v2.
func newCgroupDriver(root string, own *owner) (cgroupDriver, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	v1, v2, err := cgroupDirs(self, mounts, root)
	if err != nil {
		return nil, err
	}
	if v1["memory"] != "" {
		return newCgroupV1(v1, own)
	}
	if v2 != "" {
		return newCgroupV2(v2, own, cgroupV2Root(v2, mounts))
	}
	return nil, errors.New("no usable cgroup hierarchy with a memory controller")
}

// cgroupV2Root reports whether dir is the root of its cgroup v2 hierarchy
// (where processes and child cgroups may coexist).
func cgroupV2Root(dir string, mountinfo []byte) bool {
	for _, m := range parseMountinfo(mountinfo) {
		if m.fstype == "cgroup2" && m.root == "/" && filepath.Clean(m.point) == filepath.Clean(dir) {
			return true
		}
	}
	return false
}

// cgroupDirs maps each v1 controller to this process's directory in its
// hierarchy, and returns its v2 directory ("" if there is no v2 mount).
func cgroupDirs(self, mountinfo []byte, root string) (v1 map[string]string, v2 string, err error) {
	paths := make(map[string]string) // controller (or "" for v2) → path in the hierarchy
	for line := range strings.Lines(string(self)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			paths[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			paths[c] = parts[2]
		}
	}
	v1 = make(map[string]string)
	for _, m := range parseMountinfo(mountinfo) {
		if root != "" && !within(m.point, root) {
			continue
		}
		switch m.fstype {
		case "cgroup":
			for _, c := range strings.Split(m.super, ",") {
				p, ok := paths[c]
				if !ok || v1[c] != "" {
					continue
				}
				if rel, ok := relPath(m.root, p); ok {
					v1[c] = filepath.Join(m.point, rel)
				}
			}
		case "cgroup2":
			if p, ok := paths[""]; ok && v2 == "" {
				if rel, ok := relPath(m.root, p); ok {
					v2 = filepath.Join(m.point, rel)
				}
			}
		}
	}
	return v1, v2, nil
}

type mountEntry struct {
	root, point, fstype, super string
}

// parseMountinfo reads /proc/self/mountinfo lines (see proc(5)).
func parseMountinfo(data []byte) []mountEntry {
	var out []mountEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+4 {
			continue
		}
		out = append(out, mountEntry{
			root:   unescapeMount(f[3]),
			point:  unescapeMount(f[4]),
			fstype: f[sep+1],
			super:  f[sep+3],
		})
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, …).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// relPath returns p relative to the mount's root, if p lies under it.
func relPath(mountRoot, p string) (string, bool) {
	rel, err := filepath.Rel(mountRoot, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return rel, true
}

// within reports whether p is dir or lies under it.
func within(p, dir string) bool {
	p, dir = filepath.Clean(p), filepath.Clean(dir)
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// cgWrite writes a cgroup control file, which must exist.
func cgWrite(path, value string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}

// cgRead reads a (small) cgroup control file.
func cgRead(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

// cgReadInt reads a file holding one integer ("max" reads as -1).
func cgReadInt(path string) (int64, error) {
	b, err := cgRead(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return n, nil
}

// cgKeyed returns the value of key in a "key value" per line file
// (memory.events, cpu.stat, memory.oom_control).
func cgKeyed(data []byte, key string) (int64, bool) {
	for line := range strings.Lines(string(data)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// cgPids lists the pids in a cgroup.procs (or tasks) file.
func cgPids(path string) ([]int, error) {
	b, err := cgRead(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// cgRmdir removes a cgroup directory, retrying while the kernel still
// counts processes that have just been reaped.
func cgRmdir(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(time.Duration(i+1) * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// signalProcs sends sig to each process listed in a cgroup.procs file.
func signalProcs(procs string, sig unix.Signal) error {
	pids, err := cgPids(procs)
	for _, pid := range pids {
		_ = unix.Kill(pid, sig)
	}
	return err
}

// killPids sends SIGKILL to each pid; ESRCH (already gone) is fine.
func killPids(pids []int) {
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

// removeTree kills the processes of a cgroup subtree and removes it,
// deepest first. Best effort.
func removeTree(dir, procsFile string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeTree(filepath.Join(dir, e.Name()), procsFile)
		}
	}
	if pids, err := cgPids(filepath.Join(dir, procsFile)); err == nil && len(pids) > 0 {
		killPids(pids)
	}
	// A frozen process cannot die.
	_ = cgWrite(filepath.Join(dir, "freezer.state"), "THAWED")
	_ = cgWrite(filepath.Join(dir, "cgroup.freeze"), "0")
	_ = cgRmdir(dir)
}
