//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// maxArgBytes bounds a command's arguments and environment together,
	// as the kernel counts them (each string with its NUL).
	maxArgBytes = 1 << 20
	// openFiles is RLIMIT_NOFILE: the usual soft limit of a login, which
	// toolchains are tested with (javac, go build and rustc open many).
	openFiles = 1024
	// defaultStack is RLIMIT_STACK without a memory limit. With one, the
	// stack may grow to the memory limit (the cgroup bounds what is really
	// used), as judges usually allow for deep recursion.
	defaultStack = 256 << 20
	minStack     = 8 << 20
	// killGrace is how long the sandbox's report is awaited after the
	// command was killed, before the whole sandbox is killed instead.
	killGrace = 5 * time.Second
	// outputGrace bounds the wait for the output pipes' EOF once every
	// process is dead (it is immediate).
	outputGrace = time.Second
)

// Exec runs c in a sandbox; see Sandbox.
//
// The program sees c.Dir at /box, its working directory; paths under c.Dir
// in c.Args and c.Env (a HOME, a GOPATH) are rewritten to /box. The work
// directory and its contents are given to the command's uid first.
func (l *Linux) Exec(ctx context.Context, c *Cmd) (*Outcome, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	msg, err := l.request(c)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	uid, err := l.uids.get(ctx)
	if err != nil {
		return nil, err
	}
	x := &execution{l: l, c: c, msg: msg, uid: uid}
	defer x.release()
	if err := x.prepare(); err != nil {
		return nil, err
	}
	return x.run(ctx)
}

// request checks c and translates it into the sandbox's view.
func (l *Linux) request(c *Cmd) (*runMsg, error) {
	if len(c.Args) == 0 {
		return nil, fmt.Errorf("%w: no program", ErrInvalidCmd)
	}
	if c.Dir == "" || !filepath.IsAbs(c.Dir) {
		return nil, fmt.Errorf("%w: work directory %q is not an absolute path", ErrInvalidCmd, c.Dir)
	}
	dir := filepath.Clean(c.Dir)
	prog := c.Args[0]
	switch {
	case filepath.IsAbs(prog):
	case hasDir(prog):
		prog = filepath.Join(dir, prog)
	default:
		return nil, fmt.Errorf("%w: program %q is not a path", ErrInvalidCmd, prog)
	}
	size := 0
	for _, list := range [][]string{c.Args, c.Env} {
		for _, s := range list {
			if strings.IndexByte(s, 0) >= 0 {
				return nil, fmt.Errorf("%w: NUL byte in an argument or the environment", ErrInvalidCmd)
			}
			size += len(s) + 1
		}
	}
	if size > maxArgBytes {
		return nil, fmt.Errorf("%w: arguments and environment are %d bytes, at most %d", ErrInvalidCmd, size, maxArgBytes)
	}
	for _, p := range append(append([]string{}, c.ReadOnlyPaths...), c.WritablePaths...) {
		if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
			return nil, fmt.Errorf("%w: extra path %q", ErrInvalidCmd, p)
		}
	}
	m := &runMsg{
		Path:    boxPath(prog, dir),
		Args:    make([]string, len(c.Args)),
		Env:     make([]string, len(c.Env)),
		Dir:     boxDir,
		Umask:   0o022,
		Rlimits: l.rlimits(&c.Limits),
	}
	for i, a := range c.Args {
		m.Args[i] = rewritePaths(a, dir)
	}
	m.Args[0] = m.Path
	for i, e := range c.Env {
		m.Env[i] = rewritePaths(e, dir)
	}
	if len(c.WritablePaths) > 0 {
		// Files made in a shared directory must stay usable by the next
		// command, which has another uid.
		m.Umask = 0
	}
	return m, nil
}

// boxPath is where host path p, under the work directory dir, appears.
func boxPath(p, dir string) string {
	p = filepath.Clean(p)
	if rel, err := filepath.Rel(dir, p); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return filepath.Join(boxDir, rel)
	}
	return p
}

// rewritePaths replaces dir with /box where it appears as a path: followed
// by a slash, a colon (PATH-like lists) or the end.
func rewritePaths(s, dir string) string {
	if !strings.Contains(s, dir) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, dir)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(dir)
		b.WriteString(s[:i])
		if end == len(s) || s[end] == '/' || s[end] == ':' {
			b.WriteString(boxDir)
		} else {
			b.WriteString(dir)
		}
		s = s[end:]
	}
}

// rlimits are the command's resource limits (see the constants above).
func (l *Linux) rlimits(lim *Limits) []rlimitSpec {
	stack := uint64(defaultStack)
	if lim.MemoryBytes > 0 {
		stack = uint64(max(lim.MemoryBytes, minStack))
	}
	fsize := uint64(l.cfg.FileSizeBytes)
	r := []rlimitSpec{
		{unix.RLIMIT_CORE, 0, 0},
		{unix.RLIMIT_FSIZE, fsize, fsize},
		{unix.RLIMIT_NOFILE, openFiles, openFiles},
		{unix.RLIMIT_STACK, stack, stack},
	}
	if lim.CPU > 0 {
		// A backstop for the cgroup polling: whole seconds, SIGXCPU one
		// second past the limit, SIGKILL a second later.
		secs := uint64((lim.CPU+time.Second-1)/time.Second) + 1
		r = append(r, rlimitSpec{unix.RLIMIT_CPU, secs, secs + 1})
	}
	if lim.Processes > 0 {
		// Per uid, and the uid is the command's own.
		r = append(r, rlimitSpec{unix.RLIMIT_NPROC, uint64(lim.Processes), uint64(lim.Processes)})
	}
	return r
}

// execution is one Exec's resources.
type execution struct {
	l     *Linux
	c     *Cmd
	msg   *runMsg
	uid   int
	files []*os.File // passed to the init, in the order of msg's descriptors
	binds []bindSpec // without the mount API
	cg    runCgroup
	slot  *slot
	// sent: the command went to the init. done: every process of the
	// command is known dead since, so its uid may be reused; healthy: and
	// the sandbox may serve another command.
	sent, done, healthy bool
}

// release returns or discards what the execution took.
func (x *execution) release() {
	x.closeFiles()
	if x.cg != nil {
		x.l.pool.putCgroup(x.cg, x.done)
	}
	if x.slot != nil {
		x.l.pool.putSlot(x.slot, !x.sent || x.done && x.healthy)
	}
	if !x.sent || x.done {
		x.l.uids.put(x.uid)
	} else {
		// Cannot happen: supervise ends only with the processes dead.
		x.l.log.Error("sandbox: uid not released", "uid", x.uid)
	}
}

func (x *execution) closeFiles() {
	for _, f := range x.files {
		if f != nil {
			f.Close()
		}
	}
	x.files = nil
}

// pipe makes an output pipe: the read end is the worker's, non-blocking
// and in the poller (read deadlines work); the write end is the command's,
// blocking as programs expect, and never polled.
func pipe() (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("sandbox: pipe: %w", err)
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, fmt.Errorf("sandbox: pipe: %w", err)
	}
	// os.NewFile puts a descriptor in the poller only if it is
	// non-blocking.
	return os.NewFile(uintptr(p[0]), "output"), os.NewFile(uintptr(p[1]), "output"), nil
}

// cpuPoll is when to look at the CPU time next: it cannot reach the limit
// before (limit-used)/CPUs, checked at least every 250 ms (a command
// cannot use more than its CPUs' time), at most every 2 ms.
func cpuPoll(limit, used time.Duration) time.Duration {
	d := (limit - used) / time.Duration(runtime.NumCPU())
	return min(max(d, 2*time.Millisecond), 250*time.Millisecond)
}

// prepare gives the work directory to the command's uid and opens what
// the init needs.
func (x *execution) prepare() error {
	dirfd, err := openDirNoFollow(x.c.Dir)
	if err != nil {
		return fmt.Errorf("sandbox: work directory: %w", err)
	}
	defer unix.Close(dirfd)
	if err := chownTree(dirfd, x.uid, x.uid); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	stdin, err := stdinFile(x.c.Stdin)
	if err != nil {
		return err
	}
	x.files = append(x.files, stdin, nil, nil) // stdout, stderr: set in run
	if err := x.mounts(dirfd); err != nil {
		return err
	}
	if x.cg, err = x.l.pool.cgroup(); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := x.cg.setLimits(x.c.Limits.MemoryBytes, x.c.Limits.Processes); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	dir, files := x.cg.join()
	if dir != nil {
		x.msg.CgroupDir = true
		x.files = append(x.files, dir)
	}
	x.msg.CgroupFiles = len(files)
	x.files = append(x.files, files...)
	if x.l.mountAPI {
		x.slot, err = x.l.pool.slot()
	} else {
		setup := x.l.setup
		setup.Binds = x.binds
		x.slot, err = x.l.startSlot(&setup)
	}
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return nil
}

// mounts prepares the work directory at /box and the extra paths: as
// detached mounts with the mount API, else as binds by path.
func (x *execution) mounts(dirfd int) error {
	type mnt struct {
		src, target string
		writable    bool
		fd          int // -1: open by path
	}
	list := []mnt{{src: x.c.Dir, target: boxDir, writable: true, fd: dirfd}}
	for _, p := range x.c.ReadOnlyPaths {
		if p = filepath.Clean(p); !visible(x.l.root, p) {
			list = append(list, mnt{src: p, target: p, fd: -1})
		}
	}
	for _, p := range x.c.WritablePaths {
		p = filepath.Clean(p)
		list = append(list, mnt{src: p, target: p, writable: true, fd: -1})
		// Every command's uid must be able to write there.
		fd, err := openDirNoFollow(p)
		if err == nil {
			err = unix.Fchmod(fd, 0o777)
			unix.Close(fd)
		}
		if err != nil {
			return fmt.Errorf("sandbox: writable path %s: %w", p, err)
		}
	}
	for _, m := range list {
		if !x.l.mountAPI {
			x.binds = append(x.binds, bindSpec{Source: m.src, Target: m.target, Writable: m.writable})
			continue
		}
		var f *os.File
		var err error
		if m.fd >= 0 {
			f, err = openTree(m.fd)
		} else {
			var fd int
			fd, err = unix.OpenTree(unix.AT_FDCWD, m.src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
			if err == nil {
				f = os.NewFile(uintptr(fd), m.src)
			}
		}
		if err != nil {
			return fmt.Errorf("sandbox: mount %s: %w", m.src, err)
		}
		x.files = append(x.files, f)
		x.msg.Mounts = append(x.msg.Mounts, mountSpec{Target: m.target, Writable: m.writable})
	}
	return nil
}

// run sends the command to the sandbox and supervises it.
func (x *execution) run(ctx context.Context) (*Outcome, error) {
	c := x.c
	outR, outW, err := pipe()
	if err != nil {
		return nil, err
	}
	defer outR.Close()
	errR, errW, err := pipe()
	if err != nil {
		outW.Close()
		return nil, err
	}
	defer errR.Close()
	x.files[1], x.files[2] = outW, errW
	x.msg.UID, x.msg.GID = x.uid, x.uid

	start := time.Now()
	err = x.slot.send(x.msg.marshal(), x.files)
	x.closeFiles() // the init has its copies; EOF comes when its processes are gone
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	x.sent = true

	var mu sync.Mutex
	onOutput := c.OnOutput
	if onOutput != nil {
		onOutput = func(stream string, data []byte) {
			mu.Lock()
			defer mu.Unlock()
			c.OnOutput(stream, data)
		}
	}
	capHit := make(chan struct{}, 2)
	stdout := &capture{stream: "stdout", max: c.Limits.OutputBytes, onOutput: onOutput, capHit: capHit}
	stderr := &capture{stream: "stderr", max: c.Limits.OutputBytes, onOutput: onOutput, capHit: capHit}
	var readers sync.WaitGroup
	readers.Go(func() { stdout.read(outR) })
	readers.Go(func() { stderr.read(errR) })

	sv := x.supervise(ctx, capHit)
	wall := time.Since(start)

	// Every process is dead by now; the pipes' EOF is immediate.
	deadline := time.Now().Add(outputGrace)
	outR.SetReadDeadline(deadline)
	errR.SetReadDeadline(deadline)
	readers.Wait()

	if sv.cancelled != nil {
		return nil, sv.cancelled
	}
	if sv.err != nil {
		return nil, sv.err
	}
	r := sv.reply
	if r.Err != "" {
		if r.Exec {
			return nil, fmt.Errorf("%w: %s: %w", ErrExec, c.Args[0], syscall.Errno(r.Errno))
		}
		return nil, fmt.Errorf("sandbox: %s", r.Err)
	}
	st, err := x.cg.stats()
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	o := &Outcome{
		Stdout:          stdout.buf,
		Stderr:          stderr.buf,
		OutputTruncated: stdout.truncated || stderr.truncated,
		Wall:            wall,
		CPU:             st.CPU,
		MemoryKB:        st.PeakBytes / 1024,
		TimeLimit:       sv.timedOut,
		MemoryLimit:     st.OOMKills > 0,
	}
	if o.MemoryKB == 0 {
		o.MemoryKB = r.MaxRSSKB
	}
	ws := unix.WaitStatus(r.Status)
	switch {
	case ws.Signaled():
		o.Signal = unix.SignalName(ws.Signal())
		if o.Signal == "" {
			o.Signal = fmt.Sprintf("SIG%d", int(ws.Signal()))
		}
		o.ExitCode = 128 + int(ws.Signal())
		if ws.Signal() == unix.SIGXCPU {
			o.TimeLimit = true
		}
	default:
		o.ExitCode = ws.ExitStatus()
	}
	if c.Limits.CPU > 0 && o.CPU > c.Limits.CPU {
		o.TimeLimit = true
	}
	return o, nil
}

// supervision is how a command's supervision ended.
type supervision struct {
	reply     replyMsg
	timedOut  bool
	cancelled error
	err       error
}

// supervise waits for the init's report while enforcing the wall and CPU
// limits, the output cap and ctx: each kills the command's cgroup, and the
// report follows. An init that does not report is killed with its whole
// sandbox.
func (x *execution) supervise(ctx context.Context, capHit <-chan struct{}) (sv supervision) {
	lim := &x.c.Limits
	var wallC, cpuC, graceC <-chan time.Time
	if d := wallLimit(lim); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		wallC = t.C
	}
	var cpuTimer *time.Timer
	if lim.CPU > 0 {
		cpuTimer = time.NewTimer(cpuPoll(lim.CPU, 0))
		defer cpuTimer.Stop()
		cpuC = cpuTimer.C
	}
	killed := false
	kill := func() {
		if killed {
			return
		}
		killed = true
		if err := x.cg.kill(); err != nil {
			x.l.log.Warn("sandbox: cgroup kill failed; killing the sandbox", "err", err)
			x.slot.kill()
		}
		t := time.NewTimer(killGrace)
		graceC = t.C
	}
	done := ctx.Done()
	for {
		select {
		case r, ok := <-x.slot.replies:
			if ok {
				sv.reply = r
				x.done = true
				x.healthy = !r.Fatal
				return sv
			}
			// The init died: its namespace, and every process of the
			// command with it, is gone.
			<-x.slot.exited
			x.done = true
			if !killed {
				sv.err = errors.New("sandbox: the sandbox's init died")
			} else {
				sv.reply = replyMsg{Status: int(syscall.SIGKILL)} // as killed
			}
			return sv
		case <-wallC:
			sv.timedOut = true
			kill()
		case <-cpuC:
			used, err := x.cg.cpu()
			if err != nil || used >= lim.CPU {
				sv.timedOut = err == nil
				kill()
				continue
			}
			cpuTimer.Reset(cpuPoll(lim.CPU, used))
		case <-capHit:
			kill()
		case <-done:
			sv.cancelled = ctx.Err()
			done = nil
			kill()
		case <-graceC:
			graceC = nil
			x.slot.kill()
		}
	}
}
