package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// Shares: read-only links to jobs (the job_shares table).

// PutShare implements store.Store: an upsert on the job's row, so a new
// link replaces the old one in the same statement. The foreign key on
// jobs makes an unknown job ErrNotFound; the unique hash, ErrConflict.
func (s *Store) PutShare(ctx context.Context, sh store.Share) error {
	if sh.JobID == "" || sh.Hash == "" {
		return errors.New("postgres: PutShare: empty job id or hash")
	}
	_, err := s.db.Exec(ctx, `INSERT INTO job_shares (job_id, hash, created_by, created_at) VALUES ($1, $2, $3, $4)
	ON CONFLICT (job_id) DO UPDATE SET hash = excluded.hash, created_by = excluded.created_by, created_at = excluded.created_at`,
		sh.JobID, sh.Hash, sh.CreatedBy, columns.Nanos(sh.CreatedAt))
	if err != nil {
		return errorf("postgres: PutShare %q: %w", sh.JobID, constraintErr(err))
	}
	return nil
}

// ShareByHash implements store.Store.
func (s *Store) ShareByHash(ctx context.Context, hash string) (*store.Share, error) {
	return s.share(ctx, "ShareByHash", `SELECT job_id, hash, created_by, created_at FROM job_shares WHERE hash = $1`, hash)
}

// JobShare implements store.Store.
func (s *Store) JobShare(ctx context.Context, jobID string) (*store.Share, error) {
	return s.share(ctx, "JobShare", `SELECT job_id, hash, created_by, created_at FROM job_shares WHERE job_id = $1`, jobID)
}

// DeleteShare implements store.Store.
func (s *Store) DeleteShare(ctx context.Context, jobID string) error {
	return s.deleteOne(ctx, "DeleteShare", jobID, `DELETE FROM job_shares WHERE job_id = $1`)
}

func (s *Store) share(ctx context.Context, op, query, key string) (*store.Share, error) {
	var (
		sh      store.Share
		created int64
	)
	err := s.db.QueryRow(ctx, query, key).Scan(&sh.JobID, &sh.Hash, &sh.CreatedBy, &created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, errorf("postgres: %s: %w", op, store.ErrNotFound)
	case err != nil:
		return nil, errorf("postgres: %s: %w", op, err)
	}
	sh.CreatedAt = columns.Time(created)
	return &sh, nil
}
