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

// identityColumns is what scanIdentity reads, in its order.
const identityColumns = `name, id, serial, created_at, expires_at, revoked_at`

// CreateWorkerIdentity implements store.Store. One upsert: the WHERE of its
// DO UPDATE is the compare-and-set that keeps two racing joins, or a join
// and a live worker, from both holding the name.
func (s *Store) CreateWorkerIdentity(ctx context.Context, w *store.WorkerIdentity) error {
	op := fmt.Sprintf("CreateWorkerIdentity %q", w.Name)
	if w.Name == "" || w.ID == "" {
		return fmt.Errorf("sqlite: %s: name and id are required", op)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO worker_identities (`+identityColumns+`)
		VALUES (?1, ?2, ?3, ?4, ?5, 0)
		ON CONFLICT (name) DO UPDATE SET id = excluded.id, serial = excluded.serial,
			created_at = excluded.created_at, expires_at = excluded.expires_at, revoked_at = 0
		WHERE worker_identities.revoked_at != 0
			OR (worker_identities.expires_at != 0 AND worker_identities.expires_at <= ?4)`,
		w.Name, w.ID, w.Serial, columns.Nanos(w.CreatedAt), columns.Nanos(w.ExpiresAt))
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: %s: the name has a live identity: %w", op, store.ErrConflict)
	}
	return nil
}

// RenewWorkerIdentity implements store.Store.
func (s *Store) RenewWorkerIdentity(ctx context.Context, name, oldSerial, serial string, expires time.Time) (*store.WorkerIdentity, error) {
	op := fmt.Sprintf("RenewWorkerIdentity %q", name)
	w, err := scanIdentity(s.w.QueryRowContext(ctx, `UPDATE worker_identities SET serial = ?1, expires_at = ?2
		WHERE name = ?3 AND serial = ?4 AND revoked_at = 0
		RETURNING `+identityColumns, serial, columns.Nanos(expires), name, oldSerial))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.GetWorkerIdentity(ctx, name); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil, fmt.Errorf("sqlite: %s: not the current certificate: %w", op, store.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return w, nil
}

// GetWorkerIdentity implements store.Store.
func (s *Store) GetWorkerIdentity(ctx context.Context, name string) (*store.WorkerIdentity, error) {
	w, err := scanIdentity(s.r.QueryRowContext(ctx, `SELECT `+identityColumns+` FROM worker_identities WHERE name = ?`, name))
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
	rows, err := s.r.QueryContext(ctx, `SELECT `+identityColumns+` FROM worker_identities ORDER BY name`)
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
	res, err := s.w.ExecContext(ctx, `UPDATE worker_identities SET revoked_at = ? WHERE name = ?`, columns.Nanos(at), name)
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
	if err := row.Scan(&w.Name, &w.ID, &w.Serial, &created, &expires, &revoked); err != nil {
		return nil, err
	}
	w.CreatedAt, w.ExpiresAt, w.RevokedAt = columns.Time(created), columns.Time(expires), columns.Time(revoked)
	return &w, nil
}
