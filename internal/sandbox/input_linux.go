package sandbox

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// feedInput makes the pipe an interactive command reads as its stdin and
// copies in into it, as it comes, until in ends (then the command reads
// EOF) or stop is called (the command is over). The read end, returned,
// stays blocking for the command; the write end is non-blocking, in the
// runtime's poller, so that stop interrupts a write the command does not
// read. Only the pipe's own buffer holds what the command has not read.
func feedInput(in io.Reader) (r *os.File, stop func(), err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("sandbox: stdin pipe: %w", err)
	}
	if err := unix.SetNonblock(p[1], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, fmt.Errorf("sandbox: stdin pipe: %w", err)
	}
	r, w := os.NewFile(uintptr(p[0]), "stdin"), os.NewFile(uintptr(p[1]), "stdin")
	var once sync.Once
	closeW := func() { once.Do(func() { w.Close() }) }
	go func() {
		// Ends at in's EOF, or when stop closes w under a pending write;
		// a Read in progress is the caller's to end (Cmd.Input).
		_, _ = io.Copy(w, in)
		closeW()
	}()
	return r, closeW, nil
}
