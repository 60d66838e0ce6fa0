package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// PutWorkerIdentity implements store.Store.
func (s *Store) PutWorkerIdentity(ctx context.Context, w *store.WorkerIdentity) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO worker_identities (name, serial, created_at, expires_at, revoked_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET serial = excluded.serial, created_at = excluded.created_at,
			expires_at = excluded.expires_at, revoked_at = excluded.revoked_at`,
		w.Name, w.Serial, nanos(w.CreatedAt), nanos(w.ExpiresAt), nanos(w.RevokedAt))
	if err != nil {
		return fmt.Errorf("sqlite: PutWorkerIdentity %q: %w", w.Name, err)
	}
	return nil
}

// GetWorkerIdentity implements store.Store.
func (s *Store) GetWorkerIdentity(ctx context.Context, name string) (*store.WorkerIdentity, error) {
	w, err := scanIdentity(s.r.QueryRowContext(ctx, `SELECT name, serial, created_at, expires_at, revoked_at
		FROM worker_identities WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: GetWorkerIdentity %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: GetWorkerIdentity %q: %w", name, err)
	}
	return w, nil
}

// ListWorkerIdentities implements store.Store, by name.
func (s *Store) ListWorkerIdentities(ctx context.Context) ([]*store.WorkerIdentity, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, serial, created_at, expires_at, revoked_at
		FROM worker_identities ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ListWorkerIdentities: %w", err)
	}
	defer rows.Close()
	var out []*store.WorkerIdentity
	for rows.Next() {
		w, err := scanIdentity(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: ListWorkerIdentities: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: ListWorkerIdentities: %w", err)
	}
	return out, nil
}

// RevokeWorkerIdentity implements store.Store.
func (s *Store) RevokeWorkerIdentity(ctx context.Context, name string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE worker_identities SET revoked_at = ? WHERE name = ?`, nanos(at), name)
	if err != nil {
		return fmt.Errorf("sqlite: RevokeWorkerIdentity %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: RevokeWorkerIdentity %q: %w", name, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: RevokeWorkerIdentity %q: %w", name, store.ErrNotFound)
	}
	return nil
}

func scanIdentity(row interface{ Scan(...any) error }) (*store.WorkerIdentity, error) {
	var w store.WorkerIdentity
	var created, expires, revoked int64
	if err := row.Scan(&w.Name, &w.Serial, &created, &expires, &revoked); err != nil {
		return nil, err
	}
	w.CreatedAt, w.ExpiresAt, w.RevokedAt = fromNanos(created), fromNanos(expires), fromNanos(revoked)
	return &w, nil
}
