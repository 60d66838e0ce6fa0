package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/grappe/grappe/internal/store"
)

// The cluster's secrets (migration 3).

// PutSecret implements store.Store: insert unless present, then read what
// is stored. The read sees the row of a concurrent first writer once its
// insert committed: ON CONFLICT waits for it.
func (s *Store) PutSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if _, err := s.db.Exec(ctx, `INSERT INTO cluster_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return nil, errorf("postgres: PutSecret %q: %w", name, err)
	}
	stored, err := s.GetSecret(ctx, name)
	if err != nil {
		return nil, errorf("postgres: PutSecret %q: %w", name, err)
	}
	return stored, nil
}

// SetSecret implements store.Store.
func (s *Store) SetSecret(ctx context.Context, name string, value []byte) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO cluster_secrets (name, value) VALUES ($1, $2)
	ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
		return errorf("postgres: SetSecret %q: %w", name, err)
	}
	return nil
}

// GetSecret implements store.Store.
func (s *Store) GetSecret(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.db.QueryRow(ctx, `SELECT value FROM cluster_secrets WHERE name = $1`, name).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, errorf("postgres: GetSecret %q: %w", name, store.ErrNotFound)
	case err != nil:
		return nil, errorf("postgres: GetSecret %q: %w", name, err)
	}
	return v, nil
}
