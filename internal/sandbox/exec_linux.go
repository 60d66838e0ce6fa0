//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
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
	// cgroupKillGrace is how long a cgroup kill may take to end a command
	// before the sandbox itself is killed.
	cgroupKillGrace = 250 * time.Millisecond
	// outputGrace bounds the wait for the output pipes' EOF once every
	// process is dead (it is immediate).
	outputGrace = time.Second
)

// Exec runs c in a sandbox; see Sandbox.
//
// The program sees c.Dir at /box, its working directory, and each layer
// at /cache (then /cache1, …); paths under them in c.Args and c.Env (a
// HOME, a GOPATH, a GOCACHE) are rewritten, so that a job never learns
// the worker's own paths. The work directory and its contents are given
// to the command's uid first.
func (l *Linux) Exec(ctx context.Context, c *Cmd) (*Outcome, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	msg, err := l.request(c)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		uid, err := l.uids.get(ctx)
		if err != nil {
			return nil, err
		}
		x := &execution{l: l, c: c, msg: msg, uid: uid, owned: -1}
		o, err := x.exec(ctx)
		x.release()
		// A prepared sandbox may die while idle (killed, or its reset
		// failed) after it was handed out: when the command's cgroup saw
		// no CPU time, the command never started, and can start again.
		if errors.Is(err, errSandboxLost) && x.neverRan && attempt < 3 {
			l.log.Warn("sandbox: lost a sandbox before the command started; retrying")
			msg.Mounts, msg.CgroupDir, msg.CgroupFiles = nil, false, 0
			continue
		}
		return o, err
	}
}

// errSandboxLost: the init died without the sandbox killing it.
var errSandboxLost = errors.New("sandbox: the sandbox's init died")

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
	// Each extra path is a descriptor passed to the init, with stdio and
	// the cgroup's.
	if n := len(c.ReadOnlyPaths) + len(c.Layers); n > maxFDs-16 {
		return nil, fmt.Errorf("%w: %d extra paths", ErrInvalidCmd, n)
	}
	for _, p := range c.ReadOnlyPaths {
		if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
			return nil, fmt.Errorf("%w: extra path %q", ErrInvalidCmd, p)
		}
	}
	for _, ly := range c.Layers {
		for _, p := range []string{ly.Seed, ly.Upper, ly.Work} {
			// Overlay options are a comma-separated list, lowerdir a
			// colon-separated one.
			if !filepath.IsAbs(p) || filepath.Clean(p) == "/" || strings.ContainsAny(p, ",:\\") {
				return nil, fmt.Errorf("%w: layer path %q", ErrInvalidCmd, p)
			}
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
	rewrite := func(s string) string {
		s = rewritePaths(s, dir, boxDir)
		for i, ly := range c.Layers {
			s = rewritePaths(s, filepath.Clean(ly.Seed), layerTarget(i))
		}
		return s
	}
	for i, a := range c.Args {
		m.Args[i] = rewrite(a)
	}
	m.Args[0] = m.Path
	for i, e := range c.Env {
		m.Env[i] = rewrite(e)
	}
	return m, nil
}

// layerTarget is where the command sees layer i.
func layerTarget(i int) string {
	if i == 0 {
		return "/cache"
	}
	return "/cache" + strconv.Itoa(i)
}

// boxPath is where host path p, under the work directory dir, appears.
func boxPath(p, dir string) string {
	p = filepath.Clean(p)
	if rel, err := filepath.Rel(dir, p); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return filepath.Join(boxDir, rel)
	}
	return p
}

// rewritePaths replaces dir with to where it appears as a path: followed
// by a slash, a colon (PATH-like lists), the end, or what ends a word in
// a shell command (a space, a quote, ;, &, |, ')').
func rewritePaths(s, dir, to string) string {
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
		if end == len(s) || strings.IndexByte("/: \t\n\"';&|)", s[end]) >= 0 {
			b.WriteString(to)
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
