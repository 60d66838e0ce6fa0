package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// The audit log and the activity samples (migration 7).

// AppendAudit implements store.History.
func (s *Store) AppendAudit(ctx context.Context, e *store.AuditEntry) error {
	err := s.db.QueryRow(ctx, `INSERT INTO audit_log (time, actor, action, target, detail, addr) VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`,
		columns.Nanos(e.Time), e.Actor, e.Action, e.Target, e.Detail, e.Addr).Scan(&e.Seq)
	if err != nil {
		return errorf("postgres: AppendAudit: %w", err)
	}
	return nil
}

// ListAudit implements store.History.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]*store.AuditEntry, error) {
	where, args := auditWhere(f)
	args = append(args, f.AuditLimit())
	rows, err := s.db.Query(ctx, `SELECT seq, time, actor, action, target, detail, addr FROM audit_log`+where+
		fmt.Sprintf(` ORDER BY seq DESC LIMIT $%d`, len(args)), args...)
	out, err := collect(rows, err, func(r rowScanner) (*store.AuditEntry, error) {
		var e store.AuditEntry
		var t int64
		if err := r.Scan(&e.Seq, &t, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.Addr); err != nil {
			return nil, err
		}
		e.Time = columns.Time(t)
		return &e, nil
	})
	if err != nil {
		return nil, errorf("postgres: ListAudit: %w", err)
	}
	return out, nil
}

// TrimAudit implements store.History.
func (s *Store) TrimAudit(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM audit_log WHERE time < $1`, columns.Nanos(before))
	if err != nil {
		return 0, errorf("postgres: TrimAudit: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// auditWhere is the WHERE clause of f, with numbered placeholders.
func auditWhere(f store.AuditFilter) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Actor != "" {
		conds = append(conds, "actor = "+arg(f.Actor))
	}
	if strings.HasSuffix(f.Action, ".") {
		conds = append(conds, "starts_with(action, "+arg(f.Action)+")")
	} else if f.Action != "" {
		conds = append(conds, "action = "+arg(f.Action))
	}
	if f.Query != "" {
		// strpos, not LIKE: the query is matched as typed, % and _ included.
		q := arg(strings.ToLower(f.Query))
		conds = append(conds, "(strpos(lower(actor), "+q+") > 0 OR strpos(lower(target), "+q+") > 0 OR strpos(lower(detail), "+q+") > 0)")
	}
	if !f.Since.IsZero() {
		conds = append(conds, "time >= "+arg(columns.Nanos(f.Since)))
	}
	if f.Before > 0 {
		conds = append(conds, "seq < "+arg(f.Before))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// AddStatsSample implements store.History: the insert and the trim are
// one transaction.
func (s *Store) AddStatsSample(ctx context.Context, v *store.StatsSample, keepAfter time.Time) error {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO stats_samples (master, time, seconds, queue_depth, running, submitted, completed, queue_wait_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (time, master) DO NOTHING`,
			v.Master, columns.Nanos(v.Time), v.Seconds, v.QueueDepth, v.Running, v.Submitted, v.Completed, v.QueueWaitMs); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM stats_samples WHERE time < $1`, columns.Nanos(keepAfter))
		return err
	})
	if err != nil {
		return errorf("postgres: AddStatsSample: %w", err)
	}
	return nil
}

// StatsSamples implements store.History.
func (s *Store) StatsSamples(ctx context.Context, since time.Time) ([]*store.StatsSample, error) {
	rows, err := s.db.Query(ctx, `SELECT master, time, seconds, queue_depth, running, submitted, completed, queue_wait_ms
FROM stats_samples WHERE time >= $1 ORDER BY time, master COLLATE "C"`, columns.Nanos(since))
	out, err := collect(rows, err, func(r rowScanner) (*store.StatsSample, error) {
		var v store.StatsSample
		var t int64
		if err := r.Scan(&v.Master, &t, &v.Seconds, &v.QueueDepth, &v.Running, &v.Submitted, &v.Completed, &v.QueueWaitMs); err != nil {
			return nil, err
		}
		v.Time = columns.Time(t)
		return &v, nil
	})
	if err != nil {
		return nil, errorf("postgres: StatsSamples: %w", err)
	}
	return out, nil
}
