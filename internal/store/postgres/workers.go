package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// Worker identities and the workers table.

// identityColumns is what scanIdentity reads, in its order.
const identityColumns = `name, id, serial, created_at, expires_at, revoked_at`

// CreateWorkerIdentity implements store.Store. One upsert: the WHERE of its
// DO UPDATE is the compare-and-set that keeps two racing joins, or a join
// and a live worker, from both holding the name.
func (s *Store) CreateWorkerIdentity(ctx context.Context, w *store.WorkerIdentity) error {
	op := fmt.Sprintf("CreateWorkerIdentity %q", w.Name)
	if w.Name == "" || w.ID == "" {
		return errorf("postgres: %s: name and id are required", op)
	}
	tag, err := s.db.Exec(ctx, `INSERT INTO worker_identities (`+identityColumns+`)
		VALUES ($1, $2, $3, $4, $5, 0)
		ON CONFLICT (name) DO UPDATE SET id = excluded.id, serial = excluded.serial,
			created_at = excluded.created_at, expires_at = excluded.expires_at, revoked_at = 0
		WHERE worker_identities.revoked_at <> 0
			OR (worker_identities.expires_at <> 0 AND worker_identities.expires_at <= $4)`,
		w.Name, w.ID, w.Serial, columns.Nanos(w.CreatedAt), columns.Nanos(w.ExpiresAt))
	if err != nil {
		return errorf("postgres: %s: %w", op, err)
	}
	if tag.RowsAffected() == 0 {
		return errorf("postgres: %s: the name has a live identity: %w", op, store.ErrConflict)
	}
	return nil
}

// RenewWorkerIdentity implements store.Store.
func (s *Store) RenewWorkerIdentity(ctx context.Context, name, oldSerial, serial string, expires time.Time) (*store.WorkerIdentity, error) {
	op := fmt.Sprintf("RenewWorkerIdentity %q", name)
	w, err := scanIdentity(s.db.QueryRow(ctx, `UPDATE worker_identities SET serial = $1, expires_at = $2
		WHERE name = $3 AND serial = $4 AND revoked_at = 0
		RETURNING `+identityColumns, serial, columns.Nanos(expires), name, oldSerial))
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := s.GetWorkerIdentity(ctx, name); err != nil {
			return nil, errorf("postgres: %s: %w", op, err)
		}
		return nil, errorf("postgres: %s: not the current certificate: %w", op, store.ErrConflict)
	}
	if err != nil {
		return nil, errorf("postgres: %s: %w", op, err)
	}
	return w, nil
}

// GetWorkerIdentity implements store.Store.
func (s *Store) GetWorkerIdentity(ctx context.Context, name string) (*store.WorkerIdentity, error) {
	w, err := scanIdentity(s.db.QueryRow(ctx, `SELECT `+identityColumns+` FROM worker_identities WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: GetWorkerIdentity %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: GetWorkerIdentity %q: %w", name, err)
	}
	return w, nil
}

// ListWorkerIdentities implements store.Store, by name (byte order).
func (s *Store) ListWorkerIdentities(ctx context.Context) ([]*store.WorkerIdentity, error) {
	rows, err := s.db.Query(ctx, `SELECT `+identityColumns+` FROM worker_identities ORDER BY name COLLATE "C"`)
	out, err := collect(rows, err, scanIdentity)
	if err != nil {
		return nil, errorf("postgres: ListWorkerIdentities: %w", err)
	}
	if len(out) == 0 {
		return nil, nil // as the SQLite backend: no identity is a nil list
	}
	return out, nil
}

// RevokeWorkerIdentity implements store.Store.
func (s *Store) RevokeWorkerIdentity(ctx context.Context, name string, at time.Time) error {
	tag, err := s.db.Exec(ctx, `UPDATE worker_identities SET revoked_at = $1 WHERE name = $2`, columns.Nanos(at), name)
	if err != nil {
		return errorf("postgres: RevokeWorkerIdentity %q: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return errorf("postgres: RevokeWorkerIdentity %q: %w", name, store.ErrNotFound)
	}
	return nil
}

func scanIdentity(row rowScanner) (*store.WorkerIdentity, error) {
	var w store.WorkerIdentity
	var created, expires, revoked int64
	if err := row.Scan(&w.Name, &w.ID, &w.Serial, &created, &expires, &revoked); err != nil {
		return nil, err
	}
	w.CreatedAt, w.ExpiresAt, w.RevokedAt = columns.Time(created), columns.Time(expires), columns.Time(revoked)
	return &w, nil
}

const workerColumns = `name, identity, master, address, status, languages, labels,
	slots, running, cpu_percent, memory_percent, jobs_done, infra_failures,
	health_reason, sandbox, version, connected_at, last_heartbeat, lost_at,
	jobs_failed, failure_rate, last_error, last_error_at`

// sqlUpsertWorker replaces a row unless it is held by another master and
// the new status is lost: a master that lost a worker which meanwhile
// reconnected elsewhere must not undo the other master's row.
const sqlUpsertWorker = `INSERT INTO workers (` + workerColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
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
	WHERE workers.master = excluded.master OR excluded.status <> 'lost'`

// UpsertWorkers implements store.Store: the whole batch in one
// transaction, sent as one pipeline (pgx.Batch), so a flush of many
// workers costs one round trip.
func (s *Store) UpsertWorkers(ctx context.Context, ws []*store.Worker) error {
	if len(ws) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, w := range ws {
		if w.Name == "" || w.Status == "" {
			return errorf("postgres: UpsertWorkers: worker %q: name and status are required", w.Name)
		}
		langs, err := json.Marshal(w.Languages)
		if err != nil {
			return errorf("postgres: UpsertWorkers: worker %q: %w", w.Name, err)
		}
		labels, err := columns.Labels(w.Labels)
		if err != nil {
			return errorf("postgres: UpsertWorkers: worker %q: %w", w.Name, err)
		}
		b.Queue(sqlUpsertWorker, w.Name, w.Identity, w.Master, w.Address, w.Status, string(langs), labels,
			w.Slots, w.Running, w.CPUPercent, w.MemoryPercent, w.JobsDone, w.InfraFailures,
			w.HealthReason, w.Sandbox, w.Version, columns.Nanos(w.ConnectedAt), columns.Nanos(w.LastHeartbeat), columns.Nanos(w.LostAt),
			w.JobsFailed, w.FailureRate, w.LastError, columns.Nanos(w.LastErrorAt))
	}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return errorf("postgres: UpsertWorkers: %w", err)
	}
	return nil
}

// ListWorkers implements store.Store, by name (byte order).
func (s *Store) ListWorkers(ctx context.Context) ([]*store.Worker, error) {
	rows, err := s.db.Query(ctx, `SELECT `+workerColumns+`, admin_drain FROM workers ORDER BY name COLLATE "C"`)
	out, err := collect(rows, err, scanWorker)
	if err != nil {
		return nil, errorf("postgres: ListWorkers: %w", err)
	}
	return out, nil
}

func scanWorker(row rowScanner) (*store.Worker, error) {
	var (
		w                       store.Worker
		langs, labels           string
		connected, beat, lostAt int64
		lastError               int64
	)
	if err := row.Scan(&w.Name, &w.Identity, &w.Master, &w.Address, &w.Status, &langs, &labels,
		&w.Slots, &w.Running, &w.CPUPercent, &w.MemoryPercent, &w.JobsDone, &w.InfraFailures,
		&w.HealthReason, &w.Sandbox, &w.Version, &connected, &beat, &lostAt,
		&w.JobsFailed, &w.FailureRate, &w.LastError, &lastError, &w.AdminDrain); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(langs), &w.Languages); err != nil {
		return nil, fmt.Errorf("worker %q languages: %w", w.Name, err)
	}
	var err error
	if w.Labels, err = columns.ParseLabels(labels); err != nil {
		return nil, fmt.Errorf("worker %q: %w", w.Name, err)
	}
	w.ConnectedAt, w.LastHeartbeat, w.LostAt = columns.Time(connected), columns.Time(beat), columns.Time(lostAt)
	w.LastErrorAt = columns.Time(lastError)
	return &w, nil
}

// SetWorkerDrain implements store.Store.
func (s *Store) SetWorkerDrain(ctx context.Context, name string, drain bool) error {
	tag, err := s.db.Exec(ctx, `UPDATE workers SET admin_drain = $1 WHERE name = $2`, drain, name)
	switch {
	case err != nil:
		return errorf("postgres: SetWorkerDrain %q: %w", name, err)
	case tag.RowsAffected() == 0:
		return errorf("postgres: SetWorkerDrain %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// DeleteWorkers implements store.Store: one statement for every name.
func (s *Store) DeleteWorkers(ctx context.Context, names []string) (int, error) {
	if len(names) == 0 {
		return 0, nil
	}
	tag, err := s.db.Exec(ctx, `DELETE FROM workers WHERE name = ANY($1) AND status = 'lost'`, names)
	if err != nil {
		return 0, errorf("postgres: DeleteWorkers: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
