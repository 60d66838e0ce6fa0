//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// execution is one attempt of an Exec and its resources.
type execution struct {
	l     *Linux
	c     *Cmd
	msg   *runMsg
	uid   int
	files []*os.File // passed to the init, in the order of msg's descriptors
	owned int        // files[:owned] are the execution's to close; -1: all
	binds []bindSpec // without the mount API
	cg    runCgroup
	slot  *slot
	// sent: the command went to the init. done: every process of the
	// command is known dead since, so its uid may be reused; healthy: and
	// the sandbox may serve another command. broken: the sandbox or the
	// cgroup failed; neither serves another command.
	sent, done, healthy, broken bool
	neverRan                    bool   // the sandbox was lost before the command started
	stopInput                   func() // ends the feeding of Cmd.Input, if any
}

func (x *execution) exec(ctx context.Context) (*Outcome, error) {
	if err := x.prepare(); err != nil {
		return nil, err
	}
	return x.run(ctx)
}

// release returns or discards what the execution took.
func (x *execution) release() {
	if x.stopInput != nil {
		x.stopInput()
	}
	x.closeFiles()
	if x.cg != nil {
		x.l.pool.putCgroup(x.cg, x.done && !x.broken)
	}
	if x.slot != nil {
		x.l.pool.putSlot(x.slot, !x.broken && (!x.sent || x.done && x.healthy))
	}
	if !x.sent || x.done {
		x.l.uids.put(x.uid)
	} else {
		x.l.log.Error("sandbox: processes may be left; their uid is not reused", "uid", x.uid)
	}
}

func (x *execution) closeFiles() {
	if x.owned < 0 {
		x.owned = len(x.files)
	}
	for _, f := range x.files[:x.owned] {
		if f != nil {
			f.Close()
		}
	}
	x.files, x.owned = nil, 0
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
	stdin, stop, err := commandStdin(x.c)
	if err != nil {
		return x.l.infra("pass the command's input", err)
	}
	x.stopInput = stop
	x.files = append(x.files, stdin, nil, nil) // stdout, stderr: set in run
	if err := x.mounts(dirfd); err != nil {
		return err
	}
	if x.cg, err = x.l.pool.cgroup(); err != nil {
		return x.l.infra("create the command's cgroup", err)
	}
	if err := x.cg.setLimits(x.c.Limits.MemoryBytes, x.c.Limits.Processes); err != nil {
		// The cgroup is broken (removed from under the sandbox?): it
		// goes, and is not recycled.
		x.l.pool.putCgroup(x.cg, false)
		x.cg = nil
		return x.l.infra("set the command's limits", err)
	}
	// The cgroup's files come last and stay the cgroup's (closeFiles
	// leaves them).
	x.owned = len(x.files)
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
		return x.l.infra("start a sandbox", err)
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
			if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
				return fmt.Errorf("%w: read-only path %s is not a directory", ErrInvalidCmd, p)
			}
			list = append(list, mnt{src: p, target: p, fd: -1})
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
	return x.layers()
}

// layers prepares each Layer: an overlay made here, detached (fsmount),
// and attached in the sandbox like the other mounts. The worker builds it
// as real root, so the command's uid needs no privilege for it, and the
// overlay's copy-ups never touch the seed.
func (x *execution) layers() error {
	for i, ly := range x.c.Layers {
		// The merged root takes the upper directory's owner and mode: the
		// command must be able to add to it.
		if err := os.Chown(ly.Upper, x.uid, x.uid); err != nil {
			return fmt.Errorf("sandbox: layer: %w", err)
		}
		if !x.l.mountAPI {
			x.binds = append(x.binds, bindSpec{Source: ly.Upper, Target: layerTarget(i), Writable: true})
			continue
		}
		f, err := overlay(ly)
		if err != nil {
			return fmt.Errorf("sandbox: layer: %w", err)
		}
		x.files = append(x.files, f)
		x.msg.Mounts = append(x.msg.Mounts, mountSpec{Target: layerTarget(i), Writable: true})
	}
	return nil
}

// run sends the command to the sandbox and supervises it.
func (x *execution) run(ctx context.Context) (*Outcome, error) {
	c := x.c
	outR, outW, err := pipe()
	if err != nil {
		return nil, x.l.infra("make the output pipes", err)
	}
	defer outR.Close()
	errR, errW, err := pipe()
	if err != nil {
		outW.Close()
		return nil, x.l.infra("make the output pipes", err)
	}
	defer errR.Close()
	x.files[1], x.files[2] = outW, errW
	x.msg.UID, x.msg.GID = x.uid, x.uid

	start := time.Now()
	req := x.msg.marshal()
	err = x.slot.send(req, x.files)
	if err != nil && !errors.Is(err, ErrInvalidCmd) && x.l.mountAPI {
		// The prepared sandbox died while idle (killed, or its reset
		// failed): nothing ran. Once more, with another.
		x.l.pool.putSlot(x.slot, false)
		if x.slot, err = x.l.pool.slot(); err == nil {
			err = x.slot.send(req, x.files)
		}
	}
	x.closeFiles() // the init has its copies; EOF comes when its processes are gone
	if err != nil {
		x.broken = true
		if errors.Is(err, ErrInvalidCmd) {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		return nil, x.l.infra("reach the sandbox", err)
	}
	x.sent = true

	stdout, stderr, capHit, readers := startCapture(c, outR, errR)

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
		return nil, x.l.infra("supervise the command", sv.err)
	}
	r := sv.reply
	if r.Err != "" {
		if r.Exec {
			return nil, fmt.Errorf("%w: %s: %w", ErrExec, c.Args[0], syscall.Errno(r.Errno))
		}
		// The init could not start the command (its cgroup gone, a
		// mount refused): neither the sandbox nor the cgroup is
		// trusted with another command.
		x.broken = true
		return nil, x.l.infra("start the command", errors.New(r.Err))
	}
	st, err := x.cg.stats()
	if err != nil {
		x.broken = true
		return nil, x.l.infra("measure the command", err)
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
		// The cgroup kill is answered in milliseconds, except when the
		// command was caught before it joined its cgroup (a cancel right
		// at its start): then the whole sandbox goes, which kills it too
		// and costs only a fresh sandbox for the pool.
		t := time.NewTimer(cgroupKillGrace)
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
			// command with it, is gone once it has been reaped. (A process
			// stuck in the kernel can hold that up; its uid is then not
			// reused.)
			select {
			case <-x.slot.exited:
				x.done = true
			case <-time.After(killGrace):
				sv.err = errors.New("sandbox: the sandbox's processes do not die")
				return sv
			}
			if !killed {
				sv.err = errSandboxLost
				used, err := x.cg.cpu()
				x.neverRan = err == nil && used == 0
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
		case sig := <-x.c.Signals:
			if !killed {
				_ = x.cg.signal(sig)
			}
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
