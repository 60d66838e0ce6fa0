package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// insertColumns is the column list CreateJob writes; jobColumns, what
// every job query reads, in the order scanJob expects, is the same with
// the store's own seq first.
const (
	insertColumns = `id, owner, language, version, status, verdict, error,
	attempts, max_attempts, worker, priority, labels,
	created_at, started_at, finished_at, request, result, idem_key,
	worker_identity, released, master, lease_until`
	jobColumns = `seq, ` + insertColumns + `, queued_at`
)

const (
	// $1…$22 the columns; queued_at is created_at.
	sqlCreateJob = `INSERT INTO jobs (` + insertColumns + `, queued_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $13)
	RETURNING seq, queued_at`
	// Locks the owner's counter row, creating it if needed, and reads
	// it: the quota's check and the insert behind it then run with no
	// other submission of the owner in between, from any master. (DO
	// UPDATE, not DO NOTHING: only it locks an existing row and returns
	// it.)
	sqlLockQueued = `INSERT INTO queued_counts (owner, n) VALUES ($1, 0)
	ON CONFLICT (owner) DO UPDATE SET n = queued_counts.n RETURNING n`
	// sqlCreateJob's insert, $23 the quota: made only when the owner has
	// fewer queued jobs than that, which sqlLockQueued, run before it in
	// the same transaction, has locked.
	sqlCreateJobUnderQuota = `INSERT INTO jobs (` + insertColumns + `, queued_at)
	SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $13
	WHERE (SELECT n FROM queued_counts WHERE owner = $2) < $23
	RETURNING seq, queued_at`
	sqlGetJob    = `SELECT ` + jobColumns + ` FROM jobs WHERE id = $1`
	sqlJobByKey  = `SELECT ` + jobColumns + ` FROM jobs WHERE owner = $1 AND idem_key = $2 AND idem_key <> ''`
	sqlJobExists = `SELECT 1 FROM jobs WHERE id = $1`

	// The transitions. Each is one compare-and-set on (id, status,
	// attempts), and on a running attempt also on (worker,
	// worker_identity): under read committed PostgreSQL re-evaluates the
	// WHERE on the row a concurrent writer committed, so of two racing
	// callers exactly one sees a row affected.

	// $1 attempt, $2 worker, $3 identity, $4 at, $5 id. StartedAt keeps
	// the first attempt's start so the job's latency counts from then.
	// The attempt has no master and no lease (ClaimJobs starts leased
	// ones).
	sqlStartAttempt = `UPDATE jobs SET status = 'running', attempts = $1, worker = $2, worker_identity = $3,
		master = '', lease_until = 0,
		started_at = CASE WHEN started_at = 0 THEN $4 ELSE started_at END
	WHERE id = $5 AND status = 'queued' AND attempts = $1 - 1`
	// $1 reason, $2 released (0 or 1), $3 id, $4 attempt, $5 worker,
	// $6 identity, $7 the time it goes back to the queue. The worker
	// stays: it is the worker of the last attempt until the next starts.
	sqlRequeueAttempt = `UPDATE jobs SET status = 'queued', error = $1, released = released + $2, lease_until = 0,
		queued_at = $7
	WHERE id = $3 AND status = 'running' AND attempts = $4 AND worker = $5 AND worker_identity = $6`
	// $1 status, $2 verdict, $3 error, $4 version ('' keeps the requested
	// one), $5 result, $6 at, $7 id, $8 attempt, $9 worker, $10 identity.
	sqlFinishAttempt = `UPDATE jobs SET status = $1, verdict = $2, error = $3,
		version = CASE WHEN $4::TEXT = '' THEN version ELSE $4::TEXT END, result = $5, finished_at = $6
	WHERE id = $7 AND status = 'running' AND attempts = $8 AND worker = $9 AND worker_identity = $10
	RETURNING ` + jobColumns
	// Same parameters as sqlFinishAttempt without the attempt.
	sqlFinishQueued = `UPDATE jobs SET status = $1, verdict = $2, error = $3,
		version = CASE WHEN $4::TEXT = '' THEN version ELSE $4::TEXT END, result = $5, finished_at = $6
	WHERE id = $7 AND status = 'queued'`
)

// List limits, see store.ListFilter.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// CreateJob implements store.Store. With a quota it is a transaction that
// locks the owner's queued_counts row first (sqlLockQueued), so that
// concurrent submissions through any number of masters take turns at the
// check (createUnderQuota); without one it is the INSERT alone (the
// trigger still counts it).
func (s *Store) CreateJob(ctx context.Context, j *store.Job, maxQueued int) error {
	status, err := j.NewStatus()
	if err != nil {
		return errorf("postgres: CreateJob %w", err)
	}
	labels, err := columns.Labels(j.Labels)
	if err != nil {
		return errorf("postgres: CreateJob %q: %w", j.ID, err)
	}
	args := createArgs(j, status, labels)
	var seq, queued int64
	if maxQueued <= 0 {
		err = s.db.QueryRow(ctx, sqlCreateJob, args...).Scan(&seq, &queued)
	} else {
		seq, queued, err = s.createUnderQuota(ctx, j.Owner, args, maxQueued)
	}
	if err != nil {
		return errorf("postgres: CreateJob %q: %w", j.ID, constraintErr(err))
	}
	j.Seq, j.QueuedAt = seq, columns.Time(queued)
	return nil
}

// createArgs are sqlCreateJob's arguments ($1…$22) for j.
func createArgs(j *store.Job, status, labels string) []any {
	return []any{j.ID, j.Owner, j.Language, j.Version, status, j.Verdict, j.Error,
		j.Attempts, j.MaxAttempts, j.Worker, j.Priority, labels,
		columns.Nanos(j.CreatedAt), columns.Nanos(j.StartedAt), columns.Nanos(j.FinishedAt),
		columns.Blob(j.Request), columns.Blob(j.Result), j.IdempotencyKey,
		j.WorkerIdentity, j.Released, j.Master, columns.Nanos(j.LeaseUntil)}
}

// createUnderQuota inserts the job of args (sqlCreateJob's) unless its
// owner has maxQueued jobs queued. The lock of the owner's counter and the
// insert go in one batch, one round trip, which PostgreSQL runs as one
// implicit transaction: the counter row, which every submission and claim
// of the owner updates, stays locked only while the server runs the two
// statements and commits. (As BEGIN, lock, insert, COMMIT it stayed locked
// over three round trips, and at 32 submissions at once they queued on it:
// 1.2 ms a job with one master, 6.9 ms with three, in pg_stat_statements.)
func (s *Store) createUnderQuota(ctx context.Context, owner string, args []any, maxQueued int) (seq, queued int64, err error) {
	for range maxTxTries {
		var b pgx.Batch
		b.Queue(sqlLockQueued, owner)
		b.Queue(sqlCreateJobUnderQuota, append(args[:len(args):len(args)], maxQueued)...).
			QueryRow(func(row pgx.Row) error { return row.Scan(&seq, &queued) })
		if err = s.db.SendBatch(ctx, &b).Close(); !retryable(err) {
			break
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, fmt.Errorf("%d queued jobs of %s: %w", maxQueued, owner, store.ErrQuota)
	}
	return seq, queued, err
}

// QueuedByOwner implements store.Store.
func (s *Store) QueuedByOwner(ctx context.Context, owner string) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT n FROM queued_counts WHERE owner = $1`, owner).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, errorf("postgres: QueuedByOwner %q: %w", owner, err)
	}
	return n, nil
}

// JobByIdempotencyKey implements store.Store.
func (s *Store) JobByIdempotencyKey(ctx context.Context, owner, key string) (*store.Job, error) {
	if key == "" {
		return nil, errorf("postgres: JobByIdempotencyKey: %w", store.ErrNotFound)
	}
	j, err := scanJob(s.db.QueryRow(ctx, sqlJobByKey, owner, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: JobByIdempotencyKey: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: JobByIdempotencyKey: %w", err)
	}
	return j, nil
}

// GetJob implements store.Store.
func (s *Store) GetJob(ctx context.Context, id string) (*store.Job, error) {
	j, err := scanJob(s.db.QueryRow(ctx, sqlGetJob, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: GetJob %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: GetJob %q: %w", id, err)
	}
	return j, nil
}

// ListJobs implements store.Store. An unknown Before id is ErrNotFound
// rather than an empty page, so a bad cursor is reported, not hidden.
func (s *Store) ListJobs(ctx context.Context, f store.ListFilter) ([]*store.Job, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Owner != "" {
		where = append(where, "owner = "+arg(f.Owner))
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(f.Status))
	}
	if f.Before != "" {
		// A NULL from the sub-select (unknown id) matches nothing; that
		// case is told apart below, only when the page comes back empty.
		where = append(where, "seq < (SELECT seq FROM jobs WHERE id = "+arg(f.Before)+")")
	}
	if f.Language != "" {
		where = append(where, "language = "+arg(f.Language))
	}
	if f.Verdict != "" {
		where = append(where, "verdict = "+arg(f.Verdict))
	}
	if !f.Since.IsZero() {
		where = append(where, "created_at >= "+arg(columns.Nanos(f.Since)))
	}
	if !f.Until.IsZero() {
		where = append(where, "created_at < "+arg(columns.Nanos(f.Until)))
	}
	if f.Search != "" {
		where = append(where, "(strpos(id, "+arg(f.Search)+") > 0 OR position("+arg([]byte(f.Search))+"::bytea IN request) > 0)")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)

	var q strings.Builder
	q.WriteString("SELECT " + jobColumns + " FROM jobs")
	if len(where) > 0 {
		q.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	q.WriteString(" ORDER BY seq DESC LIMIT " + arg(limit) + " OFFSET " + arg(max(f.Offset, 0)))

	jobs, err := scanJobs(s.db.Query(ctx, q.String(), args...))
	if err != nil {
		return nil, errorf("postgres: ListJobs: %w", err)
	}
	if len(jobs) == 0 && f.Before != "" {
		if err := s.mustExist(ctx, f.Before); err != nil {
			return nil, errorf("postgres: ListJobs: before %q: %w", f.Before, err)
		}
	}
	return jobs, nil
}

// Unfinished implements store.Store.
func (s *Store) Unfinished(ctx context.Context) ([]*store.Job, error) {
	jobs, err := scanJobs(s.db.Query(ctx, `SELECT `+jobColumns+` FROM jobs
	WHERE status IN ('queued', 'running') ORDER BY seq`))
	if err != nil {
		return nil, errorf("postgres: Unfinished: %w", err)
	}
	return jobs, nil
}

// QueuedBefore implements store.Store: it walks the queue in creation
// order from afterSeq and stops at limit matches.
func (s *Store) QueuedBefore(ctx context.Context, before time.Time, afterSeq int64, limit int) ([]*store.Job, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	jobs, err := scanJobs(s.db.Query(ctx, `SELECT `+jobColumns+` FROM jobs
	WHERE status = 'queued' AND seq > $1 AND queued_at < $2 ORDER BY seq LIMIT $3`,
		afterSeq, columns.Nanos(before), min(limit, maxListLimit)))
	if err != nil {
		return nil, errorf("postgres: QueuedBefore: %w", err)
	}
	return jobs, nil
}

// QueuePosition implements store.Store: a count on the owner's part of
// the jobs_queue index.
func (s *Store) QueuePosition(ctx context.Context, id string) (int, error) {
	var pos int
	err := s.db.QueryRow(ctx, `SELECT CASE WHEN j.status = 'queued' THEN 1 + (
		SELECT COUNT(*) FROM jobs q
		WHERE q.status = 'queued' AND q.owner = j.owner
		AND (q.priority > j.priority OR (q.priority = j.priority AND q.seq < j.seq))) ELSE 0 END
	FROM jobs j WHERE j.id = $1`, id).Scan(&pos)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, errorf("postgres: QueuePosition %q: %w", id, store.ErrNotFound)
	case err != nil:
		return 0, errorf("postgres: QueuePosition %q: %w", id, err)
	}
	return pos, nil
}

// CountActive implements store.Store: the queued from queued_counts (one
// row per owner), the running on the (status, seq) index.
func (s *Store) CountActive(ctx context.Context) (queued, running int, err error) {
	err = s.db.QueryRow(ctx, `SELECT
		(SELECT COALESCE(SUM(n), 0) FROM queued_counts)::BIGINT,
		(SELECT COUNT(*) FROM jobs WHERE status = 'running')`).Scan(&queued, &running)
	if err != nil {
		return 0, 0, errorf("postgres: CountActive: %w", err)
	}
	return queued, running, nil
}

// CountActiveByOwner implements store.Store, as CountActive does.
func (s *Store) CountActiveByOwner(ctx context.Context) (queued, running map[string]int, err error) {
	if queued, err = byKey[int](s.db.Query(ctx, `SELECT owner, n FROM queued_counts WHERE n > 0`)); err != nil {
		return nil, nil, errorf("postgres: CountActiveByOwner: %w", err)
	}
	running, err = byKey[int](s.db.Query(ctx, `SELECT owner, COUNT(*) FROM jobs
	WHERE status = 'running' GROUP BY owner`))
	if err != nil {
		return nil, nil, errorf("postgres: CountActiveByOwner: %w", err)
	}
	return queued, running, nil
}

// CountJobs implements store.Store. Every known status is in the map, with 0
// when no job has it, so a metrics gauge drops back to zero.
func (s *Store) CountJobs(ctx context.Context) (map[string]int, error) {
	counts, err := byKey[int](s.db.Query(ctx, `SELECT status, COUNT(*) FROM jobs GROUP BY status`))
	if err != nil {
		return nil, errorf("postgres: CountJobs: %w", err)
	}
	for _, st := range []string{store.StatusQueued, store.StatusRunning, store.StatusDone, store.StatusCancelled, store.StatusFailed} {
		if _, ok := counts[st]; !ok {
			counts[st] = 0
		}
	}
	return counts, nil
}

// CountQueuedByLanguage implements store.Store.
func (s *Store) CountQueuedByLanguage(ctx context.Context) (map[string]int, error) {
	out, err := byKey[int](s.db.Query(ctx, `SELECT language, COUNT(*) FROM jobs WHERE status = 'queued' GROUP BY language`))
	if err != nil {
		return nil, errorf("postgres: CountQueuedByLanguage: %w", err)
	}
	return out, nil
}

// TallyJobs implements store.Store.
func (s *Store) TallyJobs(ctx context.Context, since time.Time) (*store.Tally, error) {
	t := &store.Tally{Days: map[time.Time]int{}}
	rows, err := s.db.Query(ctx, `SELECT language, status, verdict, COUNT(*) FROM jobs GROUP BY language, status, verdict`)
	if err != nil {
		return nil, errorf("postgres: TallyJobs: %w", err)
	}
	for rows.Next() {
		var k store.KindCount
		if err := rows.Scan(&k.Language, &k.Status, &k.Verdict, &k.N); err != nil {
			rows.Close()
			return nil, errorf("postgres: TallyJobs: %w", err)
		}
		t.Kinds = append(t.Kinds, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, errorf("postgres: TallyJobs: %w", err)
	}
	// created_at is UTC unix nanoseconds: its quotient by a day's is the
	// day's number.
	rows, err = s.db.Query(ctx, `SELECT created_at / 86400000000000, COUNT(*) FROM jobs
	WHERE created_at >= $1 GROUP BY 1`, columns.Nanos(since))
	if err != nil {
		return nil, errorf("postgres: TallyJobs: %w", err)
	}
	for rows.Next() {
		var day int64
		var n int
		if err := rows.Scan(&day, &n); err != nil {
			rows.Close()
			return nil, errorf("postgres: TallyJobs: %w", err)
		}
		t.Days[time.Unix(day*86400, 0).UTC()] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, errorf("postgres: TallyJobs: %w", err)
	}
	if err := s.db.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&t.Bytes); err != nil {
		return nil, errorf("postgres: TallyJobs: size: %w", err)
	}
	return t, nil
}

// CountOwnerJobs implements store.Store.
func (s *Store) CountOwnerJobs(ctx context.Context, owner string) (int, error) {
	var n int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM jobs WHERE owner = $1`, owner).Scan(&n); err != nil {
		return 0, errorf("postgres: CountOwnerJobs: %w", err)
	}
	return n, nil
}

// CountJobsByOwner implements store.Store.
func (s *Store) CountJobsByOwner(ctx context.Context) (map[string]int, error) {
	out, err := byKey[int](s.db.Query(ctx, `SELECT owner, COUNT(*) FROM jobs GROUP BY owner`))
	if err != nil {
		return nil, errorf("postgres: CountJobsByOwner: %w", err)
	}
	return out, nil
}

// StartAttempt implements store.Store.
func (s *Store) StartAttempt(ctx context.Context, id string, attempt int, w store.WorkerRef, at time.Time) error {
	op := fmt.Sprintf("StartAttempt %q attempt %d", id, attempt)
	if err := checkWorker(w); err != nil {
		return errorf("postgres: %s: %w", op, err)
	}
	return s.transition(ctx, op, id, sqlStartAttempt, attempt, w.Name, w.Identity, columns.Nanos(at), id)
}

// RequeueAttempt implements store.Store.
func (s *Store) RequeueAttempt(ctx context.Context, id string, attempt int, w store.WorkerRef, r store.Requeue) error {
	op := fmt.Sprintf("RequeueAttempt %q attempt %d by %s", id, attempt, w.Name)
	if err := checkWorker(w); err != nil {
		return errorf("postgres: %s: %w", op, err)
	}
	released := 0
	if r.Released {
		released = 1
	}
	return s.transition(ctx, op, id, sqlRequeueAttempt, r.Reason, released, id, attempt, w.Name, w.Identity, columns.Nanos(r.At))
}

// FinishAttempt implements store.Store.
func (s *Store) FinishAttempt(ctx context.Context, id string, attempt int, w store.WorkerRef, f store.Finish) (*store.Job, error) {
	op := fmt.Sprintf("FinishAttempt %q attempt %d by %s", id, attempt, w.Name)
	if err := checkFinish(f); err != nil {
		return nil, errorf("postgres: %s: %w", op, err)
	}
	if err := checkWorker(w); err != nil {
		return nil, errorf("postgres: %s: %w", op, err)
	}
	j, err := scanJob(s.db.QueryRow(ctx, sqlFinishAttempt,
		f.Status, f.Verdict, f.Error, f.Version, columns.Blob(f.Result), columns.Nanos(f.At), id, attempt, w.Name, w.Identity))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, s.outcome(ctx, op, id, 0, nil)
	}
	if err != nil {
		return nil, errorf("postgres: %s: %w", op, err)
	}
	return j, nil
}

// FinishQueued implements store.Store.
func (s *Store) FinishQueued(ctx context.Context, id string, f store.Finish) error {
	op := fmt.Sprintf("FinishQueued %q", id)
	if err := checkFinish(f); err != nil {
		return errorf("postgres: %s: %w", op, err)
	}
	return s.transition(ctx, op, id, sqlFinishQueued,
		f.Status, f.Verdict, f.Error, f.Version, columns.Blob(f.Result), columns.Nanos(f.At), id)
}

// checkFinish refuses a non-terminal outcome: a "finish" to running or
// queued would reopen a job whose result the caller considers recorded.
func checkFinish(f store.Finish) error {
	switch f.Status {
	case store.StatusDone, store.StatusFailed, store.StatusCancelled:
		return nil
	}
	return fmt.Errorf("finish status %q is not terminal", f.Status)
}

// checkWorker refuses an incomplete WorkerRef: an empty identity would
// match the attempts of jobs that never recorded one.
func checkWorker(w store.WorkerRef) error {
	if w.Name == "" || w.Identity == "" {
		return fmt.Errorf("worker %q identity %q: both are required", w.Name, w.Identity)
	}
	return nil
}

// transition runs one conditional UPDATE. Only when it matched no row does
// it pay a second query, to tell a missing job from one in another state.
func (s *Store) transition(ctx context.Context, op, id, query string, args ...any) error {
	tag, err := s.db.Exec(ctx, query, args...)
	return s.outcome(ctx, op, id, tag.RowsAffected(), err)
}

// outcome turns a transition's result (rows changed) into its error.
func (s *Store) outcome(ctx context.Context, op, id string, n int64, err error) error {
	if err != nil {
		return errorf("postgres: %s: %w", op, err)
	}
	if n == 1 {
		return nil
	}
	if err := s.mustExist(ctx, id); err != nil {
		return errorf("postgres: %s: %w", op, err)
	}
	return errorf("postgres: %s: %w", op, store.ErrConflict)
}

// mustExist returns nil if the job exists, an error wrapping ErrNotFound if
// not. Jobs are never deleted by the store, so reading after a failed
// UPDATE cannot see a job vanish in between.
func (s *Store) mustExist(ctx context.Context, id string) error {
	var one int
	err := s.db.QueryRow(ctx, sqlJobExists, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}
