//go:build linux

package sandbox

import (
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

// v2Controllers are the controllers a run cgroup needs enabled. CPU time
// comes from cpu.stat, which exists without the cpu controller.
var v2Controllers = []string{"memory", "pids"}

// cgroupV2 drives the unified hierarchy. Runs are created under a base
// cgroup beside this process's own cgroup: v2 forbids processes in a
// cgroup whose controllers are delegated to children, so when this
// process's cgroup is not the root its processes are first moved into a
// leaf (as systemd-managed services with Delegate=yes need).
type cgroupV2 struct {
	self, base string
	isRoot     bool // self is the hierarchy's root
	fs         cgroupFS
	own        *owner
}

// workerLeaf, after the prefix, names the leaf cgroup this process's
// processes move to (see enableControllers); workers sharing a parent
// cgroup share it.
const workerLeaf = "worker"

// cgroupFS makes, marks and removes cgroup directories. On cgroupfs the
// kernel fills a new directory with its control files and removes them
// with it; tests substitute a fake that does the same in a plain
// directory.
type cgroupFS struct {
	mkdir func(dir string) error
	rmdir func(dir string) error
	mark  func(own *owner, dir string) error
}

var kernelCgroupFS = cgroupFS{
	mkdir: func(dir string) error { return unix.Mkdir(dir, 0o755) },
	rmdir: cgRmdir,
	mark:  (*owner).mark,
}

// newCgroupV2 prepares the owner's base cgroup under self, this
// process's cgroup directory; isRoot says whether self is the hierarchy's
// root. Abandoned base cgroups are removed on the way (owner.sweep).
func newCgroupV2(self string, own *owner, isRoot bool) (*cgroupV2, error) {
	return newCgroupV2FS(self, own, isRoot, kernelCgroupFS)
}

func newCgroupV2FS(self string, own *owner, isRoot bool, fs cgroupFS) (*cgroupV2, error) {
	avail, err := cgRead(filepath.Join(self, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("cgroup v2: %w", err)
	}
	for _, c := range v2Controllers {
		if !slices.Contains(strings.Fields(string(avail)), c) {
			return nil, fmt.Errorf("cgroup v2: controller %s not available in %s", c, self)
		}
	}
	g := &cgroupV2{self: self, base: filepath.Join(self, own.name()), isRoot: isRoot, fs: fs, own: own}
	if err := enableControllers(self, !isRoot, own.prefix+workerLeaf, fs); err != nil {
		return nil, err
	}
	if err := own.claimOwnBases([]string{g.base}, "cgroup.procs"); err != nil {
		return nil, err
	}
	own.sweep(self, "cgroup.procs")
	if err := g.ensure(); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// ensure creates and marks the base cgroup if it does not exist (any
// more), with the controllers its runs need, delegated to it again if
// someone took them away.
func (g *cgroupV2) ensure() error {
	if err := enableControllers(g.self, !g.isRoot, g.own.prefix+workerLeaf, g.fs); err != nil {
		return err
	}
	if err := g.fs.mkdir(g.base); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("cgroup v2: %w", err)
	}
	// Locked before it is marked: a copy's is neither marked nor used.
	if err := g.own.lockCgroup(g.base); err != nil {
		return fmt.Errorf("cgroup v2: %w", err)
	}
	if err := g.fs.mark(g.own, g.base); err != nil {
		return fmt.Errorf("cgroup v2: %w", err)
	}
	return enableControllers(g.base, false, "", g.fs)
}

// enableControllers enables v2Controllers for dir's children. When
// evacuate is set, the processes in dir are moved to its child leaf
// first, since the kernel refuses to delegate controllers of a cgroup
// that has processes.
func enableControllers(dir string, evacuate bool, leaf string, fs cgroupFS) error {
	on, err := cgRead(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("cgroup v2: %w", err)
	}
	var missing []string
	for _, c := range v2Controllers {
		if !slices.Contains(strings.Fields(string(on)), c) {
			missing = append(missing, "+"+c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if evacuate {
		pids, err := cgPids(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return fmt.Errorf("cgroup v2: %w", err)
		}
		if len(pids) > 0 {
			leafDir := filepath.Join(dir, leaf)
			if err := fs.mkdir(leafDir); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("cgroup v2: %w", err)
			}
			for _, pid := range pids {
				err := cgWrite(filepath.Join(leafDir, "cgroup.procs"), strconv.Itoa(pid))
				if err != nil && !errors.Is(err, unix.ESRCH) {
					return fmt.Errorf("cgroup v2: move process %d out of %s: %w", pid, dir, err)
				}
			}
		}
	}
	if err := cgWrite(filepath.Join(dir, "cgroup.subtree_control"), strings.Join(missing, " ")); err != nil {
		return fmt.Errorf("cgroup v2: enable controllers: %w", err)
	}
	return nil
}

func (*cgroupV2) kind() string { return "cgroup-v2" }

func (g *cgroupV2) bases() []string { return []string{g.base} }

func (g *cgroupV2) create(name string) (runCgroup, error) {
	dir := filepath.Join(g.base, name)
	if err := g.fs.mkdir(dir); err != nil {
		return nil, fmt.Errorf("cgroup v2: create %s: %w", dir, err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		g.fs.rmdir(dir)
		return nil, fmt.Errorf("cgroup v2: open %s: %w", dir, err)
	}
	return &runCgroupV2{dir: dir, dirFile: os.NewFile(uintptr(fd), dir), rmdir: g.fs.rmdir}, nil
}

// close removes the base cgroup, if it is the one this sandbox locked
// (never a copy's, on which ensure failed).
func (g *cgroupV2) close() error {
	if !g.own.holdsCgroup(g.base) {
		return nil
	}
	return g.fs.rmdir(g.base)
}

type runCgroupV2 struct {
	dir     string
	dirFile *os.File
	rmdir   func(string) error
}

func (r *runCgroupV2) setLimits(memoryBytes, pids int64) error {
	if memoryBytes > 0 {
		if err := cgWrite(filepath.Join(r.dir, "memory.max"), strconv.FormatInt(memoryBytes, 10)); err != nil {
			return err
		}
		// Absent when the kernel has no swap support.
		if err := cgWrite(filepath.Join(r.dir, "memory.swap.max"), "0"); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	if pids > 0 {
		if err := cgWrite(filepath.Join(r.dir, "pids.max"), strconv.FormatInt(pids, 10)); err != nil {
			return err
		}
	}
	return nil
}

func (r *runCgroupV2) join() (*os.File, []*os.File) { return r.dirFile, nil }

func (r *runCgroupV2) cpu() (time.Duration, error) {
	b, err := cgRead(filepath.Join(r.dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	us, ok := cgKeyed(b, "usage_usec")
	if !ok {
		return 0, fmt.Errorf("cgroup v2: no usage_usec in %s/cpu.stat", r.dir)
	}
	return time.Duration(us) * time.Microsecond, nil
}

func (r *runCgroupV2) stats() (cgroupStats, error) {
	var s cgroupStats
	var err error
	if s.CPU, err = r.cpu(); err != nil {
		return s, err
	}
	// memory.peak appeared in Linux 5.19; before it the caller falls back
	// on the processes' own maximum resident size.
	if s.PeakBytes, err = cgReadInt(filepath.Join(r.dir, "memory.peak")); err != nil && !errors.Is(err, unix.ENOENT) {
		return s, err
	}
	ev, err := cgRead(filepath.Join(r.dir, "memory.events"))
	if err != nil {
		return s, err
	}
	s.OOMKills, _ = cgKeyed(ev, "oom_kill")
	return s, nil
}

// kill uses cgroup.kill (Linux 5.14), which kills atomically, forks in
// flight included; older kernels freeze, kill and thaw.
func (r *runCgroupV2) signal(sig unix.Signal) error {
	return signalProcs(filepath.Join(r.dir, "cgroup.procs"), sig)
}

func (r *runCgroupV2) kill() error {
	err := cgWrite(filepath.Join(r.dir, "cgroup.kill"), "1")
	if !errors.Is(err, unix.ENOENT) {
		return err
	}
	freeze := filepath.Join(r.dir, "cgroup.freeze")
	if err := cgWrite(freeze, "1"); err != nil {
		return err
	}
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		ev, err := cgRead(filepath.Join(r.dir, "cgroup.events"))
		if n, _ := cgKeyed(ev, "frozen"); err != nil || n == 1 {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	pids, err := cgPids(filepath.Join(r.dir, "cgroup.procs"))
	killPids(pids)
	if werr := cgWrite(freeze, "0"); werr != nil && err == nil {
		err = werr
	}
	return err
}

// recycle: never on v2. memory.peak cannot be reset before Linux 6.12,
// and a run costs one cgroup directory, not one per hierarchy.
func (r *runCgroupV2) recycle() bool { return false }

func (r *runCgroupV2) populated() (bool, error) {
	pids, err := cgPids(filepath.Join(r.dir, "cgroup.procs"))
	return len(pids) > 0, err
}

func (r *runCgroupV2) remove() error {
	if r.dirFile != nil {
		r.dirFile.Close()
		r.dirFile = nil
	}
	return r.rmdir(r.dir)
}
