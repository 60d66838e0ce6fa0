// Package postgres is grappe's shared durable store: store.Store on a
// PostgreSQL database, through pgx's connection pool, for several masters
// on one database.
//
// Concurrency model. Unlike the SQLite backend, whose exclusion is its one
// write connection, every method here may race the same method of another
// master. Each job transition is one conditional UPDATE (a compare-and-set
// on status, attempt and worker), which PostgreSQL re-checks on the latest
// row version under read committed, so of two racing callers exactly one
// sees a row changed. The operations of several rows (ClaimJobs,
// RescueExpired) first lock their job rows with FOR UPDATE SKIP LOCKED, so
// two masters never wait for each other's jobs, let alone claim one twice,
// and then lock the owners' queued_counts rows in owner order before
// changing anything, so their waits cannot form a cycle. The queued-job
// quota locks the owner's queued_counts row for the whole submission.
//
// The schema, times included, mirrors the SQLite backend's (schema.go).
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/grappe/grappe/internal/store"
)

// Interface guard.
var _ store.Store = (*Store)(nil)

// Config configures New.
type Config struct {
	// URL is the connection string, as libpq takes it: a URL such as
	// postgres://grappe@db.example/grappe?sslmode=verify-full, or a
	// key=value list. The database must exist; New creates the tables.
	URL string
	// MaxConns bounds the pool's connections (0: pgxpool's default, the
	// larger of 4 and the number of CPUs).
	MaxConns int32
	// MasterID names the master this store serves. Its connections say
	// it to PostgreSQL (the setting grappe.master), which records it as
	// the job's accepted_by and tells a job's end only to the masters
	// concerned (migration 12, Listen). Empty: every end to every master.
	MasterID string
}

// Store is a store.Store on PostgreSQL. Create it with New; it is safe for
// concurrent use, and any number of Stores, in any number of processes,
// may share one database.
type Store struct {
	db       *pgxpool.Pool
	masterID string
}

// New connects to cfg.URL and applies the pending schema migrations.
// Masters starting together on one database take turns at the migrations
// (schema.go).
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.URL == "" {
		return nil, errors.New("postgres: New: empty URL")
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, errorf("postgres: New: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	if id := cfg.MasterID; id != "" {
		pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, `SELECT set_config('grappe.master', $1, false)`, id)
			return err
		}
	}
	db, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, errorf("postgres: New: %w", err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, masterID: cfg.MasterID}, nil
}

// Close closes the pool, waiting for the connections in use to be given
// back.
func (s *Store) Close() error {
	s.db.Close()
	return nil
}

// PostgreSQL error codes the store branches on.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeSerialization       = "40001"
	codeDeadlock            = "40P01"
)

// constraintErr maps constraint violations to the store's sentinels: a
// duplicate key is a conflict, a dangling foreign key a missing parent.
// Other errors are returned unchanged.
func constraintErr(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case codeUniqueViolation:
		return fmt.Errorf("%w: %v", store.ErrConflict, err)
	case codeForeignKeyViolation:
		return fmt.Errorf("%w: %v", store.ErrNotFound, err)
	}
	return err
}

// retryable reports whether a transaction failed only for its timing: a
// deadlock PostgreSQL broke by aborting it. The lock order of the claims
// and rescues makes those unlikely, not impossible (an index page split,
// a foreign key check), and such a transaction changed nothing, so it is
// run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == codeDeadlock || pe.Code == codeSerialization)
}

// maxTxTries bounds the runs of a transaction that keeps being aborted.
const maxTxTries = 5

// inTx runs fn in a transaction, committing if it returns nil, and runs it
// again (at most maxTxTries times) when PostgreSQL aborted it for a
// deadlock. fn must not keep anything from a failed run.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for range maxTxTries {
		if err = pgx.BeginFunc(ctx, s.db, fn); !retryable(err) {
			return err
		}
	}
	return err
}

// rowScanner is a pgx.Row or pgx.Rows.
type rowScanner interface{ Scan(...any) error }
