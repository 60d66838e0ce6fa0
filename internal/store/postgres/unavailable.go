package postgres

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/grappe/grappe/internal/store"
)

// errorf is fmt.Errorf for the errors the store returns. An error that
// says the server cannot be reached also matches store.ErrUnavailable, so
// that a master answers 503 and keeps its workers rather than report an
// internal error (and callers need not know pgx to tell the two apart).
func errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if unreachable(err) {
		return fmt.Errorf("%w (%w)", err, store.ErrUnavailable)
	}
	return err
}

// unreachable reports whether err means the server is gone, going or
// refusing connections, rather than that a statement failed: the
// connection could not be made or was lost, or the server said it is
// shutting down, starting, or out of connections.
func unreachable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "08": // connection exception
			return true
		case len(pe.Code) == 5 && pe.Code[:2] == "53": // insufficient resources: too many connections…
			return true
		}
		switch pe.Code {
		case "57P01", "57P02", "57P03": // admin shutdown, crash shutdown, cannot connect now
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.SafeToRetry(err)
}
