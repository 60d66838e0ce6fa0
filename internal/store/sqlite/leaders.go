package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// Leadership and the autoscaler's workers (schema version 10).

// Lead implements store.Store: one upsert that takes the row when it is
// free, expired or the holder's own, and leaves it otherwise.
func (s *Store) Lead(ctx context.Context, role, holder string, now, until time.Time) (bool, error) {
	n, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		return affected(tx.Exec(`INSERT INTO leaders (role, holder, until) VALUES (?, ?, ?)
		ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, until = excluded.until
		WHERE leaders.holder = excluded.holder OR leaders.until <= ?`,
			role, holder, columns.Nanos(until), columns.Nanos(now)))
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: Lead %q: %w", role, err)
	}
	return n == 1, nil
}

// Resign implements store.Store.
func (s *Store) Resign(ctx context.Context, role, holder string) error {
	_, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		return affected(tx.Exec(`DELETE FROM leaders WHERE role = ? AND holder = ?`, role, holder))
	})
	if err != nil {
		return fmt.Errorf("sqlite: Resign %q: %w", role, err)
	}
	return nil
}

// PutAutoscaled implements store.Store.
func (s *Store) PutAutoscaled(ctx context.Context, a *store.Autoscaled) error {
	_, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		return affected(tx.Exec(`INSERT INTO autoscaled_workers (name, provisioner, master, reason, started_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET provisioner = excluded.provisioner,
		master = excluded.master, reason = excluded.reason, started_at = excluded.started_at`,
			a.Name, a.Provisioner, a.Master, a.Reason, columns.Nanos(a.StartedAt)))
	})
	if err != nil {
		return fmt.Errorf("sqlite: PutAutoscaled %q: %w", a.Name, err)
	}
	return nil
}

// ListAutoscaled implements store.Store.
func (s *Store) ListAutoscaled(ctx context.Context) ([]*store.Autoscaled, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, provisioner, master, reason, started_at
	FROM autoscaled_workers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ListAutoscaled: %w", err)
	}
	defer rows.Close()
	out := []*store.Autoscaled{}
	for rows.Next() {
		var (
			a       store.Autoscaled
			started int64
		)
		if err := rows.Scan(&a.Name, &a.Provisioner, &a.Master, &a.Reason, &started); err != nil {
			return nil, fmt.Errorf("sqlite: ListAutoscaled: %w", err)
		}
		a.StartedAt = columns.Time(started)
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: ListAutoscaled: %w", err)
	}
	return out, nil
}

// DeleteAutoscaled implements store.Store.
func (s *Store) DeleteAutoscaled(ctx context.Context, name string) error {
	_, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		return affected(tx.Exec(`DELETE FROM autoscaled_workers WHERE name = ?`, name))
	})
	if err != nil {
		return fmt.Errorf("sqlite: DeleteAutoscaled %q: %w", name, err)
	}
	return nil
}
