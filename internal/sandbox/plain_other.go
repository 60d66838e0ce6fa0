//go:build !linux

package sandbox

import (
	"context"
	"errors"
)

// ErrInvalidCmd is returned for a Cmd that cannot be run as given.
var ErrInvalidCmd = errors.New("sandbox: invalid command")

// Plain runs commands without isolation. It needs Linux (process groups
// killed as a whole, prlimit, rusage); elsewhere Exec always fails.
type Plain struct{}

var _ Sandbox = (*Plain)(nil)

// Kind is "none".
func (*Plain) Kind() string { return "none" }

// Exec fails: Plain is implemented for Linux only.
func (*Plain) Exec(context.Context, *Cmd) (*Outcome, error) {
	return nil, errors.ErrUnsupported
}
