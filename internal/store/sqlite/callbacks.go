package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// Batches and the callbacks' outbox (schema version 11).

const callbackColumns = `kind, target, owner, url, format, created_at, attempts, first_at, next_at,
	last_at, last_status, last_error, delivered_at, failed_at, master, lease_until`

// callbackDue is the condition of a callback ClaimCallbacks may lease:
// pending, due at ?1 (and not leased past it), its job finished or, for a
// batch, no job of it still queued or running.
const callbackDue = `c.delivered_at = 0 AND c.failed_at = 0 AND c.next_at <= ?1 AND c.lease_until <= ?1
	AND CASE c.kind
	WHEN 'job' THEN EXISTS (SELECT 1 FROM jobs j WHERE j.id = c.target AND j.status IN ('done', 'cancelled', 'failed'))
	ELSE NOT EXISTS (SELECT 1 FROM batch_jobs b JOIN jobs j ON j.id = b.job_id
		WHERE b.batch_id = c.target AND j.status IN ('queued', 'running')) END`

// CreateJobs implements store.Store: every insert in one transaction of
// the committer, each job under the same quota statement as CreateJob
// (so the quota counts the batch's own jobs as they go in).
func (s *Store) CreateJobs(ctx context.Context, n *store.NewJobs, maxQueued int) error {
	type created struct{ seq, queued int64 }
	out := make([]created, len(n.Jobs))
	args := make([][]any, len(n.Jobs))
	for i, j := range n.Jobs {
		status, err := j.NewStatus()
		if err != nil {
			return fmt.Errorf("sqlite: CreateJobs %w", err)
		}
		labels, err := columns.Labels(j.Labels)
		if err != nil {
			return fmt.Errorf("sqlite: CreateJobs %q: %w", j.ID, err)
		}
		args[i] = append(createArgs(j, status, labels), max(maxQueued, 0))
	}
	_, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		st := tx.Stmt(s.createJob)
		for i, j := range n.Jobs {
			err := st.QueryRow(args[i]...).Scan(&out[i].seq, &out[i].queued)
			if errors.Is(err, sql.ErrNoRows) {
				return 0, fmt.Errorf("%d queued jobs of %s: %w", maxQueued, j.Owner, store.ErrQuota)
			}
			if err != nil {
				return 0, fmt.Errorf("job %q: %w", j.ID, constraintErr(err))
			}
		}
		if b := n.Batch; b != nil {
			if _, err := tx.Exec(`INSERT INTO batches (id, owner, created_at) VALUES (?, ?, ?)`,
				b.ID, b.Owner, columns.Nanos(b.CreatedAt)); err != nil {
				return 0, fmt.Errorf("batch %q: %w", b.ID, constraintErr(err))
			}
			for i, j := range n.Jobs {
				if _, err := tx.Exec(`INSERT INTO batch_jobs (batch_id, idx, job_id) VALUES (?, ?, ?)`, b.ID, i, j.ID); err != nil {
					return 0, fmt.Errorf("batch %q: %w", b.ID, err)
				}
			}
		}
		for _, c := range n.Callbacks {
			if _, err := tx.Exec(`INSERT INTO callbacks (kind, target, owner, url, format, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
				c.Kind, c.Target, c.Owner, c.URL, c.Format, columns.Nanos(c.CreatedAt)); err != nil {
				return 0, fmt.Errorf("callback of %s %q: %w", c.Kind, c.Target, constraintErr(err))
			}
		}
		return int64(len(n.Jobs)), nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: CreateJobs: %w", err)
	}
	for i, j := range n.Jobs {
		j.Seq, j.QueuedAt = out[i].seq, columns.Time(out[i].queued)
	}
	if n.Batch != nil {
		n.Batch.JobIDs = store.JobIDs(n.Jobs)
	}
	return nil
}

// GetBatch implements store.Store.
func (s *Store) GetBatch(ctx context.Context, id string) (*store.Batch, []*store.Job, error) {
	var (
		b       = store.Batch{ID: id}
		created int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT owner, created_at FROM batches WHERE id = ?`, id).Scan(&b.Owner, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil, fmt.Errorf("sqlite: GetBatch %q: %w", id, store.ErrNotFound)
	case err != nil:
		return nil, nil, fmt.Errorf("sqlite: GetBatch %q: %w", id, err)
	}
	b.CreatedAt = columns.Time(created)
	// jobColumns unqualified would be ambiguous in the join: read the
	// job rows through a sub-select in the batch's order.
	jobs, err := s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs
	JOIN (SELECT job_id, idx FROM batch_jobs WHERE batch_id = ?) b ON b.job_id = jobs.id ORDER BY b.idx`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: GetBatch %q: %w", id, err)
	}
	b.JobIDs = store.JobIDs(jobs)
	return &b, jobs, nil
}

// GetCallback implements store.Store.
func (s *Store) GetCallback(ctx context.Context, kind, target string) (*store.Callback, error) {
	c, err := scanCallback(s.r.QueryRowContext(ctx, `SELECT `+callbackColumns+` FROM callbacks WHERE kind = ? AND target = ?`, kind, target))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("sqlite: GetCallback %s %q: %w", kind, target, store.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("sqlite: GetCallback %s %q: %w", kind, target, err)
	}
	return c, nil
}

// ClaimCallbacks implements store.Store: the choice and the lease in one
// transaction of the single writer, so two handles never lease one row.
func (s *Store) ClaimCallbacks(ctx context.Context, master string, now, until time.Time, limit int) ([]*store.Callback, error) {
	var out []*store.Callback
	_, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		out = out[:0]
		rows, err := tx.Query(`SELECT c.kind, c.target FROM callbacks c INDEXED BY callbacks_pending
		WHERE `+callbackDue+` ORDER BY c.next_at LIMIT ?2`, columns.Nanos(now), limit)
		if err != nil {
			return 0, err
		}
		var keys [][2]string
		for rows.Next() {
			var k [2]string
			if err := rows.Scan(&k[0], &k[1]); err != nil {
				rows.Close()
				return 0, err
			}
			keys = append(keys, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		for _, k := range keys {
			c, err := scanCallback(tx.QueryRow(`UPDATE callbacks SET master = ?, lease_until = ?
			WHERE kind = ? AND target = ? RETURNING `+callbackColumns, master, columns.Nanos(until), k[0], k[1]))
			if err != nil {
				return 0, err
			}
			out = append(out, c)
		}
		return int64(len(out)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: ClaimCallbacks: %w", err)
	}
	return out, nil
}

// RecordCallback implements store.Store: a compare-and-set on the lease.
func (s *Store) RecordCallback(ctx context.Context, kind, target, master string, a store.CallbackAttempt) error {
	delivered, failed := int64(0), int64(0)
	switch {
	case a.Delivered:
		delivered = columns.Nanos(a.At)
	case a.Retry.IsZero():
		failed = columns.Nanos(a.At)
	}
	n, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		return affected(tx.Exec(`UPDATE callbacks SET attempts = attempts + 1,
			first_at = CASE WHEN first_at = 0 THEN ?1 ELSE first_at END, last_at = ?1,
			last_status = ?2, last_error = ?3, delivered_at = ?4, failed_at = ?5, next_at = ?6, lease_until = 0
		WHERE kind = ?7 AND target = ?8 AND master = ?9 AND delivered_at = 0 AND failed_at = 0`,
			columns.Nanos(a.At), a.Status, a.Error, delivered, failed, columns.Nanos(a.Retry), kind, target, master))
	})
	if err != nil {
		return fmt.Errorf("sqlite: RecordCallback %s %q: %w", kind, target, err)
	}
	if n == 1 {
		return nil
	}
	if _, err := s.GetCallback(ctx, kind, target); err != nil {
		return fmt.Errorf("sqlite: RecordCallback: %w", err)
	}
	return fmt.Errorf("sqlite: RecordCallback %s %q by %s: %w", kind, target, master, store.ErrConflict)
}

func scanCallback(row interface{ Scan(...any) error }) (*store.Callback, error) {
	var (
		c                                             store.Callback
		created, first, next, last, delivered, failed int64
		lease                                         int64
	)
	err := row.Scan(&c.Kind, &c.Target, &c.Owner, &c.URL, &c.Format, &created, &c.Attempts, &first, &next,
		&last, &c.LastStatus, &c.LastError, &delivered, &failed, &c.Master, &lease)
	if err != nil {
		return nil, err
	}
	c.CreatedAt, c.FirstAt, c.NextAt, c.LastAt = columns.Time(created), columns.Time(first), columns.Time(next), columns.Time(last)
	c.DeliveredAt, c.FailedAt, c.LeaseUntil = columns.Time(delivered), columns.Time(failed), columns.Time(lease)
	return &c, nil
}
