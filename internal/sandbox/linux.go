//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Errors callers branch on.
var (
	// ErrNotAvailable is returned by New when this machine cannot run the
	// sandbox (not root, no cgroup controllers, an old kernel, …).
	ErrNotAvailable = errors.New("sandbox: isolation not available")
	// ErrExec is returned by Exec when the program itself could not be
	// executed (missing, not executable, bad format, arguments too long):
	// not a run of the program, and not the sandbox's fault.
	ErrExec = errors.New("sandbox: cannot execute program")
	// ErrClosed is returned by Exec after Close.
	ErrClosed = errors.New("sandbox: closed")
)

// Defaults.
const (
	defaultUIDCount  = 1000
	defaultTmpBytes  = 256 << 20
	defaultFileBytes = 256 << 20
	// maxRunsPerSlot bounds the commands one sandbox serves before it is
	// replaced, so nothing can accumulate in a long-lived init.
	maxRunsPerSlot = 1000
	hostname       = "grappe"
	cgroupPrefix   = "grappe-"
)

// Linux runs commands isolated. It is safe for concurrent use.
//
// A sandbox is an init process (this binary re-executed, see InitMain) in
// new pid, mount, network (loopback only), IPC and UTS namespaces, whose
// root is a small tmpfs with read-only binds of Config.ReadOnly, a
// made-up /etc core, a minimal /dev, its own /proc (hidepid=2) and a
// size-capped /tmp. Sandboxes are built ahead of need (PoolSize) and serve
// commands one at a time; between two commands the init resets what a
// command can change (init_linux.go), or, with SingleUse, is discarded.
//
// For a command, the worker gives the work directory to a uid of its own
// (fd-relative, never following a link: chown_linux.go), takes an empty
// cgroup (memory limit with swap off, task limit, CPU accounting), and
// hands the init the directory as a detached mount (open_tree) with the
// command's stdio. The init attaches it at /box and forks the command,
// which joins the cgroup and a cgroup namespace, takes its uid and
// rlimits and execs with no capability, no_new_privs and the seccomp
// filter, inherited from the init's forking thread (child_linux.go). When
// the command's main process exits the init kills everything else in the
// pid namespace and reports; CPU time, peak memory and OOM kills come from
// the cgroup, wall time from the worker's clock, and the wall and CPU
// limits, the output cap and cancellation are enforced by the worker by
// killing the cgroup (the v1 freezer, or v2's cgroup.kill).
type Linux struct {
	cfg      Config
	log      *slog.Logger
	cg       cgroupDriver
	own      *owner
	uidLease *uidLease // cfg.UIDBase and on, ours alone on the host
	root     []rootEntry
	setup    setupMsg // for every sandbox
	mountAPI bool     // open_tree/move_mount available: sandboxes are prepared ahead
	maxRuns  int
	pool     *pool
	uids     uidPool
	cgSeq    atomic.Int64
	spawnc   chan func()
	quit     chan struct{}
	closed   atomic.Bool
	close    sync.Once
	bg       sync.WaitGroup // spawner, filler, clean-ups
}

var _ Sandbox = (*Linux)(nil)

// New prepares the sandbox and checks that it works by running a trivial
// command in it; any failure wraps ErrNotAvailable. It needs root.
func New(cfg Config) (*Linux, error) {
	l, err := newLinux(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotAvailable, err)
	}
	if err := l.probe(context.Background()); err != nil {
		l.Close()
		return nil, fmt.Errorf("%w: %w", ErrNotAvailable, err)
	}
	return l, nil
}

func newLinux(cfg Config) (*Linux, error) {
	if cfg.Root == "" || !filepath.IsAbs(cfg.Root) {
		return nil, errors.New("Config.Root must be an absolute path")
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the sandbox needs root")
	}
	if !initHooked.Load() {
		return nil, errors.New("this program does not call sandbox.InitMain first (tests: from TestMain)")
	}
	if cfg.UIDCount == 0 {
		cfg.UIDCount = defaultUIDCount
	}
	// Zero is "automatic", chosen once the id is known (claimUIDs).
	if cfg.UIDBase < 0 || cfg.UIDCount <= 0 || cfg.UIDBase+cfg.UIDCount > 1<<31-2 {
		return nil, fmt.Errorf("bad uid range %d+%d", cfg.UIDBase, cfg.UIDCount)
	}
	if cfg.ReadOnly == nil {
		cfg.ReadOnly = DefaultReadOnly()
	}
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = min(max(runtime.NumCPU(), 2), 16)
	}
	if cfg.TmpBytes <= 0 {
		cfg.TmpBytes = defaultTmpBytes
	}
	if cfg.FileSizeBytes <= 0 {
		cfg.FileSizeBytes = defaultFileBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := seccompFilter(false); err != nil {
		return nil, err
	}
	stage := filepath.Join(cfg.Root, "rootfs")
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return nil, err
	}
	root, err := rootLayout(cfg.ReadOnly)
	if err != nil {
		return nil, err
	}
	if cfg.StateDir == "" {
		cfg.StateDir = cfg.Root
	}
	own, err := claimOwner(cfg.StateDir, cgroupPrefix, cfg.Logger)
	if err != nil {
		return nil, err
	}
	// The cgroups first: they may show that the id is a copy's too, and
	// the automatic uid range is derived from the id.
	cg, err := newCgroupDriver(cfg.CgroupRoot, own)
	if errors.Is(err, errIDInUse) {
		// A live copy of this state directory (owner_linux.go): its
		// cgroups were left untouched; this sandbox becomes another.
		if err = own.renewID(); err == nil {
			cg, err = newCgroupDriver(cfg.CgroupRoot, own)
		}
	}
	if err != nil {
		own.release()
		return nil, err
	}
	uids, err := claimUIDs(&cfg, own.id)
	if err != nil {
		cg.close()
		own.release()
		return nil, err
	}
	cfg.Logger.Info("sandbox: uids", "first", uids.base, "last", uids.base+uids.count-1)
	l := &Linux{
		cfg:      cfg,
		log:      cfg.Logger,
		cg:       cg,
		own:      own,
		uidLease: uids,
		root:     root,
		mountAPI: !cfg.forceBinds && haveMountAPI(stage),
		maxRuns:  maxRunsPerSlot,
		uids:     newUIDPool(cfg.UIDBase, cfg.UIDCount),
		spawnc:   make(chan func()),
		quit:     make(chan struct{}),
	}
	if cfg.SingleUse || !l.mountAPI {
		l.maxRuns = 1
	}
	l.setup = setupMsg{
		Stage:     stage,
		Hostname:  hostname,
		Root:      root,
		Files:     etcFiles(cfg.UIDBase, cfg.UIDCount),
		TmpBytes:  cfg.TmpBytes,
		TmpInodes: max(cfg.TmpBytes/4096, 1024),
		// cgroup v2: commands are cloned into their cgroup (Linux 5.7;
		// older kernels fall back on a write to cgroup.procs).
		CloneIntoCgroup: cg.kind() == "cgroup-v2" || cfg.forceClone3,
	}
	l.pool = newPool(l, cfg.PoolSize)
	l.bg.Add(1)
	go l.spawner()
	if l.mountAPI {
		l.bg.Add(1)
		go l.pool.fill()
	} else {
		l.log.Warn("sandbox: no open_tree(2) (Linux < 5.2): each command builds its own sandbox")
	}
	return l, nil
}

// claimUIDs leases the sandbox's uids (uids_linux.go): cfg's explicit
// range, or with UIDBase 0 one derived from the sandbox's id, which it then
// records in cfg.
func claimUIDs(cfg *Config, id string) (*uidLease, error) {
	if cfg.UIDBase == 0 {
		lease, err := leaseAutoUIDs(uidLeaseFile, id, cfg.UIDCount)
		if err != nil {
			return nil, err
		}
		cfg.UIDBase = lease.base
		return lease, nil
	}
	last := cfg.UIDBase + cfg.UIDCount - 1
	if !uidsMapped(cfg.UIDBase, cfg.UIDCount) {
		return nil, fmt.Errorf("uids %d–%d are not mapped in this user namespace (/proc/self/uid_map)", cfg.UIDBase, last)
	}
	lease, err := leaseUIDs(uidLeaseFile, cfg.UIDBase, cfg.UIDCount)
	if errors.Is(err, ErrInUse) {
		return nil, fmt.Errorf("%w: give each worker on this machine its own range (--uid-base), or leave it unset to have one chosen", err)
	}
	return lease, err
}

// haveMountAPI reports whether detached mounts can be made and attached
// (open_tree and move_mount, Linux 5.2).
func haveMountAPI(dir string) bool {
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// etcFiles makes up /etc/passwd, /etc/group and /etc/hosts: every sandbox
// uid is user "sandbox" with home /box, and the host's own accounts and
// names are not disclosed.
func etcFiles(base, count int) []genFile {
	var passwd, group strings.Builder
	passwd.WriteString("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	group.WriteString("root:x:0:\nnogroup:x:65534:\n")
	for uid := base; uid < base+count; uid++ {
		id := strconv.Itoa(uid)
		passwd.WriteString("sandbox:x:" + id + ":" + id + ":sandbox:" + boxDir + ":/bin/sh\n")
		group.WriteString("sandbox:x:" + id + ":\n")
	}
	hosts := "127.0.0.1\tlocalhost " + hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	return []genFile{
		{Path: "/etc/passwd", Data: []byte(passwd.String())},
		{Path: "/etc/group", Data: []byte(group.String())},
		{Path: "/etc/hosts", Data: []byte(hosts)},
	}
}

// Kind is "cgroup-v1" or "cgroup-v2".
func (l *Linux) Kind() string { return l.cg.kind() }

// BaseCgroups lists the directories of the sandbox's base cgroup, under
// which every command's cgroup is made: one per controller hierarchy with
// cgroup v1, one with v2. For operators' tools and for tests that break
// the sandbox on purpose; the sandbox re-creates them in Repair.
func (l *Linux) BaseCgroups() []string { return l.cg.bases() }

// newCgroup creates a command's cgroup.
func (l *Linux) newCgroup() (runCgroup, error) {
	return l.cg.create("run-" + strconv.FormatInt(l.cgSeq.Add(1), 10))
}

// probe runs a trivial command, to find out now rather than at the first
// job that the machine cannot sandbox.
func (l *Linux) probe(ctx context.Context) error {
	var prog string
	for _, p := range []string{"/usr/bin/true", "/bin/true"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && visible(l.root, p) {
			prog = p
			break
		}
	}
	if prog == "" {
		return errors.New("probe: no /usr/bin/true in the sandbox's read-only paths")
	}
	dir, err := os.MkdirTemp(l.cfg.Root, "probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o, err := l.Exec(ctx, &Cmd{
		Args: []string{prog}, Dir: dir,
		Limits: Limits{Wall: setupTimeout, MemoryBytes: 64 << 20, Processes: 4},
	})
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if o.ExitCode != 0 || o.Signal != "" {
		return fmt.Errorf("probe: %s exited %d %s: %s", prog, o.ExitCode, o.Signal, o.Stderr)
	}
	return nil
}

// Close ends every prepared sandbox and removes the sandbox's cgroups.
// Commands still running are not waited for: call it after the last Exec
// has returned.
func (l *Linux) Close() error {
	var err error
	l.close.Do(func() {
		l.closed.Store(true)
		close(l.quit)
		l.pool.drain()
		l.bg.Wait()
		l.pool.drain() // what the filler added while stopping
		err = l.cg.close()
		// No command runs any more (Close comes after the last Exec):
		// the uids may be another sandbox's from now on.
		l.uidLease.release()
		l.own.release()
	})
	return err
}
