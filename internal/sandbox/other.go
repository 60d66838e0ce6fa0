//go:build !linux

package sandbox

import (
	"context"
	"errors"
)

var (
	// ErrNotAvailable is returned by New when this machine cannot run the
	// sandbox: on this system, always.
	ErrNotAvailable = errors.New("sandbox: isolation not available")
	// ErrExec is returned by Exec when the program could not be executed.
	ErrExec = errors.New("sandbox: cannot execute program")
	// ErrClosed is returned by Exec after Close.
	ErrClosed = errors.New("sandbox: closed")
)

// Linux is the Linux sandbox; it needs Linux.
type Linux struct{}

var _ Sandbox = (*Linux)(nil)

// New fails: the sandbox needs Linux namespaces and cgroups.
func New(Config) (*Linux, error) {
	return nil, errors.Join(ErrNotAvailable, errors.ErrUnsupported)
}

// DefaultReadOnly is the Linux sandbox's default read-only view.
func DefaultReadOnly() []string { return nil }

// Kind is "none".
func (*Linux) Kind() string { return "none" }

// Exec fails.
func (*Linux) Exec(context.Context, *Cmd) (*Outcome, error) { return nil, errors.ErrUnsupported }

// Close does nothing.
func (*Linux) Close() error { return nil }

// BaseCgroups is empty: there are none.
func (*Linux) BaseCgroups() []string { return nil }

// InitMain returns at once: there is no sandbox init on this system.
func InitMain() {}

// Scratch is a tmpfs for work directories: Linux only.
type Scratch struct{}

// MountScratch fails: tmpfs scratch space is Linux only.
func MountScratch(string, int64) (*Scratch, error) { return nil, errors.ErrUnsupported }

// Dir is empty.
func (*Scratch) Dir() string { return "" }

// Close does nothing.
func (*Scratch) Close() error { return nil }
