//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupV1 drives the v1 hierarchies: memory (limit, swap limit, peak,
// OOM kills), pids (task limit), cpuacct (CPU time) and, when mounted,
// freezer (to kill a tree that keeps forking). Each run gets a cgroup of
// the same name in each of them.
type cgroupV1 struct {
	memory, pids, cpuacct, freezer string // base directories; freezer may be ""
	own                            *owner
}

// newCgroupV1 creates the owner's base cgroup under this process's
// cgroup in each hierarchy; dirs maps controllers to those (see
// cgroupDirs). Abandoned base cgroups are removed on the way (owner.sweep).
func newCgroupV1(dirs map[string]string, own *owner) (*cgroupV1, error) {
	for _, c := range []string{"memory", "pids", "cpuacct"} {
		if dirs[c] == "" {
			return nil, fmt.Errorf("cgroup v1: no %s hierarchy", c)
		}
	}
	g := &cgroupV1{own: own}
	for _, p := range []struct {
		ctrl string
		dst  *string
	}{{"memory", &g.memory}, {"pids", &g.pids}, {"cpuacct", &g.cpuacct}, {"freezer", &g.freezer}} {
		if parent := dirs[p.ctrl]; parent != "" {
			*p.dst = filepath.Join(parent, own.name())
		}
	}
	if err := own.claimOwnBases(g.bases(), "cgroup.procs"); err != nil {
		return nil, err
	}
	for _, base := range g.bases() {
		own.sweep(filepath.Dir(base), "cgroup.procs")
	}
	if err := g.ensure(); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// ensure creates and marks the base cgroups that do not exist (any more).
func (g *cgroupV1) ensure() error {
	for _, dir := range g.bases() {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cgroup v1: %w", err)
		}
		// Locked before it is marked: a copy's is neither marked
		// nor used.
		if err := g.own.lockCgroup(dir); err != nil {
			return fmt.Errorf("cgroup v1: %w", err)
		}
		if err := g.own.mark(dir); err != nil {
			return fmt.Errorf("cgroup v1: %w", err)
		}
	}
	return nil
}

func (*cgroupV1) kind() string { return "cgroup-v1" }

// bases lists the distinct base directories (controllers may share a
// hierarchy, as cpu,cpuacct usually do).
func (g *cgroupV1) bases() []string {
	var out []string
	for _, d := range []string{g.memory, g.pids, g.cpuacct, g.freezer} {
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

func (g *cgroupV1) create(name string) (runCgroup, error) {
	r := &runCgroupV1{
		memLimit: -1, memswLimit: -1, pidsMax: -1, usage: -1, peak: -1, oom: -1,
		curMemory: unlimited, curPids: unlimited,
		memory:  filepath.Join(g.memory, name),
		pids:    filepath.Join(g.pids, name),
		cpuacct: filepath.Join(g.cpuacct, name),
	}
	if g.freezer != "" {
		r.freezer = filepath.Join(g.freezer, name)
	}
	for _, base := range g.bases() {
		dir := filepath.Join(base, name)
		if err := unix.Mkdir(dir, 0o700); err != nil {
			r.remove()
			return nil, fmt.Errorf("cgroup v1: create %s: %w", dir, err)
		}
		r.dirs = append(r.dirs, dir)
		fd, err := unix.Open(filepath.Join(dir, "tasks"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			r.remove()
			return nil, fmt.Errorf("cgroup v1: open %s/tasks: %w", dir, err)
		}
		r.tasks = append(r.tasks, os.NewFile(uintptr(fd), "tasks"))
	}
	// The files read and written for every command, opened now, off the
	// command's path.
	for _, f := range []struct {
		fd             *int
		dir, name      string
		write, missing bool // missing: may not exist
	}{
		{&r.memLimit, r.memory, "memory.limit_in_bytes", true, false},
		{&r.memswLimit, r.memory, "memory.memsw.limit_in_bytes", true, true},
		{&r.pidsMax, r.pids, "pids.max", true, false},
		{&r.usage, r.cpuacct, "cpuacct.usage", true, false},
		{&r.peak, r.memory, "memory.max_usage_in_bytes", true, false},
		{&r.oom, r.memory, "memory.oom_control", false, false},
	} {
		mode := unix.O_RDONLY
		if f.write {
			mode = unix.O_RDWR
		}
		fd, err := unix.Open(filepath.Join(f.dir, f.name), mode|unix.O_CLOEXEC, 0)
		if err != nil && !(f.missing && errors.Is(err, unix.ENOENT)) {
			r.remove()
			return nil, fmt.Errorf("cgroup v1: open %s/%s: %w", f.dir, f.name, err)
		}
		*f.fd = fd
		if err != nil {
			*f.fd = -1
		}
	}
	return r, nil
}

func (g *cgroupV1) close() error {
	var errs []error
	for _, d := range g.bases() {
		if !g.own.holdsCgroup(d) {
			continue // never ours, or a copy's (ensure failed on it)
		}
		if err := cgRmdir(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type runCgroupV1 struct {
	memory, pids, cpuacct, freezer string
	dirs                           []string // created, one per hierarchy
	tasks                          []*os.File
	// Control files kept open (-1: not there).
	memLimit, memswLimit, pidsMax, usage, peak, oom int
	// The limits in force (unlimited: none), so that a recycled cgroup is
	// only written what changes for the next command.
	curMemory, curPids int64
	// failcntOOM: this kernel does not count OOM kills (before 4.13), so
	// memory.failcnt stands for them and must be reset on recycling.
	failcntOOM bool
}

// unlimited is a limit that is not set: larger than any.
const unlimited = math.MaxInt64

func (r *runCgroupV1) setLimits(memoryBytes, pids int64) error {
	if memoryBytes <= 0 {
		memoryBytes = unlimited
	}
	if pids <= 0 {
		pids = unlimited
	}
	if memoryBytes != r.curMemory {
		// memory+swap (present when swap accounting is on) equal to the
		// memory limit means no swap at all. It may never be below the
		// memory limit: raised first, lowered last.
		v := limitValue(memoryBytes)
		files := []int{r.memswLimit, r.memLimit}
		if memoryBytes < r.curMemory {
			files[0], files[1] = files[1], files[0]
		}
		for _, fd := range files {
			if fd < 0 {
				continue
			}
			if err := fdWrite(fd, v); err != nil {
				r.curMemory = 0 // unknown: rewrite next time
				return fmt.Errorf("cgroup v1: memory limit: %w", err)
			}
		}
		r.curMemory = memoryBytes
	}
	if pids != r.curPids {
		v := limitValue(pids)
		if pids == unlimited {
			v = "max"
		}
		if err := fdWrite(r.pidsMax, v); err != nil {
			r.curPids = 0
			return fmt.Errorf("cgroup v1: pids limit: %w", err)
		}
		r.curPids = pids
	}
	return nil
}

func limitValue(n int64) string {
	if n == unlimited {
		return "-1"
	}
	return strconv.FormatInt(n, 10)
}

// fdWrite writes a value to a control file kept open.
func fdWrite(fd int, v string) error {
	_, err := unix.Pwrite(fd, []byte(v), 0)
	return err
}

// fdRead reads a control file kept open, from the start.
func fdRead(fd int) ([]byte, error) {
	buf := make([]byte, 512)
	n, err := unix.Pread(fd, buf, 0)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func fdReadInt(fd int) (int64, error) {
	b, err := fdRead(fd)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func (r *runCgroupV1) join() (*os.File, []*os.File) { return nil, r.tasks }

func (r *runCgroupV1) cpu() (time.Duration, error) {
	ns, err := fdReadInt(r.usage)
	if err != nil {
		return 0, fmt.Errorf("cgroup v1: cpuacct.usage: %w", err)
	}
	return time.Duration(ns), nil
}

func (r *runCgroupV1) stats() (cgroupStats, error) {
	var s cgroupStats
	var err error
	if s.CPU, err = r.cpu(); err != nil {
		return s, err
	}
	if s.PeakBytes, err = fdReadInt(r.peak); err != nil {
		return s, fmt.Errorf("cgroup v1: memory.max_usage_in_bytes: %w", err)
	}
	oom, err := fdRead(r.oom)
	if err != nil {
		return s, fmt.Errorf("cgroup v1: memory.oom_control: %w", err)
	}
	if n, ok := cgKeyed(oom, "oom_kill"); ok {
		s.OOMKills = n
	} else {
		r.failcntOOM = true
		// Before Linux 4.13 the kill itself is not counted; a failed
		// charge with swap off means the OOM killer ran.
		if n, err := cgReadInt(filepath.Join(r.memory, "memory.failcnt")); err == nil && n > 0 {
			s.OOMKills = 1
		}
	}
	return s, nil
}

// kill freezes the cgroup so nothing can fork any more, kills every
// process, and thaws it so they die. Without a freezer it kills in rounds
// until the cgroup is empty.
func (r *runCgroupV1) signal(sig unix.Signal) error {
	return signalProcs(filepath.Join(r.memory, "cgroup.procs"), sig)
}

func (r *runCgroupV1) kill() error {
	procs := filepath.Join(r.memory, "cgroup.procs")
	if r.freezer == "" {
		for i := 0; i < 100; i++ {
			pids, err := cgPids(procs)
			if err != nil || len(pids) == 0 {
				return err
			}
			killPids(pids)
			time.Sleep(time.Millisecond)
		}
		return errors.New("cgroup v1: processes keep appearing")
	}
	state := filepath.Join(r.freezer, "freezer.state")
	if err := cgWrite(state, "FROZEN"); err != nil {
		return err
	}
	// Freezing is asynchronous; a task stuck in the kernel may delay it, in
	// which case killing anyway is the best there is.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		b, err := cgRead(state)
		if err != nil || strings.TrimSpace(string(b)) == "FROZEN" {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	pids, err := cgPids(filepath.Join(r.freezer, "cgroup.procs"))
	killPids(pids)
	if werr := cgWrite(state, "THAWED"); werr != nil && err == nil {
		err = werr
	}
	return err
}

// recycle resets a v1 cgroup: creating and removing one takes a quarter
// of a millisecond of CPU (the memory controller's most), more than the
// rest of a short command's overhead. Only a clean cgroup is reused: no
// process, no OOM kill ever, little memory left charged.
func (r *runCgroupV1) recycle() bool {
	if busy, err := r.populated(); err != nil || busy {
		return false
	}
	if st, err := r.stats(); err != nil || st.OOMKills > 0 {
		return false
	}
	if used, err := cgReadInt(filepath.Join(r.memory, "memory.usage_in_bytes")); err != nil || used > recycleMaxBytes {
		return false
	}
	// The counters back to zero (the peak to the memory left). The limits
	// stay: setLimits writes only those the next command changes.
	if err := fdWrite(r.usage, "0"); err != nil {
		return false
	}
	if err := fdWrite(r.peak, "0"); err != nil {
		return false
	}
	if r.failcntOOM {
		if err := cgWrite(filepath.Join(r.memory, "memory.failcnt"), "0"); err != nil {
			return false
		}
	}
	return true
}

func (r *runCgroupV1) populated() (bool, error) {
	pids, err := cgPids(filepath.Join(r.memory, "cgroup.procs"))
	return len(pids) > 0, err
}

func (r *runCgroupV1) remove() error {
	for _, f := range r.tasks {
		f.Close()
	}
	r.tasks = nil
	for _, fd := range []*int{&r.memLimit, &r.memswLimit, &r.pidsMax, &r.usage, &r.peak, &r.oom} {
		if *fd > 0 {
			unix.Close(*fd)
		}
		*fd = -1
	}
	var errs []error
	for _, d := range r.dirs {
		if err := cgRmdir(d); err != nil {
			errs = append(errs, err)
		}
	}
	r.dirs = nil
	return errors.Join(errs...)
}
