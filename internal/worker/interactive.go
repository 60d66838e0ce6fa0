package worker

import (
	"io"
	"sync"
	"syscall"

	"github.com/grappe/grappe/internal/clusterpb"
	"golang.org/x/sys/unix"
)

// maxPendingStdin bounds what an interactive attempt keeps of its input
// that the program has not read yet (beyond the pipe's own buffer). The
// master throttles what it relays far below what would fill it in
// seconds; input past it is cut: the program reads EOF.
const maxPendingStdin = 1 << 20

// stdinFeed is an interactive attempt's input: the master's Stdin
// messages written in, the sandbox's pipe reading out. Writes never
// block (they come from the worker's one receive loop); Read blocks until
// data, EOF or close.
type stdinFeed struct {
	mu      sync.Mutex
	cond    *sync.Cond
	buf     []byte
	eof     bool // no more data: the client closed stdin, or it overflowed
	closed  bool // the run is over: Read returns EOF at once
	cut     bool // input overflowed maxPendingStdin
	signals chan syscall.Signal
}

var _ io.Reader = (*stdinFeed)(nil)

func newStdinFeed() *stdinFeed {
	f := &stdinFeed{signals: make(chan syscall.Signal, 8)}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// Read implements io.Reader.
func (f *stdinFeed) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.buf) == 0 && !f.eof && !f.closed {
		f.cond.Wait()
	}
	if f.closed || len(f.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.buf)
	f.buf = f.buf[n:]
	if len(f.buf) == 0 {
		f.buf = nil // let a large buffer go
	}
	return n, nil
}

// deliver applies one Stdin message from the master.
func (f *stdinFeed) deliver(m *clusterpb.Stdin) {
	f.mu.Lock()
	switch {
	case f.eof || f.closed:
	case len(f.buf)+len(m.Data) > maxPendingStdin:
		f.eof, f.cut, f.buf = true, true, nil
	default:
		f.buf = append(f.buf, m.Data...)
		f.eof = m.Eof
	}
	f.cond.Broadcast()
	f.mu.Unlock()
	if sig, ok := parseSignal(m.Signal); ok {
		select {
		case f.signals <- sig:
		default: // a burst of signals past the channel: the program got the first ones
		}
	}
}

// close ends the feed once the run is over, releasing a pending Read.
func (f *stdinFeed) close() {
	f.mu.Lock()
	f.closed = true
	f.buf = nil
	f.cond.Broadcast()
	f.mu.Unlock()
}

// parseSignal reads a signal's name ("SIGINT" or "INT"); a client may send
// only the signals a terminal user could, plus the ends (TERM, KILL). The
// master refuses the others already (attach.ValidSignal, the same list):
// the worker does not take the master's word for what reaches a program.
func parseSignal(name string) (syscall.Signal, bool) {
	if name == "" {
		return 0, false
	}
	if len(name) < 3 || name[:3] != "SIG" {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	switch sig {
	case unix.SIGINT, unix.SIGTERM, unix.SIGKILL, unix.SIGQUIT, unix.SIGHUP,
		unix.SIGUSR1, unix.SIGUSR2, unix.SIGSTOP, unix.SIGCONT, unix.SIGTSTP, unix.SIGWINCH:
		return sig, true
	}
	return 0, false
}

// feedStdin hands a Stdin message to the interactive attempt it names;
// one for an attempt not running here (finished meanwhile) is dropped.
func (w *Worker) feedStdin(m *clusterpb.Stdin) {
	if m.Attempt == nil {
		return
	}
	w.mu.Lock()
	j := w.running[attemptKey{m.Attempt.JobId, m.Attempt.Attempt}]
	w.mu.Unlock()
	if j != nil && j.input != nil {
		j.input.deliver(m)
	}
}

// emitStage tells the master that an interactive attempt entered a stage.
func (w *Worker) emitStage(k attemptKey, stage string) {
	w.emit(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Stage{Stage: &clusterpb.Stage{
		Attempt: k.ref(), Stage: stage,
	}}})
}
