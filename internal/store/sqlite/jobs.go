package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

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
	// ?1…?22 the columns, ?23 the quota (0: none); queued_at is
	// created_at. The quota is a
	// compare-and-set like the transitions: the count read and the row
	// inserted in one statement under the write lock, so concurrent
	// submissions, from any number of handles, cannot overshoot it.
	sqlCreateJob = `INSERT INTO jobs (` + insertColumns + `, queued_at)
	SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?13
	WHERE ?23 = 0 OR COALESCE((SELECT n FROM queued_counts WHERE owner = ?2), 0) < ?23
	RETURNING seq, queued_at`
	sqlQueuedByOwner = `SELECT n FROM queued_counts WHERE owner = ?`
	sqlGetJob        = `SELECT ` + jobColumns + ` FROM jobs WHERE id = ?`
	// "idem_key != ''" repeats the partial index's condition: without it
	// SQLite cannot prove a bound key is not '' and scans the owner's jobs.
	sqlJobByKey  = `SELECT ` + jobColumns + ` FROM jobs WHERE owner = ? AND idem_key = ? AND idem_key != ''`
	sqlJobExists = `SELECT 1 FROM jobs WHERE id = ?`

	// The transitions. Each is one compare-and-set on (id, status,
	// attempts), and on a running attempt also on (worker,
	// worker_identity): SQLite runs the WHERE and the SET under the write
	// lock, so of two racing callers exactly one sees a row affected.

	// ?1 attempt, ?2 worker, ?3 identity, ?4 at, ?5 id. StartedAt keeps
	// the first attempt's start so the job's latency counts from then.
	// The attempt has no master and no lease: it is held by the caller
	// until it finishes or requeues it (ClaimJobs starts leased ones).
	sqlStartAttempt = `UPDATE jobs SET status = 'running', attempts = ?1, worker = ?2, worker_identity = ?3,
		master = '', lease_until = 0,
		started_at = CASE WHEN started_at = 0 THEN ?4 ELSE started_at END
	WHERE id = ?5 AND status = 'queued' AND attempts = ?1 - 1`
	// ?1 reason, ?2 released (0 or 1), ?3 id, ?4 attempt, ?5 worker,
	// ?6 identity. The worker stays: it is the worker of the last attempt
	// until the next one starts.
	// ?7 the time it goes back to the queue.
	sqlRequeueAttempt = `UPDATE jobs SET status = 'queued', error = ?1, released = released + ?2, lease_until = 0,
		queued_at = ?7
	WHERE id = ?3 AND status = 'running' AND attempts = ?4 AND worker = ?5 AND worker_identity = ?6`
	// ?1 status, ?2 verdict, ?3 error, ?4 version ('' keeps the requested
	// one), ?5 result, ?6 at, ?7 id, ?8 attempt, ?9 worker, ?10 identity.
	sqlFinishAttempt = `UPDATE jobs SET status = ?1, verdict = ?2, error = ?3,
		version = CASE WHEN ?4 = '' THEN version ELSE ?4 END, result = ?5, finished_at = ?6
	WHERE id = ?7 AND status = 'running' AND attempts = ?8 AND worker = ?9 AND worker_identity = ?10
	RETURNING ` + jobColumns
	// Same parameters as sqlFinishAttempt without the attempt.
	sqlFinishQueued = `UPDATE jobs SET status = ?1, verdict = ?2, error = ?3,
		version = CASE WHEN ?4 = '' THEN version ELSE ?4 END, result = ?5, finished_at = ?6
	WHERE id = ?7 AND status = 'queued'`
)

// List limits, see store.ListFilter.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// CreateJob implements store.Store. The job must be new: Status empty (taken
// as queued) or queued; every other field is stored as given, and the
// store's own (Seq, QueuedAt) are set in j.
func (s *Store) CreateJob(ctx context.Context, j *store.Job, maxQueued int) error {
	status, err := j.NewStatus()
	if err != nil {
		return fmt.Errorf("sqlite: CreateJob %w", err)
	}
	labels, err := columns.Labels(j.Labels)
	if err != nil {
		return fmt.Errorf("sqlite: CreateJob %q: %w", j.ID, err)
	}
	args := append(createArgs(j, status, labels), max(maxQueued, 0))
	var seq, queued int64
	scan := func(row *sql.Row) error { return row.Scan(&seq, &queued) }
	n, err := s.writes.query(ctx, scan, s.createJob, args...)
	if err != nil {
		return fmt.Errorf("sqlite: CreateJob %q: %w", j.ID, constraintErr(err))
	}
	if n == 0 {
		return fmt.Errorf("sqlite: CreateJob %q: %d queued jobs of %s: %w", j.ID, maxQueued, j.Owner, store.ErrQuota)
	}
	j.Seq, j.QueuedAt = seq, columns.Time(queued)
	return nil
}

// createArgs are sqlCreateJob's column arguments (?1…?22) for j.
func createArgs(j *store.Job, status, labels string) []any {
	return []any{j.ID, j.Owner, j.Language, j.Version, status, j.Verdict, j.Error,
		j.Attempts, j.MaxAttempts, j.Worker, j.Priority, labels,
		columns.Nanos(j.CreatedAt), columns.Nanos(j.StartedAt), columns.Nanos(j.FinishedAt),
		columns.Blob(j.Request), columns.Blob(j.Result), j.IdempotencyKey,
		j.WorkerIdentity, j.Released, j.Master, columns.Nanos(j.LeaseUntil)}
}

// QueuedByOwner implements store.Store.
func (s *Store) QueuedByOwner(ctx context.Context, owner string) (int, error) {
	var n int
	err := s.queuedByOwner.QueryRowContext(ctx, owner).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: QueuedByOwner %q: %w", owner, err)
	}
	return n, nil
}

// JobByIdempotencyKey implements store.Store.
func (s *Store) JobByIdempotencyKey(ctx context.Context, owner, key string) (*store.Job, error) {
	if key == "" {
		return nil, fmt.Errorf("sqlite: JobByIdempotencyKey: %w", store.ErrNotFound)
	}
	j, err := scanJob(s.jobByKey.QueryRowContext(ctx, owner, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: JobByIdempotencyKey: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: JobByIdempotencyKey: %w", err)
	}
	return j, nil
}

// GetJob implements store.Store.
func (s *Store) GetJob(ctx context.Context, id string) (*store.Job, error) {
	j, err := scanJob(s.getJob.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: GetJob %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: GetJob %q: %w", id, err)
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
	if f.Owner != "" {
		where = append(where, "owner = ?")
		args = append(args, f.Owner)
	}
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, f.Status)
	}
	if f.Before != "" {
		// A NULL from the sub-select (unknown id) matches nothing; that
		// case is told apart below, only when the page comes back empty.
		where = append(where, "seq < (SELECT seq FROM jobs WHERE id = ?)")
		args = append(args, f.Before)
	}
	if f.Language != "" {
		where = append(where, "language = ?")
		args = append(args, f.Language)
	}
	if f.Verdict != "" {
		where = append(where, "verdict = ?")
		args = append(args, f.Verdict)
	}
	if !f.Since.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, columns.Nanos(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "created_at < ?")
		args = append(args, columns.Nanos(f.Until))
	}
	if f.Search != "" {
		// Both as blobs: instr then compares bytes, whatever the
		// request's encoding.
		where = append(where, "(instr(CAST(id AS BLOB), ?) > 0 OR instr(request, ?) > 0)")
		args = append(args, []byte(f.Search), []byte(f.Search))
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
	q.WriteString(" ORDER BY seq DESC LIMIT ? OFFSET ?")
	args = append(args, limit, max(f.Offset, 0))

	jobs, err := s.queryJobs(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ListJobs: %w", err)
	}
	if len(jobs) == 0 && f.Before != "" {
		if err := s.mustExist(ctx, f.Before); err != nil {
			return nil, fmt.Errorf("sqlite: ListJobs: before %q: %w", f.Before, err)
		}
	}
	return jobs, nil
}

// Unfinished implements store.Store.
func (s *Store) Unfinished(ctx context.Context) ([]*store.Job, error) {
	jobs, err := s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs
	WHERE status IN ('queued', 'running') ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: Unfinished: %w", err)
	}
	return jobs, nil
}

// QueuedBefore implements store.Store. It walks the queue in creation
// order on the (status, seq) index from afterSeq and stops at limit
// matches, so a page costs at most the length of the queue and usually
// much less.
func (s *Store) QueuedBefore(ctx context.Context, before time.Time, afterSeq int64, limit int) ([]*store.Job, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	jobs, err := s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs INDEXED BY jobs_status_seq
	WHERE status = 'queued' AND seq > ? AND queued_at < ? ORDER BY seq LIMIT ?`, afterSeq, columns.Nanos(before), min(limit, maxListLimit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: QueuedBefore: %w", err)
	}
	return jobs, nil
}

// QueuePosition implements store.Store: a count on the owner's part of
// the jobs_queue index.
func (s *Store) QueuePosition(ctx context.Context, id string) (int, error) {
	var pos int
	err := s.r.QueryRowContext(ctx, `SELECT CASE WHEN j.status = 'queued' THEN 1 + (
		SELECT COUNT(*) FROM jobs q INDEXED BY jobs_queue
		WHERE q.status = 'queued' AND q.owner = j.owner
		AND (q.priority > j.priority OR (q.priority = j.priority AND q.seq < j.seq))) ELSE 0 END
	FROM jobs j WHERE j.id = ?`, id).Scan(&pos)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("sqlite: QueuePosition %q: %w", id, store.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("sqlite: QueuePosition %q: %w", id, err)
	}
	return pos, nil
}

// CountActive implements store.Store: the queued from queued_counts (one
// row per owner), the running on the (status, seq) index.
func (s *Store) CountActive(ctx context.Context) (queued, running int, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT
		(SELECT COALESCE(SUM(n), 0) FROM queued_counts),
		(SELECT COUNT(*) FROM jobs INDEXED BY jobs_status_seq WHERE status = 'running')`).Scan(&queued, &running)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: CountActive: %w", err)
	}
	return queued, running, nil
}

// CountActiveByOwner implements store.Store, as CountActive does.
func (s *Store) CountActiveByOwner(ctx context.Context) (queued, running map[string]int, err error) {
	if queued, err = byKey[int](s.r.QueryContext(ctx, `SELECT owner, n FROM queued_counts WHERE n > 0`)); err != nil {
		return nil, nil, fmt.Errorf("sqlite: CountActiveByOwner: %w", err)
	}
	running, err = byKey[int](s.r.QueryContext(ctx, `SELECT owner, COUNT(*) FROM jobs INDEXED BY jobs_status_seq
	WHERE status = 'running' GROUP BY owner`))
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: CountActiveByOwner: %w", err)
	}
	return queued, running, nil
}

// CountQueuedByLanguage implements store.Store, on the (status, seq)
// index.
func (s *Store) CountQueuedByLanguage(ctx context.Context) (map[string]int, error) {
	out, err := byKey[int](s.r.QueryContext(ctx, `SELECT language, COUNT(*) FROM jobs INDEXED BY jobs_status_seq
	WHERE status = 'queued' GROUP BY language`))
	if err != nil {
		return nil, fmt.Errorf("sqlite: CountQueuedByLanguage: %w", err)
	}
	return out, nil
}

// TallyJobs implements store.Store.
func (s *Store) TallyJobs(ctx context.Context, since time.Time) (*store.Tally, error) {
	t := &store.Tally{Days: map[time.Time]int{}}
	rows, err := s.r.QueryContext(ctx, `SELECT language, status, verdict, COUNT(*) FROM jobs GROUP BY language, status, verdict`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: TallyJobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k store.KindCount
		if err := rows.Scan(&k.Language, &k.Status, &k.Verdict, &k.N); err != nil {
			return nil, fmt.Errorf("sqlite: TallyJobs: %w", err)
		}
		t.Kinds = append(t.Kinds, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: TallyJobs: %w", err)
	}
	// created_at is UTC unix nanoseconds: its quotient by a day's is the
	// day's number.
	days, err := s.r.QueryContext(ctx, `SELECT created_at / 86400000000000, COUNT(*) FROM jobs
	WHERE created_at >= ? GROUP BY 1`, columns.Nanos(since))
	if err != nil {
		return nil, fmt.Errorf("sqlite: TallyJobs: %w", err)
	}
	defer days.Close()
	for days.Next() {
		var day int64
		var n int
		if err := days.Scan(&day, &n); err != nil {
			return nil, fmt.Errorf("sqlite: TallyJobs: %w", err)
		}
		t.Days[time.Unix(day*86400, 0).UTC()] = n
	}
	if err := days.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: TallyJobs: %w", err)
	}
	if err := s.r.QueryRowContext(ctx, `SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()`).Scan(&t.Bytes); err != nil {
		return nil, fmt.Errorf("sqlite: TallyJobs: size: %w", err)
	}
	return t, nil
}

// CountJobs implements store.Store. Every known status is in the map, with 0
// when no job has it, so a metrics gauge drops back to zero.
func (s *Store) CountJobs(ctx context.Context) (map[string]int, error) {
	counts := map[string]int{
		store.StatusQueued: 0, store.StatusRunning: 0, store.StatusDone: 0,
		store.StatusCancelled: 0, store.StatusFailed: 0,
	}
	// Counted on the (status, seq) index, without touching the rows.
	rows, err := s.r.QueryContext(ctx, `SELECT status, COUNT(*) FROM jobs GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: CountJobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			status string
			n      int
		)
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("sqlite: CountJobs: %w", err)
		}
		counts[status] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: CountJobs: %w", err)
	}
	return counts, nil
}

// StartAttempt implements store.Store.
func (s *Store) StartAttempt(ctx context.Context, id string, attempt int, w store.WorkerRef, at time.Time) error {
	op := fmt.Sprintf("StartAttempt %q attempt %d", id, attempt)
	if err := checkWorker(w); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.transition(ctx, op, id, s.startAttempt, attempt, w.Name, w.Identity, columns.Nanos(at), id)
}

// RequeueAttempt implements store.Store.
func (s *Store) RequeueAttempt(ctx context.Context, id string, attempt int, w store.WorkerRef, r store.Requeue) error {
	op := fmt.Sprintf("RequeueAttempt %q attempt %d by %s", id, attempt, w.Name)
	if err := checkWorker(w); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	released := 0
	if r.Released {
		released = 1
	}
	return s.transition(ctx, op, id, s.requeueAttempt, r.Reason, released, id, attempt, w.Name, w.Identity, columns.Nanos(r.At))
}

// FinishAttempt implements store.Store.
func (s *Store) FinishAttempt(ctx context.Context, id string, attempt int, w store.WorkerRef, f store.Finish) (*store.Job, error) {
	op := fmt.Sprintf("FinishAttempt %q attempt %d by %s", id, attempt, w.Name)
	if err := checkFinish(f); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if err := checkWorker(w); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var j *store.Job
	scan := func(row *sql.Row) (err error) {
		j, err = scanJob(row)
		return err
	}
	n, err := s.writes.query(ctx, scan, s.finishAttempt,
		f.Status, f.Verdict, f.Error, f.Version, columns.Blob(f.Result), columns.Nanos(f.At), id, attempt, w.Name, w.Identity)
	if err := s.outcome(ctx, op, id, n, err); err != nil {
		return nil, err
	}
	return j, nil
}

// FinishQueued implements store.Store.
func (s *Store) FinishQueued(ctx context.Context, id string, f store.Finish) error {
	op := fmt.Sprintf("FinishQueued %q", id)
	if err := checkFinish(f); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.transition(ctx, op, id, s.finishQueued,
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

// transition runs one conditional UPDATE, committed with whatever other
// transitions are waiting (batch.go). Only when it matched no row does
// it pay a second (read) query, to tell a missing job from one in another
// state; the common path is a single statement.
func (s *Store) transition(ctx context.Context, op, id string, st *sql.Stmt, args ...any) error {
	n, err := s.writes.exec(ctx, st, args...)
	return s.outcome(ctx, op, id, n, err)
}

// outcome turns a transition's result (rows changed) into its error.
func (s *Store) outcome(ctx context.Context, op, id string, n int64, err error) error {
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if n == 1 {
		return nil
	}
	if err := s.mustExist(ctx, id); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, store.ErrConflict)
}

// mustExist returns nil if the job exists, an error wrapping ErrNotFound if
// not. Jobs are never deleted by the store, so reading after a failed
// UPDATE cannot see a job vanish in between.
func (s *Store) mustExist(ctx context.Context, id string) error {
	var one int
	err := s.jobExists.QueryRowContext(ctx, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

func (s *Store) queryJobs(ctx context.Context, query string, args ...any) ([]*store.Job, error) {
	return scanJobs(s.r.QueryContext(ctx, query, args...))
}

// scanJob reads one row of jobColumns from a *sql.Row or *sql.Rows.
func scanJob(row interface{ Scan(...any) error }) (*store.Job, error) {
	var (
		j                          store.Job
		labels                     string
		created, started, finished int64
		lease, queued              int64
	)
	err := row.Scan(&j.Seq, &j.ID, &j.Owner, &j.Language, &j.Version, &j.Status, &j.Verdict, &j.Error,
		&j.Attempts, &j.MaxAttempts, &j.Worker, &j.Priority, &labels,
		&created, &started, &finished, &j.Request, &j.Result, &j.IdempotencyKey,
		&j.WorkerIdentity, &j.Released, &j.Master, &lease, &queued)
	if err != nil {
		return nil, err
	}
	j.LeaseUntil, j.QueuedAt = columns.Time(lease), columns.Time(queued)
	if j.Labels, err = columns.ParseLabels(labels); err != nil {
		return nil, fmt.Errorf("job %q: %w", j.ID, err)
	}
	j.CreatedAt, j.StartedAt, j.FinishedAt = columns.Time(created), columns.Time(started), columns.Time(finished)
	// An empty BLOB scans as an empty or nil slice depending on the driver
	// path; callers get nil for "no document" either way.
	if len(j.Request) == 0 {
		j.Request = nil
	}
	if len(j.Result) == 0 {
		j.Result = nil
	}
	return &j, nil
}

// CountOwnerJobs implements store.Store, on the (owner, seq) index.
func (s *Store) CountOwnerJobs(ctx context.Context, owner string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs INDEXED BY jobs_owner_seq WHERE owner = ?`, owner).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: CountOwnerJobs: %w", err)
	}
	return n, nil
}

// CountJobsByOwner implements store.Store.
func (s *Store) CountJobsByOwner(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT owner, COUNT(*) FROM jobs GROUP BY owner`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: CountJobsByOwner: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var owner string
		var n int
		if err := rows.Scan(&owner, &n); err != nil {
			return nil, fmt.Errorf("sqlite: CountJobsByOwner: %w", err)
		}
		out[owner] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: CountJobsByOwner: %w", err)
	}
	return out, nil
}
