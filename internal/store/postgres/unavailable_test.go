package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/grappe/grappe/internal/store"
)

func TestUnreachableErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("syntax error"), false},
		{&pgconn.PgError{Code: "23505"}, false},                      // unique violation: a statement's failure
		{&pgconn.PgError{Code: "57014"}, false},                      // query cancelled
		{context.Canceled, false},                                    // the caller left
		{&pgconn.PgError{Code: "57P01"}, true},                       // admin shutdown: the server is stopping
		{&pgconn.PgError{Code: "57P03"}, true},                       // the server is starting
		{&pgconn.PgError{Code: "08006"}, true},                       // connection failure
		{&pgconn.PgError{Code: "53300"}, true},                       // too many connections
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, true}, // nobody listens
		{fmt.Errorf("read: %w", pgconn.ErrConnClosed), true},
	} {
		if got := unreachable(tc.err); got != tc.want {
			t.Errorf("unreachable(%v) = %v, want %v", tc.err, got, tc.want)
		}
		if got := errors.Is(errorf("postgres: op: %w", tc.err), store.ErrUnavailable); tc.err != nil && got != tc.want {
			t.Errorf("errorf(%v) matches ErrUnavailable: %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A server that drops the store's connections (as a restart does) makes
// the store answer ErrUnavailable, not an internal error, and the store
// works again without being reopened once the server takes connections.
func TestConnectionsDroppedThenBack(t *testing.T) {
	url := newDatabase(t)
	s := openTest(t, url)
	defer s.Close()
	ctx := t.Context()
	if _, err := s.GetJob(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetJob before: %v, want not found", err)
	}
	admin, err := pgconn.Connect(ctx, server.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// Every connection of the store's database, as a fast shutdown ends them.
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf(
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s' AND pid <> pg_backend_pid()`, cfg.Database)).ReadAll(); err != nil {
		t.Fatal(err)
	}
	var unavailable bool
	for range 3 { // the pool may hold several dead connections
		_, err := s.GetJob(ctx, "nope")
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("GetJob on a dropped connection: %v, want ErrUnavailable", err)
		}
		unavailable = true
	}
	if !unavailable {
		t.Log("the pool replaced the dropped connection before use; the class was checked by TestUnreachableErrors")
	}
	if _, err := s.GetJob(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetJob after: %v, want not found (the store works again)", err)
	}
}
