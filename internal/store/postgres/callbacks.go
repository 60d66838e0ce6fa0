package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// Batches and the callbacks' outbox (migration 7).

const callbackColumns = `kind, target, owner, url, format, created_at, attempts, first_at, next_at,
	last_at, last_status, last_error, delivered_at, failed_at, master, lease_until`

// CreateJobs implements store.Store: one transaction; with a quota it
// first locks the owner's counter (as CreateJob does), and each insert
// checks the count that the trigger raised with the batch's jobs before.
func (s *Store) CreateJobs(ctx context.Context, n *store.NewJobs, maxQueued int) error {
	type created struct{ seq, queued int64 }
	out := make([]created, len(n.Jobs))
	args := make([][]any, len(n.Jobs))
	for i, j := range n.Jobs {
		status, err := j.NewStatus()
		if err != nil {
			return errorf("postgres: CreateJobs %w", err)
		}
		labels, err := columns.Labels(j.Labels)
		if err != nil {
			return errorf("postgres: CreateJobs %q: %w", j.ID, err)
		}
		args[i] = createArgs(j, status, labels)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for i, j := range n.Jobs {
			var err error
			if maxQueued <= 0 {
				err = tx.QueryRow(ctx, sqlCreateJob, args[i]...).Scan(&out[i].seq, &out[i].queued)
			} else {
				if _, err = tx.Exec(ctx, sqlLockQueued, j.Owner); err != nil {
					return err
				}
				err = tx.QueryRow(ctx, sqlCreateJobUnderQuota, append(args[i][:len(args[i]):len(args[i])], maxQueued)...).
					Scan(&out[i].seq, &out[i].queued)
				if errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("%d queued jobs of %s: %w", maxQueued, j.Owner, store.ErrQuota)
				}
			}
			if err != nil {
				return fmt.Errorf("job %q: %w", j.ID, constraintErr(err))
			}
		}
		if b := n.Batch; b != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO batches (id, owner, created_at) VALUES ($1, $2, $3)`,
				b.ID, b.Owner, columns.Nanos(b.CreatedAt)); err != nil {
				return fmt.Errorf("batch %q: %w", b.ID, constraintErr(err))
			}
			idx := make([]int32, len(n.Jobs))
			for i := range idx {
				idx[i] = int32(i)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO batch_jobs (batch_id, idx, job_id)
			SELECT $1, i, j FROM unnest($2::INTEGER[], $3::TEXT[]) AS t(i, j)`, b.ID, idx, store.JobIDs(n.Jobs)); err != nil {
				return fmt.Errorf("batch %q: %w", b.ID, err)
			}
		}
		for _, c := range n.Callbacks {
			if _, err := tx.Exec(ctx, `INSERT INTO callbacks (kind, target, owner, url, format, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
				c.Kind, c.Target, c.Owner, c.URL, c.Format, columns.Nanos(c.CreatedAt)); err != nil {
				return fmt.Errorf("callback of %s %q: %w", c.Kind, c.Target, constraintErr(err))
			}
		}
		return nil
	})
	if err != nil {
		return errorf("postgres: CreateJobs: %w", err)
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
	err := s.db.QueryRow(ctx, `SELECT owner, created_at FROM batches WHERE id = $1`, id).Scan(&b.Owner, &created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil, errorf("postgres: GetBatch %q: %w", id, store.ErrNotFound)
	case err != nil:
		return nil, nil, errorf("postgres: GetBatch %q: %w", id, err)
	}
	b.CreatedAt = columns.Time(created)
	jobs, err := scanJobs(s.db.Query(ctx, `SELECT `+jobColumns+` FROM jobs
	JOIN (SELECT job_id, idx FROM batch_jobs WHERE batch_id = $1) b ON b.job_id = jobs.id ORDER BY b.idx`, id))
	if err != nil {
		return nil, nil, errorf("postgres: GetBatch %q: %w", id, err)
	}
	b.JobIDs = store.JobIDs(jobs)
	return &b, jobs, nil
}

// GetCallback implements store.Store.
func (s *Store) GetCallback(ctx context.Context, kind, target string) (*store.Callback, error) {
	c, err := scanCallback(s.db.QueryRow(ctx, `SELECT `+callbackColumns+` FROM callbacks WHERE kind = $1 AND target = $2`, kind, target))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, errorf("postgres: GetCallback %s %q: %w", kind, target, store.ErrNotFound)
	case err != nil:
		return nil, errorf("postgres: GetCallback %s %q: %w", kind, target, err)
	}
	return c, nil
}

// ClaimCallbacks implements store.Store: the due rows are locked with
// SKIP LOCKED, so masters claiming at once take different ones, and
// leased in the same statement.
func (s *Store) ClaimCallbacks(ctx context.Context, master string, now, until time.Time, limit int) ([]*store.Callback, error) {
	rows, err := s.db.Query(ctx, `UPDATE callbacks SET master = $1, lease_until = $2
	WHERE (kind, target) IN (SELECT c.kind, c.target FROM callbacks c
		WHERE c.delivered_at = 0 AND c.failed_at = 0 AND c.next_at <= $3 AND c.lease_until <= $3
		AND CASE c.kind
		WHEN 'job' THEN EXISTS (SELECT 1 FROM jobs j WHERE j.id = c.target AND j.status IN ('done', 'cancelled', 'failed'))
		ELSE NOT EXISTS (SELECT 1 FROM batch_jobs b JOIN jobs j ON j.id = b.job_id
			WHERE b.batch_id = c.target AND j.status IN ('queued', 'running')) END
		ORDER BY c.next_at LIMIT $4 FOR UPDATE SKIP LOCKED)
	RETURNING `+callbackColumns, master, columns.Nanos(until), columns.Nanos(now), limit)
	if err != nil {
		return nil, errorf("postgres: ClaimCallbacks: %w", err)
	}
	defer rows.Close()
	out := []*store.Callback{}
	for rows.Next() {
		c, err := scanCallback(rows)
		if err != nil {
			return nil, errorf("postgres: ClaimCallbacks: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, errorf("postgres: ClaimCallbacks: %w", err)
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
	tag, err := s.db.Exec(ctx, `UPDATE callbacks SET attempts = attempts + 1,
		first_at = CASE WHEN first_at = 0 THEN $1 ELSE first_at END, last_at = $1,
		last_status = $2, last_error = $3, delivered_at = $4, failed_at = $5, next_at = $6, lease_until = 0
	WHERE kind = $7 AND target = $8 AND master = $9 AND delivered_at = 0 AND failed_at = 0`,
		columns.Nanos(a.At), a.Status, a.Error, delivered, failed, columns.Nanos(a.Retry), kind, target, master)
	if err != nil {
		return errorf("postgres: RecordCallback %s %q: %w", kind, target, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := s.GetCallback(ctx, kind, target); err != nil {
		return errorf("postgres: RecordCallback: %w", err)
	}
	return errorf("postgres: RecordCallback %s %q by %s: %w", kind, target, master, store.ErrConflict)
}

func scanCallback(row rowScanner) (*store.Callback, error) {
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
