package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// errTxLeftOpen is a pipeTx whose function returned without its last
// Send: a bug, rolled back.
var errTxLeftOpen = errors.New("postgres: transaction left open")

// A pipeTx is a transaction that costs no round trip of its own: its BEGIN
// travels in the pipeline of its first batch and its COMMIT in the
// pipeline of its last. A claim is then three round trips (the owners, the
// candidates, the writes) instead of five, and the rows it locks (the
// owner's queue counter above all, which every submission of that owner
// also takes) are released as the writes end instead of one round trip
// later.
type pipeTx struct {
	conn  *pgx.Conn
	begun bool
}

// Send sends b in one round trip, preceded by BEGIN if it is the
// transaction's first, and followed by COMMIT if last. The results go to
// the callbacks b's queries were queued with. If a statement fails,
// PostgreSQL skips the rest of the pipeline (the COMMIT too), and
// inPipeTx rolls the transaction back.
func (t *pipeTx) Send(ctx context.Context, b *pgx.Batch, last bool) error {
	var full pgx.Batch
	if !t.begun {
		full.Queue("BEGIN")
		t.begun = true
	}
	full.QueuedQueries = append(full.QueuedQueries, b.QueuedQueries...)
	if last {
		full.Queue("COMMIT")
	}
	return t.conn.SendBatch(ctx, &full).Close()
}

// Query runs a query inside the transaction, which an earlier Send began.
func (t *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.conn.Query(ctx, sql, args...)
}

// inPipeTx runs fn in a pipeTx on one connection of the pool: fn's last
// Send must say last (a transaction fn leaves open is rolled back, as is
// one whose statement failed). Like inTx, it runs fn again (at most
// maxTxTries times) when PostgreSQL aborted the transaction for a
// deadlock; fn must not keep anything from a failed run.
func (s *Store) inPipeTx(ctx context.Context, fn func(*pipeTx) error) error {
	var err error
	for range maxTxTries {
		if err = s.pipeTxOnce(ctx, fn); !retryable(err) {
			return err
		}
	}
	return err
}

func (s *Store) pipeTxOnce(ctx context.Context, fn func(*pipeTx) error) error {
	pc, err := s.db.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection released inside a transaction is closed by the pool,
	// so a ROLLBACK that could not be sent loses nothing but the
	// connection.
	defer pc.Release()
	err = fn(&pipeTx{conn: pc.Conn()})
	if pc.Conn().PgConn().TxStatus() != 'I' {
		if _, rerr := pc.Exec(ctx, "ROLLBACK"); err == nil {
			err = rerr
		}
		if err == nil {
			err = errTxLeftOpen
		}
	}
	return err
}
