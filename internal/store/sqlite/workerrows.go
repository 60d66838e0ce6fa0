package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// The workers table (schema version 6): the cluster's view of its workers.

const workerColumns = `name, identity, master, address, status, languages, labels,
	slots, running, cpu_percent, memory_percent, jobs_done, infra_failures,
	health_reason, sandbox, version, connected_at, last_heartbeat, lost_at,
	jobs_failed, failure_rate, last_error, last_error_at`

// sqlUpsertWorker replaces a row unless it is held by another master and
// the new status is lost: a master that lost a worker which meanwhile
// reconnected elsewhere must not undo the other master's row.
const sqlUpsertWorker = `INSERT INTO workers (` + workerColumns + `)
	VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)
	ON CONFLICT (name) DO UPDATE SET identity = excluded.identity, master = excluded.master,
		address = excluded.address, status = excluded.status, languages = excluded.languages,
		labels = excluded.labels, slots = excluded.slots, running = excluded.running,
		cpu_percent = excluded.cpu_percent, memory_percent = excluded.memory_percent,
		jobs_done = excluded.jobs_done, infra_failures = excluded.infra_failures,
		health_reason = excluded.health_reason, sandbox = excluded.sandbox,
		version = excluded.version, connected_at = excluded.connected_at,
		last_heartbeat = excluded.last_heartbeat, lost_at = excluded.lost_at,
		jobs_failed = excluded.jobs_failed, failure_rate = excluded.failure_rate,
		last_error = excluded.last_error, last_error_at = excluded.last_error_at
	WHERE workers.master = excluded.master OR excluded.status != 'lost'`

// UpsertWorkers implements store.Store: the whole batch in one write.
func (s *Store) UpsertWorkers(ctx context.Context, ws []*store.Worker) error {
	if len(ws) == 0 {
		return nil
	}
	args := make([][]any, len(ws))
	for i, w := range ws {
		if w.Name == "" || w.Status == "" {
			return fmt.Errorf("sqlite: UpsertWorkers: worker %q: name and status are required", w.Name)
		}
		langs, err := json.Marshal(w.Languages)
		if err != nil {
			return fmt.Errorf("sqlite: UpsertWorkers: worker %q: %w", w.Name, err)
		}
		labels, err := columns.Labels(w.Labels)
		if err != nil {
			return fmt.Errorf("sqlite: UpsertWorkers: worker %q: %w", w.Name, err)
		}
		args[i] = []any{w.Name, w.Identity, w.Master, w.Address, w.Status, string(langs), labels,
			w.Slots, w.Running, w.CPUPercent, w.MemoryPercent, w.JobsDone, w.InfraFailures,
			w.HealthReason, w.Sandbox, w.Version, columns.Nanos(w.ConnectedAt), columns.Nanos(w.LastHeartbeat), columns.Nanos(w.LostAt),
			w.JobsFailed, w.FailureRate, w.LastError, columns.Nanos(w.LastErrorAt)}
	}
	_, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		st := tx.Stmt(s.upsertWorker) // prepared once: a flush runs twice a heartbeat interval
		for _, a := range args {
			if _, err := st.Exec(a...); err != nil {
				return 0, err
			}
		}
		return int64(len(args)), nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: UpsertWorkers: %w", err)
	}
	return nil
}

// ListWorkers implements store.Store.
func (s *Store) ListWorkers(ctx context.Context) ([]*store.Worker, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+workerColumns+`, admin_drain FROM workers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ListWorkers: %w", err)
	}
	defer rows.Close()
	out := []*store.Worker{}
	for rows.Next() {
		var (
			w                       store.Worker
			langs, labels           string
			connected, beat, lostAt int64
			lastError               int64
		)
		if err := rows.Scan(&w.Name, &w.Identity, &w.Master, &w.Address, &w.Status, &langs, &labels,
			&w.Slots, &w.Running, &w.CPUPercent, &w.MemoryPercent, &w.JobsDone, &w.InfraFailures,
			&w.HealthReason, &w.Sandbox, &w.Version, &connected, &beat, &lostAt,
			&w.JobsFailed, &w.FailureRate, &w.LastError, &lastError, &w.AdminDrain); err != nil {
			return nil, fmt.Errorf("sqlite: ListWorkers: %w", err)
		}
		if err := json.Unmarshal([]byte(langs), &w.Languages); err != nil {
			return nil, fmt.Errorf("sqlite: ListWorkers: worker %q languages: %w", w.Name, err)
		}
		if w.Labels, err = columns.ParseLabels(labels); err != nil {
			return nil, fmt.Errorf("sqlite: ListWorkers: worker %q: %w", w.Name, err)
		}
		w.ConnectedAt, w.LastHeartbeat, w.LostAt = columns.Time(connected), columns.Time(beat), columns.Time(lostAt)
		w.LastErrorAt = columns.Time(lastError)
		out = append(out, &w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: ListWorkers: %w", err)
	}
	return out, nil
}

// SetWorkerDrain implements store.Store.
func (s *Store) SetWorkerDrain(ctx context.Context, name string, drain bool) error {
	n, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		return affected(tx.Exec(`UPDATE workers SET admin_drain = ? WHERE name = ?`, drain, name))
	})
	switch {
	case err != nil:
		return fmt.Errorf("sqlite: SetWorkerDrain %q: %w", name, err)
	case n == 0:
		return fmt.Errorf("sqlite: SetWorkerDrain %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// DeleteWorkers implements store.Store.
func (s *Store) DeleteWorkers(ctx context.Context, names []string) (int, error) {
	if len(names) == 0 {
		return 0, nil
	}
	n, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		st, err := tx.Prepare(`DELETE FROM workers WHERE name = ? AND status = 'lost'`)
		if err != nil {
			return 0, err
		}
		defer st.Close()
		var total int64
		for _, name := range names {
			n, err := affected(st.Exec(name))
			if err != nil {
				return 0, err
			}
			total += n
		}
		return total, nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: DeleteWorkers: %w", err)
	}
	return int(n), nil
}
