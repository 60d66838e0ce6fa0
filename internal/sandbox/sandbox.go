// Package sandbox runs one command of a job (a compile or a run) under
// limits and measures what it used. The Sandbox interface is what the
// runner depends on; Plain is the unisolated implementation used with
// --insecure-no-sandbox, and the Linux namespace/cgroup sandbox implements
// the same interface.
package sandbox

import (
	"context"
	"errors"
	"io"
	"sync"
	"syscall"
	"time"
)

// ErrInfrastructure marks an Exec error that comes from the sandbox's own
// machinery (its cgroups, namespaces, init process), not from the program
// or the command: the same command may well run on another worker, or
// here after Repair. The message of such an error names what failed in
// general terms only; the details (host paths, kernel errors) go to the
// sandbox's log.
var ErrInfrastructure = errors.New("sandbox: infrastructure failure")

// ErrInUse is returned by New when what the sandbox must have to itself
// is held by another sandbox on the machine: its state directory, or (an
// explicit Config.UIDBase) part of its range of uids. It is a matter of
// configuration, not of the machine's ability to sandbox.
var ErrInUse = errors.New("in use by another sandbox on this host")

// Repairer is implemented by sandboxes that can rebuild their machinery
// after it broke (their cgroups removed from under them, their prepared
// sandboxes killed). Repair returns nil once the sandbox runs commands
// again.
type Repairer interface {
	Repair(ctx context.Context) error
}

// Limits bound one command. Zero means unlimited for that resource.
type Limits struct {
	CPU         time.Duration
	Wall        time.Duration
	MemoryBytes int64
	Processes   int64
	// OutputBytes caps stdout and stderr each; past it the output is
	// truncated, Outcome.OutputTruncated is set and the command is killed.
	OutputBytes int64
}

// Cmd is one command to run inside a job's work directory.
type Cmd struct {
	// Args[0] is the program: an absolute path, resolved by the caller.
	Args []string
	Env  []string
	// Dir is the job's work directory on the host, the only place the
	// command may write.
	Dir   string
	Stdin []byte
	// Input, if set, replaces Stdin: the command reads a pipe fed from
	// Input as its data comes (an interactive run), closed at Input's EOF
	// or error. Exec does not wait for a Read in progress when the
	// command ends: the caller makes it return (closes its reader) after.
	Input io.Reader
	// Signals, if set, carries signals for every process of the command
	// while it runs (a client's Ctrl-C).
	Signals <-chan syscall.Signal
	Limits  Limits
	// OnOutput, if set, receives output as it is produced ("stdout" or
	// "stderr"); it must not block for long. The data is only valid during
	// the call. It sees exactly what Outcome keeps: nothing past a limit.
	OnOutput func(stream string, data []byte)
	// Budget, if set, is an output allowance shared with other commands
	// (every step of one job): each byte kept from stdout or stderr takes
	// one from it, and once it is spent the output is truncated and the
	// command killed as at Limits.OutputBytes.
	Budget *OutputBudget
	// ReadOnlyPaths are host directories the command needs to read beyond
	// the sandbox's standard view (a toolchain outside /usr, such as
	// /root/.rustup/toolchains/<name>): shown read-only at the same path.
	// Plain ignores them.
	ReadOnlyPaths []string
	// Layers are host directories shown (at /cache, /cache1, …, with
	// their paths in Args and Env rewritten) with a writable layer
	// private to the command (a toolchain cache that grappe fills
	// and jobs only add to, as Go's GOCACHE). Nothing is ever writable by
	// two commands: that is how one job planted files for another.
	Layers []Layer
}

// Layer is a directory seen through a private writable layer: an overlay
// mount whose read-only lower layer is Seed, a host directory that the
// command can never change. What the command
// writes there lands in Upper; Work is the overlay's scratch directory.
// Upper and Work are empty host directories the caller makes on one file
// system (the job's, so that the writes are charged to it) outside Dir,
// and removes afterwards. Without the mount API the command gets Upper
// alone, an empty cache. Plain has no layers: the command
// uses Seed itself, which is acceptable only because Plain runs trusted
// code.
type Layer struct {
	Seed, Upper, Work string
}

// OutputBudget is a number of output bytes shared by several commands. It
// is safe for concurrent use.
type OutputBudget struct {
	mu   sync.Mutex
	left int64
	over bool
}

// NewOutputBudget returns a budget of n bytes.
func NewOutputBudget(n int64) *OutputBudget { return &OutputBudget{left: max(n, 0)} }

// Take grants up to n bytes and returns how many; granting fewer than
// asked marks the budget exceeded.
func (b *OutputBudget) Take(n int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.left {
		n, b.over = b.left, true
	}
	b.left -= n
	return n
}

// Left is what remains.
func (b *OutputBudget) Left() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.left
}

// Exceeded reports whether some output was refused.
func (b *OutputBudget) Exceeded() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.over
}

// Outcome is what a command did.
type Outcome struct {
	ExitCode        int
	Signal          string // "SIGKILL", … when killed by a signal
	Stdout, Stderr  []byte
	OutputTruncated bool
	CPU             time.Duration
	Wall            time.Duration
	MemoryKB        int64 // peak resident memory
	TimeLimit       bool  // killed for exceeding the CPU or wall limit
	MemoryLimit     bool  // killed by the out-of-memory killer
}

// Sandbox runs commands. Implementations are safe for concurrent use.
type Sandbox interface {
	// Exec runs cmd to completion and kills everything it started. An error
	// means the command could not be run at all (not that it failed).
	Exec(ctx context.Context, cmd *Cmd) (*Outcome, error)
	// Kind names the isolation: "none", "cgroup-v1" or "cgroup-v2".
	Kind() string
}
