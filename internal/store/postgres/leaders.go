package postgres

import (
	"context"
	"time"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// Leadership and the autoscaler's workers (migration 5).

// Lead implements store.Store: one upsert that takes the row when it is
// free, expired or the holder's own. Of masters racing for a free or
// expired row, ON CONFLICT serializes them on the row and re-checks the
// WHERE against the winner's commit: one holds it.
func (s *Store) Lead(ctx context.Context, role, holder string, now, until time.Time) (bool, error) {
	tag, err := s.db.Exec(ctx, `INSERT INTO leaders (role, holder, until) VALUES ($1, $2, $3)
	ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, until = excluded.until
	WHERE leaders.holder = excluded.holder OR leaders.until <= $4`,
		role, holder, columns.Nanos(until), columns.Nanos(now))
	if err != nil {
		return false, errorf("postgres: Lead %q: %w", role, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Resign implements store.Store.
func (s *Store) Resign(ctx context.Context, role, holder string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM leaders WHERE role = $1 AND holder = $2`, role, holder); err != nil {
		return errorf("postgres: Resign %q: %w", role, err)
	}
	return nil
}

// PutAutoscaled implements store.Store.
func (s *Store) PutAutoscaled(ctx context.Context, a *store.Autoscaled) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO autoscaled_workers (name, provisioner, master, reason, started_at)
	VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET provisioner = excluded.provisioner,
	master = excluded.master, reason = excluded.reason, started_at = excluded.started_at`,
		a.Name, a.Provisioner, a.Master, a.Reason, columns.Nanos(a.StartedAt)); err != nil {
		return errorf("postgres: PutAutoscaled %q: %w", a.Name, err)
	}
	return nil
}

// ListAutoscaled implements store.Store.
func (s *Store) ListAutoscaled(ctx context.Context) ([]*store.Autoscaled, error) {
	rows, err := s.db.Query(ctx, `SELECT name, provisioner, master, reason, started_at
	FROM autoscaled_workers ORDER BY name`)
	if err != nil {
		return nil, errorf("postgres: ListAutoscaled: %w", err)
	}
	defer rows.Close()
	out := []*store.Autoscaled{}
	for rows.Next() {
		var (
			a       store.Autoscaled
			started int64
		)
		if err := rows.Scan(&a.Name, &a.Provisioner, &a.Master, &a.Reason, &started); err != nil {
			return nil, errorf("postgres: ListAutoscaled: %w", err)
		}
		a.StartedAt = columns.Time(started)
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, errorf("postgres: ListAutoscaled: %w", err)
	}
	return out, nil
}

// DeleteAutoscaled implements store.Store.
func (s *Store) DeleteAutoscaled(ctx context.Context, name string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM autoscaled_workers WHERE name = $1`, name); err != nil {
		return errorf("postgres: DeleteAutoscaled %q: %w", name, err)
	}
	return nil
}
