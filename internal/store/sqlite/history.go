package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// The audit log and the activity samples (schema version 11).

// AppendAudit implements store.History.
func (s *Store) AppendAudit(ctx context.Context, e *store.AuditEntry) error {
	res, err := s.w.ExecContext(ctx, `INSERT INTO audit_log (time, actor, action, target, detail, addr) VALUES (?, ?, ?, ?, ?, ?)`,
		columns.Nanos(e.Time), e.Actor, e.Action, e.Target, e.Detail, e.Addr)
	if err != nil {
		return fmt.Errorf("sqlite: AppendAudit: %w", err)
	}
	if e.Seq, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("sqlite: AppendAudit: %w", err)
	}
	return nil
}

// ListAudit implements store.History.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]*store.AuditEntry, error) {
	where, args := auditWhere(f)
	rows, err := s.r.QueryContext(ctx, `SELECT seq, time, actor, action, target, detail, addr FROM audit_log`+where+
		` ORDER BY seq DESC LIMIT ?`, append(args, f.AuditLimit())...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ListAudit: %w", err)
	}
	defer rows.Close()
	out := []*store.AuditEntry{}
	for rows.Next() {
		var e store.AuditEntry
		var t int64
		if err := rows.Scan(&e.Seq, &t, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.Addr); err != nil {
			return nil, fmt.Errorf("sqlite: ListAudit: %w", err)
		}
		e.Time = columns.Time(t)
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: ListAudit: %w", err)
	}
	return out, nil
}

// TrimAudit implements store.History.
func (s *Store) TrimAudit(ctx context.Context, before time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM audit_log WHERE time < ?`, columns.Nanos(before))
	if err != nil {
		return 0, fmt.Errorf("sqlite: TrimAudit: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: TrimAudit: %w", err)
	}
	return int(n), nil
}

// auditWhere is the WHERE clause of f, with ? placeholders.
func auditWhere(f store.AuditFilter) (string, []any) {
	var conds []string
	var args []any
	if f.Actor != "" {
		conds, args = append(conds, "actor = ?"), append(args, f.Actor)
	}
	if prefix, ok := strings.CutSuffix(f.Action, "."); ok {
		conds, args = append(conds, "substr(action, 1, ?) = ?"), append(args, len(prefix)+1, f.Action)
	} else if f.Action != "" {
		conds, args = append(conds, "action = ?"), append(args, f.Action)
	}
	if f.Query != "" {
		// instr, not LIKE: the query is matched as typed, % and _ included.
		conds = append(conds, "(instr(lower(actor), lower(?)) > 0 OR instr(lower(target), lower(?)) > 0 OR instr(lower(detail), lower(?)) > 0)")
		args = append(args, f.Query, f.Query, f.Query)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "time >= ?"), append(args, columns.Nanos(f.Since))
	}
	if f.Before > 0 {
		conds, args = append(conds, "seq < ?"), append(args, f.Before)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// AddStatsSample implements store.History: the insert and the trim are
// one transaction.
func (s *Store) AddStatsSample(ctx context.Context, v *store.StatsSample, keepAfter time.Time) error {
	_, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		if _, err := tx.Exec(`INSERT INTO stats_samples (master, time, seconds, queue_depth, running, submitted, completed, queue_wait_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (time, master) DO NOTHING`,
			v.Master, columns.Nanos(v.Time), v.Seconds, v.QueueDepth, v.Running, v.Submitted, v.Completed, v.QueueWaitMs); err != nil {
			return 0, err
		}
		_, err := tx.Exec(`DELETE FROM stats_samples WHERE time < ?`, columns.Nanos(keepAfter))
		return 1, err
	})
	if err != nil {
		return fmt.Errorf("sqlite: AddStatsSample: %w", err)
	}
	return nil
}

// StatsSamples implements store.History.
func (s *Store) StatsSamples(ctx context.Context, since time.Time) ([]*store.StatsSample, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT master, time, seconds, queue_depth, running, submitted, completed, queue_wait_ms
FROM stats_samples WHERE time >= ? ORDER BY time, master`, columns.Nanos(since))
	if err != nil {
		return nil, fmt.Errorf("sqlite: StatsSamples: %w", err)
	}
	defer rows.Close()
	out := []*store.StatsSample{}
	for rows.Next() {
		var v store.StatsSample
		var t int64
		if err := rows.Scan(&v.Master, &t, &v.Seconds, &v.QueueDepth, &v.Running, &v.Submitted, &v.Completed, &v.QueueWaitMs); err != nil {
			return nil, fmt.Errorf("sqlite: StatsSamples: %w", err)
		}
		v.Time = columns.Time(t)
		out = append(out, &v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: StatsSamples: %w", err)
	}
	return out, nil
}
