package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// Group commit. The job transitions (create, start, requeue, finish) are
// single statements, each its own transaction when run alone; under load a
// commit per statement is most of SQLite's cost (the WAL frames of the same
// pages written again and again, and with synchronous=FULL an fsync each).
// The committer runs whatever transitions are waiting in one transaction
// instead: alone, a transition is committed at once, exactly as before;
// while a commit is in progress the next ones gather behind it.
//
// A failing statement does not abort the others: SQLite backs out only the
// statement that failed (a constraint violation) and the transaction goes
// on. A failing COMMIT fails every transition of the batch, none of which
// is then stored. Each caller learns its own outcome only after the commit,
// so no success is reported for a write that could still be lost.

// maxBatch bounds one transaction, so a burst cannot hold the write lock
// (and delay readers' checkpoints) for long.
const maxBatch = 128

// errClosed is returned for writes after Close.
var errClosed = errors.New("sqlite: store closed")

// write is one transition waiting for the committer: a statement
// prepared on the write pool and its arguments, and for a statement with
// a RETURNING clause, what reads the row it returns; or a function of
// several statements (a claim, a rescue), which runs in a transaction of
// its own or under a savepoint of the batch's, so that it is all or
// nothing whatever the others do.
type write struct {
	st   *sql.Stmt
	args []any
	scan func(*sql.Row) error
	fn   func(*sql.Tx) (int64, error)
	done chan writeResult
}

type writeResult struct {
	rows int64
	err  error
}

// committer owns the write connection's transitions.
type committer struct {
	db       *sql.DB
	queue    chan *write
	quit     chan struct{}
	done     chan struct{}
	quitOnce sync.Once
}

func newCommitter(db *sql.DB) *committer {
	c := &committer{db: db, queue: make(chan *write, maxBatch), quit: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// exec queues the statement and waits for its batch to commit; it returns
// the rows the statement affected. Once queued the write is waited for
// even if ctx ends: the caller must not be told it failed when it may yet
// be committed.
func (c *committer) exec(ctx context.Context, st *sql.Stmt, args ...any) (int64, error) {
	return c.do(ctx, &write{st: st, args: args})
}

// query is exec for a statement that returns the row it changed, if any:
// scan reads it, and the count is 1 when there was one.
func (c *committer) query(ctx context.Context, scan func(*sql.Row) error, st *sql.Stmt, args ...any) (int64, error) {
	return c.do(ctx, &write{st: st, args: args, scan: scan})
}

// tx queues fn, which runs its statements on the transaction it is given
// and returns a count for the caller; like exec, it returns after the
// commit. What fn computes must be read by the caller only after tx
// returns nil: until the commit it may yet be rolled back.
func (c *committer) tx(ctx context.Context, fn func(*sql.Tx) (int64, error)) (int64, error) {
	return c.do(ctx, &write{fn: fn})
}

func (c *committer) do(ctx context.Context, w *write) (int64, error) {
	w.done = make(chan writeResult, 1)
	select {
	case c.queue <- w:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-c.quit:
		return 0, errClosed
	}
	select {
	case r := <-w.done:
		return r.rows, r.err
	case <-c.done:
		// The committer answers every write it took before it stops: no
		// answer means this one came in after and was never run.
		select {
		case r := <-w.done:
			return r.rows, r.err
		default:
			return 0, errClosed
		}
	}
}

func (c *committer) run() {
	defer close(c.done)
	batch := make([]*write, 0, maxBatch)
	for {
		select {
		case w := <-c.queue:
			batch = append(batch[:0], w)
		case <-c.quit:
			c.failQueued()
			return
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case w := <-c.queue:
				batch = append(batch, w)
			default:
				break gather
			}
		}
		c.commit(batch)
		clear(batch)
	}
}

// commit runs one batch in one transaction and answers its writers; a
// batch of one is a statement on its own, which SQLite commits by itself
// for less. The transaction does not take any writer's context: one
// caller giving up must not roll back the others' writes.
func (c *committer) commit(batch []*write) {
	if len(batch) == 1 && batch[0].fn == nil {
		w := batch[0]
		rows, err := w.run(w.st)
		w.done <- writeResult{rows, err}
		return
	}
	results := make([]writeResult, len(batch))
	err := func() error {
		tx, err := c.db.BeginTx(context.Background(), nil)
		if err != nil {
			return err
		}
		for i, w := range batch {
			if w.fn != nil {
				results[i].rows, results[i].err = runFn(tx, w.fn)
				continue
			}
			results[i].rows, results[i].err = w.run(tx.Stmt(w.st))
		}
		return tx.Commit()
	}()
	for i, w := range batch {
		if err != nil {
			results[i] = writeResult{err: fmt.Errorf("commit: %w", err)}
		}
		w.done <- results[i]
	}
}

// failQueued answers the writes still queued at Close.
func (c *committer) failQueued() {
	for {
		select {
		case w := <-c.queue:
			w.done <- writeResult{err: errClosed}
		default:
			return
		}
	}
}

// close stops the committer after the batch in progress.
func (c *committer) close() {
	c.quitOnce.Do(func() { close(c.quit) })
	<-c.done
}

// run runs the write's statement (st: the write's own, or its copy in a
// transaction) and counts the rows it changed.
func (w *write) run(st *sql.Stmt) (int64, error) {
	if w.scan != nil {
		switch err := w.scan(st.QueryRow(w.args...)); {
		case errors.Is(err, sql.ErrNoRows):
			return 0, nil
		case err != nil:
			return 0, err
		}
		return 1, nil
	}
	return affected(st.Exec(w.args...))
}

// affected is the number of rows a statement changed, taking Exec's two
// results as they come.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// runFn runs a function write under a savepoint of the batch's
// transaction: if it fails, its own statements are undone and the rest of
// the batch goes on.
func runFn(tx *sql.Tx, fn func(*sql.Tx) (int64, error)) (int64, error) {
	if _, err := tx.Exec("SAVEPOINT fn"); err != nil {
		return 0, err
	}
	n, err := fn(tx)
	if err != nil {
		if _, rerr := tx.Exec("ROLLBACK TO fn"); rerr != nil {
			return 0, errors.Join(err, rerr)
		}
	}
	if _, rerr := tx.Exec("RELEASE fn"); rerr != nil {
		return 0, errors.Join(err, rerr)
	}
	return n, err
}
