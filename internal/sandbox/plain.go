//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrInvalidCmd is returned for a Cmd that cannot be run as given.
var ErrInvalidCmd = errors.New("sandbox: invalid command")

// drainGrace is how long output is still read after the command's process
// group is dead. Output of the group arrives at once; only a process that
// left the group (setsid) can keep a pipe open, and it is not waited for.
const drainGrace = 250 * time.Millisecond

// Plain runs commands without isolation: in their own process group, with
// a clean environment, rlimits and a wall-clock timer, but as the worker's
// own user and with the worker's view of the file system. It is for
// development and trusted code (--insecure-no-sandbox).
//
// Limits: CPU is enforced per process with RLIMIT_CPU (whole seconds,
// rounded up; a use past the exact limit is still reported as TimeLimit),
// with the wall limit as backstop, or 2×CPU+1s when no wall limit is set.
// Memory and processes are not enforced (RLIMIT_AS breaks the JVM and Go,
// RLIMIT_NPROC counts the worker's own processes), and memory is not
// measured: without a cgroup the only figure is the child's ru_maxrss, and
// Linux carries the parent's peak into it across fork and exec, so for a
// large worker it reports the worker, not the program. MemoryKB stays 0.
type Plain struct{}

var _ Sandbox = (*Plain)(nil)

// Kind is "none".
func (*Plain) Kind() string { return "none" }

// Exec runs cmd; see Sandbox.
func (*Plain) Exec(ctx context.Context, c *Cmd) (*Outcome, error) {
	if len(c.Args) == 0 || !filepath.IsAbs(c.Args[0]) && !hasDir(c.Args[0]) {
		return nil, fmt.Errorf("%w: program %q is not a path", ErrInvalidCmd, first(c.Args))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stdin, stopInput, err := commandStdin(c)
	if err != nil {
		return nil, err
	}
	defer stopInput()
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}

	start := time.Now()
	cmd, err := startCmd(c, stdin, outW, errW)
	outW.Close() // the child has its copies; EOF comes when its tree is gone
	errW.Close()
	stdin.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("sandbox: start %s: %w", c.Args[0], err)
	}
	pid := cmd.Process.Pid
	p := &proc{pgid: pid}
	if err := setRlimits(pid, &c.Limits); err != nil {
		p.kill()
		cmd.Wait()
		outR.Close()
		errR.Close()
		return nil, err
	}

	stdout, stderr, capHit, readers := startCapture(c, outR, errR)

	// The leader's exit is observed without reaping it (WNOWAIT): as long
	// as it is a zombie its pid, and so the group id, cannot be reused, and
	// killing the group cannot hit an unrelated process.
	exited := make(chan error, 1)
	go func() { exited <- waitNoReap(pid) }()

	var timer <-chan time.Time
	if d := wallLimit(&c.Limits); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	var (
		timedOut  bool
		cancelled error
		waitErr   error
	)
wait:
	for {
		select {
		case waitErr = <-exited:
			break wait
		case <-timer:
			timedOut = true
			p.kill()
		case <-capHit:
			p.kill()
		case sig := <-c.Signals:
			_ = unix.Kill(-p.pgid, sig)
		case <-ctx.Done():
			cancelled = ctx.Err()
			p.kill()
			ctx = context.Background() // Done fires once; now wait for the exit
		}
	}
	wall := time.Since(start)
	// Whatever the leader left behind in its group dies with it.
	p.kill()
	state, err := reap(cmd)
	if waitErr == nil {
		waitErr = err
	}
	// Past this the only writers are processes that escaped the group.
	deadline := time.Now().Add(drainGrace)
	outR.SetReadDeadline(deadline)
	errR.SetReadDeadline(deadline)
	readers.Wait()
	outR.Close()
	errR.Close()

	if cancelled != nil {
		return nil, cancelled
	}
	if state == nil {
		return nil, fmt.Errorf("sandbox: wait %s: %w", c.Args[0], waitErr)
	}
	o := outcome(state, &c.Limits)
	o.Stdout, o.Stderr = stdout.buf, stderr.buf
	o.OutputTruncated = stdout.truncated || stderr.truncated
	o.Wall = wall
	o.TimeLimit = o.TimeLimit || timedOut
	return o, nil
}

// outcome reads the exit status and resource use of a reaped command.
func outcome(state *os.ProcessState, l *Limits) *Outcome {
	o := &Outcome{CPU: state.UserTime() + state.SystemTime()}
	ws, _ := state.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		o.Signal = unix.SignalName(ws.Signal())
		if o.Signal == "" {
			o.Signal = fmt.Sprintf("SIG%d", int(ws.Signal()))
		}
		// The shell's convention, so that `grappe run` can exit with it.
		o.ExitCode = 128 + int(ws.Signal())
		o.TimeLimit = ws.Signal() == syscall.SIGXCPU
	} else {
		o.ExitCode = ws.ExitStatus()
	}
	if l.CPU > 0 && o.CPU > l.CPU {
		o.TimeLimit = true
	}
	return o
}

// startCmd starts the command in its own process group.
//
// It retries on ETXTBSY: when the program was just written by this process
// (a cached binary copied into the work dir), a fork made at that moment by
// another goroutine may still hold the write descriptor until its exec,
// and the kernel then refuses to execute the file for a moment
// (golang.org/issue/22315).
func startCmd(c *Cmd, stdin, stdout, stderr *os.File) (*exec.Cmd, error) {
	for attempt := 1; ; attempt++ {
		cmd := exec.Command(c.Args[0], c.Args[1:]...)
		cmd.Dir = c.Dir
		// A nil Env would hand the worker's environment (tokens, paths) to
		// the program; an empty non-nil one gives it nothing.
		cmd.Env = append([]string{}, c.Env...)
		cmd.Stdin = stdin
		cmd.Stdout = stdout
		cmd.Stderr = stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Setpgid: true, // so the whole tree can be killed at once
			// And it dies with the worker. (Linux sends it when the forking
			// OS thread exits, which Go does only for a goroutine that ends
			// locked to its thread; nothing here does that.)
			Pdeathsig: syscall.SIGKILL,
		}
		err := cmd.Start()
		if err == nil || !errors.Is(err, syscall.ETXTBSY) || attempt == 20 {
			return cmd, err
		}
		time.Sleep(time.Duration(attempt) * time.Millisecond)
	}
}

// proc is a started command's process group.
type proc struct {
	pgid int
}

// kill sends SIGKILL to the whole group. ESRCH (nothing left) is fine.
func (p *proc) kill() {
	_ = unix.Kill(-p.pgid, unix.SIGKILL)
}

// waitNoReap blocks until pid has exited, leaving it a zombie.
func waitNoReap(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
}

// reap collects the exited leader. Its output pipes are our own *os.File
// (not goroutines of os/exec), so Wait does not block on them.
func reap(cmd *exec.Cmd) (*os.ProcessState, error) {
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return cmd.ProcessState, err
	}
	return cmd.ProcessState, nil
}

// wallLimit is the wall-clock deadline: the wall limit, or a backstop
// for a CPU limit that a sleeping or blocked program would never reach.
func wallLimit(l *Limits) time.Duration {
	if l.Wall > 0 {
		return l.Wall
	}
	if l.CPU > 0 {
		return 2*l.CPU + time.Second
	}
	return 0
}

// setRlimits applies the limits that rlimits can enforce to the started
// child; its children inherit them. The few microseconds it ran before are
// harmless.
func setRlimits(pid int, l *Limits) error {
	// No core dumps: they would land in the work directory, slowly.
	if err := unix.Prlimit(pid, unix.RLIMIT_CORE, &unix.Rlimit{}, nil); err != nil {
		return fmt.Errorf("sandbox: prlimit core: %w", err)
	}
	if l.CPU > 0 {
		// Whole seconds, rounded up: SIGXCPU at the soft limit, SIGKILL one
		// second later for a program that ignores it.
		secs := uint64((l.CPU + time.Second - 1) / time.Second)
		lim := unix.Rlimit{Cur: secs, Max: secs + 1}
		if err := unix.Prlimit(pid, unix.RLIMIT_CPU, &lim, nil); err != nil {
			return fmt.Errorf("sandbox: prlimit cpu: %w", err)
		}
	}
	return nil
}

// commandStdin is the file the command reads as its stdin: c.Stdin in a
// memory file, or a pipe fed from c.Input. stop ends the feeding (the
// command is over).
func commandStdin(c *Cmd) (f *os.File, stop func(), err error) {
	if c.Input != nil {
		return feedInput(c.Input)
	}
	f, err = stdinFile(c.Stdin)
	return f, func() {}, err
}

// stdinFile holds the program's stdin in an anonymous memory file: no
// writer goroutine, no pipe to deadlock on, and the program sees a regular
// file it may seek and stat, as judges usually give.
func stdinFile(data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("stdin", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("sandbox: stdin: %w", err)
	}
	f := os.NewFile(uintptr(fd), "stdin")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("sandbox: stdin: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("sandbox: stdin: %w", err)
	}
	return f, nil
}

// startCapture reads a command's stdout and stderr, one goroutine per
// stream, each capped at the output limit and both at the shared budget
// (a hit is signalled on capHit); OnOutput is called by one reader at a
// time. readers.Wait returns once both pipes are at EOF.
func startCapture(c *Cmd, outR, errR *os.File) (stdout, stderr *capture, capHit chan struct{}, readers *sync.WaitGroup) {
	var mu sync.Mutex
	onOutput := c.OnOutput
	if onOutput != nil {
		onOutput = func(stream string, data []byte) {
			mu.Lock()
			defer mu.Unlock()
			c.OnOutput(stream, data)
		}
	}
	capHit = make(chan struct{}, 2)
	stdout = &capture{stream: "stdout", max: c.Limits.OutputBytes, budget: c.Budget, onOutput: onOutput, capHit: capHit}
	stderr = &capture{stream: "stderr", max: c.Limits.OutputBytes, budget: c.Budget, onOutput: onOutput, capHit: capHit}
	readers = &sync.WaitGroup{}
	readers.Go(func() { stdout.read(outR) })
	readers.Go(func() { stderr.read(errR) })
	return stdout, stderr, capHit, readers
}

// capture collects one output stream up to max bytes (0: no limit) and
// what its budget grants.
type capture struct {
	stream    string
	max       int64
	budget    *OutputBudget // nil: none
	onOutput  func(stream string, data []byte)
	capHit    chan<- struct{}
	buf       []byte
	truncated bool
}

// read copies the stream until EOF, the read deadline, or a cap. At a cap
// it asks for the command to be killed and stops reading; the writers
// then get EPIPE or die first. Nothing past a cap is kept, and the buffer
// never grows past what may still be kept.
func (c *capture) read(r *os.File) {
	chunk := make([]byte, 32*1024)
	for {
		n, err := r.Read(chunk)
		if n > 0 && c.keep(chunk[:n]) {
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.readBuffered(r, chunk)
			return
		}
		if err != nil {
			return
		}
	}
}

// keep keeps what may be kept of data, and reports a cap reached (the
// command is then killed and reading stops).
func (c *capture) keep(chunk []byte) (capped bool) {
	data := c.grant(chunk)
	c.append(data)
	if c.onOutput != nil && len(data) > 0 {
		c.onOutput(c.stream, data)
	}
	if c.truncated {
		c.capHit <- struct{}{}
		return true
	}
	return false
}

// maxBufferedReads bounds readBuffered: chunks of 32 KiB cover a pipe of
// 1 MiB, the most Linux gives one by default (pipe-max-size).
const maxBufferedReads = 32

// readBuffered reads, without waiting, what the pipe still holds once the
// drain deadline has passed. The deadline ends the wait for writers that
// escaped the process group, not the reading of what the command wrote
// before it died: a reader not scheduled before the deadline (a loaded
// or CPU-throttled machine; a worker frozen 300 ms loses about one
// output in 300) would otherwise drop it whole, and a program that
// printed its answer and exited 0 would be recorded with no output.
func (c *capture) readBuffered(r *os.File, chunk []byte) {
	if r.SetReadDeadline(time.Time{}) != nil {
		return
	}
	rc, err := r.SyscallConn()
	if err != nil {
		return
	}
	for range maxBufferedReads {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), chunk)
			return true // never wait: EAGAIN means the pipe is empty
		})
		if err != nil || rerr != nil || n <= 0 || c.keep(chunk[:n]) {
			return
		}
	}
}

// grant cuts data to what the stream's limit and the budget allow.
func (c *capture) grant(data []byte) []byte {
	if c.max > 0 && int64(len(c.buf)+len(data)) > c.max {
		data = data[:c.max-int64(len(c.buf))]
		c.truncated = true
	}
	if c.budget != nil {
		if n := c.budget.Take(int64(len(data))); n < int64(len(data)) {
			data = data[:n]
			c.truncated = true
		}
	}
	return data
}

// append keeps data, growing the buffer by doubling but never beyond what
// the stream may still keep: a command near its budget must not make the
// worker allocate twice the budget.
func (c *capture) append(data []byte) {
	need := len(c.buf) + len(data)
	if need > cap(c.buf) {
		size := max(2*cap(c.buf), need, 4096)
		if c.max > 0 {
			size = min(size, int(c.max))
		}
		if c.budget != nil {
			size = min(size, len(c.buf)+len(data)+int(c.budget.Left()))
		}
		buf := make([]byte, len(c.buf), max(size, need))
		copy(buf, c.buf)
		c.buf = buf
	}
	c.buf = append(c.buf, data...)
}

func hasDir(p string) bool { return filepath.Base(p) != p }

func first(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
