//go:build linux

package sandbox

import (
	"context"
	"errors"
)

// infraError is a failure of the sandbox's machinery (see
// ErrInfrastructure). Error() says what could not be done, never how:
// the cause, with its host paths, is logged where the error is made and
// kept for errors.Is and errors.As.
type infraError struct {
	what string
	err  error
}

func (e *infraError) Error() string { return "sandbox: cannot " + e.what }

func (e *infraError) Unwrap() []error { return []error{ErrInfrastructure, e.err} }

// infra wraps err, a failure of the sandbox's machinery, logging its
// details.
func (l *Linux) infra(what string, err error) error {
	var ie *infraError
	if errors.As(err, &ie) {
		return err // already wrapped and logged
	}
	l.log.Warn("sandbox: cannot "+what, "err", err)
	return &infraError{what: what, err: err}
}

var _ Repairer = (*Linux)(nil)

// Repair rebuilds what the sandbox runs commands with: its base cgroups,
// re-created under the same owned name if they are gone, and its prepared
// sandboxes and cgroups, discarded (those in use are discarded when their
// command ends) and rebuilt. It then runs a trivial command, as New does,
// and returns nil only if that works.
func (l *Linux) Repair(ctx context.Context) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if err := l.cg.ensure(); err != nil {
		return l.infra("re-create the sandbox's cgroups", err)
	}
	l.pool.renew()
	if err := l.probe(ctx); err != nil {
		return l.infra("run a command after repair", err)
	}
	l.log.Info("sandbox: repaired")
	return nil
}
