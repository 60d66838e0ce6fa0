//go:build linux

package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// setupTimeout bounds the building of a sandbox (start of the init and
// its root); it normally takes a few milliseconds.
const setupTimeout = 30 * time.Second

// initCloneFlags are the namespaces of a sandbox's init. IPC and cgroup
// namespaces are made per command by the command's process itself.
const initCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWNET |
	unix.CLONE_NEWUTS | unix.CLONE_NEWIPC

// slot is one sandbox: an init process with its namespaces and root,
// serving one command at a time.
type slot struct {
	cmd     *exec.Cmd
	conn    *net.UnixConn
	replies chan replyMsg // one per request; closed when the init is gone
	exited  chan struct{} // closed once the init has been reaped
	runs    int
	gen     int64 // the pool's generation when it was made
}

// startSlot starts an init and has it build its root.
func (l *Linux) startSlot(setup *setupMsg) (*slot, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	// A packet must fit in the socket buffer: requests carry the
	// command's arguments and environment (up to maxArgBytes), the set-up
	// the generated /etc files. SO_SNDBUFFORCE passes the system cap.
	if err := unix.SetsockoptInt(pair[0], unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, maxMsg); err != nil {
		unix.SetsockoptInt(pair[0], unix.SOL_SOCKET, unix.SO_SNDBUF, maxMsg)
	}
	parentEnd := os.NewFile(uintptr(pair[0]), "sandbox-ctl")
	childEnd := os.NewFile(uintptr(pair[1]), "sandbox-ctl")
	defer childEnd.Close()

	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{initArg0},
		// Nothing of the worker's environment reaches the sandbox (its
		// init's environ is visible as /proc/1/environ to root only, but
		// there is nothing to see either). Only the init's own runtime
		// setting: it waits in raw system calls (rawwait_linux.go), which
		// the runtime takes for a goroutine running too long and would
		// interrupt with a preemption signal every 10 ms, idle or not;
		// nothing in the init needs preempting.
		Env:        []string{"GODEBUG=asyncpreemptoff=1"},
		ExtraFiles: []*os.File{childEnd},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: initCloneFlags,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	if err := l.spawn(cmd); err != nil {
		parentEnd.Close()
		return nil, fmt.Errorf("start init: %w", err)
	}
	childEnd.Close()
	fc, err := net.FileConn(parentEnd)
	parentEnd.Close()
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := &slot{
		cmd:     cmd,
		conn:    fc.(*net.UnixConn),
		replies: make(chan replyMsg, 1),
		exited:  make(chan struct{}),
	}
	go s.readReplies()
	go func() {
		cmd.Wait()
		close(s.exited)
	}()
	b, err := json.Marshal(setup)
	if err != nil {
		s.destroy()
		return nil, err
	}
	if err := s.send(b, nil); err != nil {
		s.destroy()
		return nil, err
	}
	select {
	case r, ok := <-s.replies:
		if ok && r.Ready {
			return s, nil
		}
		s.destroy()
		if !ok {
			return nil, errors.New("sandbox init exited during set-up")
		}
		return nil, fmt.Errorf("set-up: %s", r.Err)
	case <-time.After(setupTimeout):
		s.destroy()
		return nil, errors.New("sandbox set-up timed out")
	}
}

// spawn starts cmd from the spawner goroutine, which is locked to its OS
// thread for the sandbox's lifetime: Pdeathsig fires when the thread that
// started the child exits, not the process, and the Go runtime may end
// threads.
func (l *Linux) spawn(cmd *exec.Cmd) error {
	res := make(chan error, 1)
	select {
	case l.spawnc <- func() { res <- cmd.Start() }:
		return <-res
	case <-l.quit:
		return ErrClosed
	}
}

func (l *Linux) spawner() {
	defer l.bg.Done()
	// Never unlocked: when this goroutine exits, the thread exits with it,
	// and the remaining inits (if any) die with it.
	runtime.LockOSThread()
	for {
		select {
		case f := <-l.spawnc:
			f()
		case <-l.quit:
			return
		}
	}
}

func (s *slot) readReplies() {
	defer close(s.replies)
	buf := make([]byte, 64<<10)
	for {
		n, _, _, _, err := s.conn.ReadMsgUnix(buf, nil)
		if err != nil || n == 0 {
			return
		}
		var r replyMsg
		if err := r.unmarshal(buf[:n]); err != nil {
			return
		}
		s.replies <- r
	}
}

// send sends a message with descriptors.
func (s *slot) send(b []byte, files []*os.File) error {
	if len(b) > maxMsg {
		return fmt.Errorf("%w: request of %d bytes", ErrInvalidCmd, len(b))
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := s.conn.WriteMsgUnix(b, oob, nil); err != nil {
		return fmt.Errorf("send to sandbox: %w", err)
	}
	return nil
}

// dead reports whether the init is gone (or going).
func (s *slot) dead() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// kill kills the init, and with it its pid namespace: every process of
// the sandbox.
func (s *slot) kill() { s.cmd.Process.Signal(syscall.SIGKILL) }

// retire ends a healthy idle sandbox: the init sees EOF and exits.
func (s *slot) retire() {
	s.conn.Close()
	select {
	case <-s.exited:
	case <-time.After(killGrace):
		s.destroy()
	}
}

// destroy kills the sandbox and waits (a while) for its init to be
// reaped.
func (s *slot) destroy() {
	s.kill()
	s.conn.Close()
	select {
	case <-s.exited:
	case <-time.After(killGrace):
	}
}
