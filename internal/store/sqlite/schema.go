package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations returns the schema changes in order; migration i (0-based) is
// schema version i+1. Append only: never edit or reorder a migration that
// has shipped, since databases in the field have recorded it as applied.
//
// It is a function rather than a package variable so nothing can mutate it.
func migrations() []string {
	return []string{
		// 1: initial schema.
		//
		// jobs.seq is the rowid (INTEGER PRIMARY KEY): listing newest first
		// and the (owner, seq)/(status, seq) indexes then walk in insertion
		// order for free. The id is UNIQUE NOT NULL, which in a rowid table
		// is exactly the index "id TEXT PRIMARY KEY" would build.
		//
		// No AUTOINCREMENT: it costs one more page write (sqlite_sequence)
		// per job created, about 8% of a job's whole write volume, and buys
		// nothing here. Without it a new seq is max(seq)+1, which can only
		// reuse a number if the newest job is deleted; the store never
		// deletes jobs, and a retention purge would delete the oldest.
		//
		// Times are INTEGER unix nanoseconds in UTC, 0 meaning unset: they
		// compare and sort as numbers and carry no time zone to get wrong.
		`
CREATE TABLE jobs (
	seq          INTEGER PRIMARY KEY,
	id           TEXT    NOT NULL UNIQUE,
	owner        TEXT    NOT NULL,
	language     TEXT    NOT NULL,
	version      TEXT    NOT NULL DEFAULT '',
	status       TEXT    NOT NULL
	             CHECK (status IN ('queued', 'running', 'done', 'cancelled', 'failed')),
	verdict      TEXT    NOT NULL DEFAULT '',
	error        TEXT    NOT NULL DEFAULT '',
	attempts     INTEGER NOT NULL DEFAULT 0,
	max_attempts INTEGER NOT NULL DEFAULT 0,
	worker       TEXT    NOT NULL DEFAULT '',
	priority     INTEGER NOT NULL DEFAULT 0,
	labels       TEXT    NOT NULL DEFAULT '{}', -- JSON object
	created_at   INTEGER NOT NULL DEFAULT 0,
	started_at   INTEGER NOT NULL DEFAULT 0,
	finished_at  INTEGER NOT NULL DEFAULT 0,
	request      BLOB    NOT NULL DEFAULT x'',
	result       BLOB    NOT NULL DEFAULT x''
);
CREATE INDEX jobs_owner_seq ON jobs (owner, seq);
CREATE INDEX jobs_status_seq ON jobs (status, seq);

CREATE TABLE users (
	name          TEXT    PRIMARY KEY,
	role          TEXT    NOT NULL,
	password_hash TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE tokens (
	id         TEXT    PRIMARY KEY,
	hash       TEXT    NOT NULL UNIQUE,
	user       TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	name       TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL DEFAULT 0
);
-- ListTokens, and the cascade on user delete, look tokens up by user.
CREATE INDEX tokens_user ON tokens (user, created_at);
`,
		// 2: idempotency keys. A client that retries a submission whose
		// answer it lost sends the same key and gets the same job back,
		// so a retry never runs a program twice. Unique per owner, and
		// only among jobs that carry one.
		`
ALTER TABLE jobs ADD COLUMN idem_key TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX jobs_owner_idem ON jobs (owner, idem_key) WHERE idem_key != '';
`,
		// 3: worker identities: the certificate each worker name may
		// connect with, and whether it was revoked.
		`
CREATE TABLE worker_identities (
	name       TEXT    PRIMARY KEY,
	serial     TEXT    NOT NULL,
	created_at INTEGER NOT NULL DEFAULT 0,
	expires_at INTEGER NOT NULL DEFAULT 0,
	revoked_at INTEGER NOT NULL DEFAULT 0
);
`,
		// 4: who holds an attempt. A running attempt belongs to a worker
		// name and the lineage of the identity it was given to, so that a
		// result, a release or a requeue is a compare-and-set on both
		// (a worker can only report on what it was given). released counts
		// attempts given back unrun, which do not count against
		// max_attempts. Existing identities get a lineage, and jobs running
		// at the upgrade are held by their worker's, so their results are
		// still taken; one whose worker has no identity is held by 'none',
		// which no worker has, for the master to requeue once its worker
		// does not come back.
		`
ALTER TABLE worker_identities ADD COLUMN id TEXT NOT NULL DEFAULT '';
UPDATE worker_identities SET id = lower(hex(randomblob(16))) WHERE id = '';
ALTER TABLE jobs ADD COLUMN worker_identity TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN released INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET worker_identity = COALESCE(
	(SELECT id FROM worker_identities WHERE name = jobs.worker), 'none')
WHERE status = 'running';
`,
		// 5: token kinds and expiry. A token a password login made is a
		// "login" token: it expires, and a password change revokes it;
		// tokens made on purpose stay "api" tokens, valid until revoked
		// unless created with an expiry. Login tokens made before this
		// migration carry the name "login"; they get the default 30 days
		// from their creation, as if made now.
		`
ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'api'
	CHECK (kind IN ('api', 'login'));
ALTER TABLE tokens ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
UPDATE tokens SET kind = 'login', expires_at = created_at + 30 * 86400 * 1000000000 WHERE name = 'login';
`,
		// 6: a store for many masters (claims, leases, workers).
		//
		// A job records when it last entered the queue (queued_at: its
		// placement timeout counts from then). A running attempt records
		// the master holding its worker's link and a lease (0: none, the attempt of a single master that does
		// not renew). jobs_queue serves the claims (each owner's queued
		// jobs in priority then age order); it is partial, so a job costs
		// it a write when it enters the queue and one when it leaves.
		// Lease renewals and rescues walk the running jobs on the
		// (status, seq) index instead of an index of their own: they are
		// bounded by the fleet's slots, and every index is paid by every
		// job.
		//
		// queued_counts is each owner's number of queued jobs, kept by
		// triggers on every transition into or out of 'queued', so that
		// the quota check of a submission reads one row instead of
		// counting the owner's queue.
		//
		// workers is the cluster's view of its workers, written by the
		// master holding each link.
		`
ALTER TABLE jobs ADD COLUMN master TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN queued_at INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET queued_at = created_at WHERE status = 'queued';
CREATE INDEX jobs_queue ON jobs (owner, priority DESC, seq) WHERE status = 'queued';

CREATE TABLE queued_counts (
	owner TEXT    PRIMARY KEY,
	n     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO queued_counts (owner, n)
	SELECT owner, COUNT(*) FROM jobs WHERE status = 'queued' GROUP BY owner;
CREATE TRIGGER jobs_queued_insert AFTER INSERT ON jobs WHEN new.status = 'queued'
BEGIN
	INSERT INTO queued_counts (owner, n) VALUES (new.owner, 1)
		ON CONFLICT (owner) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER jobs_queued_enter AFTER UPDATE OF status ON jobs
	WHEN new.status = 'queued' AND old.status != 'queued'
BEGIN
	INSERT INTO queued_counts (owner, n) VALUES (new.owner, 1)
		ON CONFLICT (owner) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER jobs_queued_leave AFTER UPDATE OF status ON jobs
	WHEN old.status = 'queued' AND new.status != 'queued'
BEGIN
	UPDATE queued_counts SET n = n - 1 WHERE owner = old.owner;
END;

CREATE TABLE workers (
	name           TEXT    PRIMARY KEY,
	identity       TEXT    NOT NULL DEFAULT '',
	master         TEXT    NOT NULL DEFAULT '',
	address        TEXT    NOT NULL DEFAULT '',
	status         TEXT    NOT NULL,
	languages      TEXT    NOT NULL DEFAULT '{}', -- JSON: name → versions
	labels         TEXT    NOT NULL DEFAULT '{}', -- JSON object
	slots          INTEGER NOT NULL DEFAULT 0,
	running        INTEGER NOT NULL DEFAULT 0,
	cpu_percent    REAL    NOT NULL DEFAULT 0,
	memory_percent REAL    NOT NULL DEFAULT 0,
	jobs_done      INTEGER NOT NULL DEFAULT 0,
	infra_failures INTEGER NOT NULL DEFAULT 0,
	health_reason  TEXT    NOT NULL DEFAULT '',
	sandbox        TEXT    NOT NULL DEFAULT '',
	version        TEXT    NOT NULL DEFAULT '',
	connected_at   INTEGER NOT NULL DEFAULT 0,
	last_heartbeat INTEGER NOT NULL DEFAULT 0,
	lost_at        INTEGER NOT NULL DEFAULT 0
);
`,
		// 7: when each owner was last served by a claim (a counter that
		// grows with every claim), so that the fair order is a round
		// robin even when slots free one at a time.
		`
ALTER TABLE queued_counts ADD COLUMN last_claim INTEGER NOT NULL DEFAULT 0;
`,
		// 8: an admin's drain of a worker, asked through any master and
		// applied by the one holding its link.
		`
ALTER TABLE workers ADD COLUMN admin_drain INTEGER NOT NULL DEFAULT 0;
`,
		// 9: the cluster's secrets (CA, tokens), shared by its masters.
		`
CREATE TABLE cluster_secrets (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
) WITHOUT ROWID;
`,
		// 10: the roles one master at a time leads, and the workers the
		// autoscaler started (remembered across restarts).
		`
CREATE TABLE leaders (
	role   TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	until  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE autoscaled_workers (
	name        TEXT PRIMARY KEY,
	provisioner TEXT NOT NULL,
	master      TEXT NOT NULL,
	reason      TEXT NOT NULL,
	started_at  INTEGER NOT NULL
) WITHOUT ROWID;
`,
		// 11: read-only links to a job, one per job; the secret's
		// hash only. They go with their job (ON DELETE CASCADE).
		`
CREATE TABLE job_shares (
	job_id     TEXT    PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
	hash       TEXT    NOT NULL UNIQUE,
	created_by TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
`,
		// 12: the audit log (who changed users, tokens, workers; logins
		// and their failures), the activity samples behind the
		// dashboard's charts (a ring each master trims as it writes), and
		// each worker's failed jobs.
		`
ALTER TABLE workers ADD COLUMN jobs_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN failure_rate REAL NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN last_error_at INTEGER NOT NULL DEFAULT 0;
CREATE TABLE audit_log (
	seq    INTEGER PRIMARY KEY,
	time   INTEGER NOT NULL,
	actor  TEXT    NOT NULL,
	action TEXT    NOT NULL,
	target TEXT    NOT NULL,
	detail TEXT    NOT NULL,
	addr   TEXT    NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE TABLE stats_samples (
	master        TEXT    NOT NULL,
	time          INTEGER NOT NULL,
	seconds       INTEGER NOT NULL,
	queue_depth   INTEGER NOT NULL,
	running       INTEGER NOT NULL,
	submitted     INTEGER NOT NULL,
	completed     INTEGER NOT NULL,
	queue_wait_ms REAL    NOT NULL,
	PRIMARY KEY (time, master)
) WITHOUT ROWID;
`,
		// 13: batches and the callbacks' outbox. A batch lists its jobs
		// in submission order (batch_jobs). A callback row is written
		// with its job or batch and delivered once that is finished;
		// callbacks_pending holds only the rows still to deliver, which
		// the deliverers' claims walk in the order they are due.
		`
CREATE TABLE batches (
	id         TEXT    PRIMARY KEY,
	owner      TEXT    NOT NULL,
	created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE batch_jobs (
	batch_id TEXT    NOT NULL REFERENCES batches (id),
	idx      INTEGER NOT NULL,
	job_id   TEXT    NOT NULL,
	PRIMARY KEY (batch_id, idx)
) WITHOUT ROWID;
CREATE TABLE callbacks (
	kind         TEXT    NOT NULL CHECK (kind IN ('job', 'batch')),
	target       TEXT    NOT NULL,
	owner        TEXT    NOT NULL,
	url          TEXT    NOT NULL,
	format       TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL DEFAULT 0,
	attempts     INTEGER NOT NULL DEFAULT 0,
	first_at     INTEGER NOT NULL DEFAULT 0,
	next_at      INTEGER NOT NULL DEFAULT 0,
	last_at      INTEGER NOT NULL DEFAULT 0,
	last_status  INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT    NOT NULL DEFAULT '',
	delivered_at INTEGER NOT NULL DEFAULT 0,
	failed_at    INTEGER NOT NULL DEFAULT 0,
	master       TEXT    NOT NULL DEFAULT '',
	lease_until  INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (kind, target)
) WITHOUT ROWID;
CREATE INDEX callbacks_pending ON callbacks (next_at) WHERE delivered_at = 0 AND failed_at = 0;
`,
		// 14: a web session opened with an API token names it (parent)
		// and is revoked with it.
		`
ALTER TABLE tokens ADD COLUMN parent TEXT NOT NULL DEFAULT '';
CREATE INDEX tokens_parent ON tokens (parent) WHERE parent <> '';
`,
	}
}

// migrate brings the schema up to date. Each migration runs in its own
// transaction together with its schema_migrations row, so a crash leaves
// either all of a migration or none of it. The applied check is repeated
// inside the (BEGIN IMMEDIATE) transaction so two processes opening the same
// new file cannot both apply a migration.
func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at INTEGER NOT NULL
)`); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	ms := migrations()
	var current int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if current > len(ms) {
		// Running an old binary on a newer database would silently ignore
		// columns or constraints it does not know about.
		return fmt.Errorf("sqlite: migrate: database schema version %d is newer than this program's %d", current, len(ms))
	}
	for i := current; i < len(ms); i++ {
		if err := applyMigration(ctx, db, i+1, ms[i]); err != nil {
			return fmt.Errorf("sqlite: migrate: version %d: %w", i+1, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, version int, text string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // no-op after Commit
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil // another process got there first
	}
	if _, err := tx.ExecContext(ctx, text); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		version, time.Now().UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}
