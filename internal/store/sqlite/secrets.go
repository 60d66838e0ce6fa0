package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/grappe/grappe/internal/store"
)

// The cluster's secrets (schema version 9).

// PutSecret implements store.Store: insert unless present, then read what
// is stored, in one transaction.
func (s *Store) PutSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	var stored []byte
	_, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		if _, err := tx.Exec(`INSERT INTO cluster_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
			return 0, err
		}
		return 1, tx.QueryRow(`SELECT value FROM cluster_secrets WHERE name = ?`, name).Scan(&stored)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: PutSecret %q: %w", name, err)
	}
	return stored, nil
}

// SetSecret implements store.Store.
func (s *Store) SetSecret(ctx context.Context, name string, value []byte) error {
	_, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		return affected(tx.Exec(`INSERT INTO cluster_secrets (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value))
	})
	if err != nil {
		return fmt.Errorf("sqlite: SetSecret %q: %w", name, err)
	}
	return nil
}

// GetSecret implements store.Store.
func (s *Store) GetSecret(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM cluster_secrets WHERE name = ?`, name).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("sqlite: GetSecret %q: %w", name, store.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("sqlite: GetSecret %q: %w", name, err)
	}
	return v, nil
}
