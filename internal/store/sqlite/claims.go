package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// Claims, leases and rescues. Each runs as one function write of the
// committer (batch.go): a transaction of its own, or a savepoint of the
// batch's, on the one write connection. On SQLite the write lock is the
// claim's exclusion: between two handles on one file (two masters) the
// BEGIN IMMEDIATE of one waits for the other's commit, so the candidates a
// claim reads are still queued when it starts them. The UPDATEs still
// compare-and-set on status, as they must on PostgreSQL (where the
// candidates are read FOR UPDATE SKIP LOCKED instead).

// renewChunk bounds the workers of one renewal statement (two parameters
// each, well under SQLite's limit).
const renewChunk = 500

const (
	// ?1 worker, ?2 identity, ?3 master, ?4 lease, ?5 at, ?6 id.
	sqlClaim = `UPDATE jobs SET status = 'running', attempts = attempts + 1,
		worker = ?1, worker_identity = ?2, master = ?3, lease_until = ?4,
		started_at = CASE WHEN started_at = 0 THEN ?5 ELSE started_at END
	WHERE id = ?6 AND status = 'queued'
	RETURNING ` + jobColumns
	sqlClaimRunning = `SELECT owner, COUNT(*) FROM jobs WHERE status = 'running' GROUP BY owner`
	sqlClaimOwners  = `SELECT owner, last_claim FROM queued_counts WHERE n > 0`
	// ?1 owner, ?2 limit, ?3 offset. Only the columns placement needs
	// are read; the claim's UPDATE returns the whole row.
	sqlClaimCandidates = `SELECT seq, id, language, version, labels FROM jobs INDEXED BY jobs_queue
	WHERE status = 'queued' AND owner = ?1 ORDER BY priority DESC, seq LIMIT ?2 OFFSET ?3`
	// One statement per owner served, in order: each takes the next
	// number after every owner's.
	sqlClaimServed = `UPDATE queued_counts SET last_claim = (SELECT MAX(last_claim) FROM queued_counts) + 1 WHERE owner = ?`
	// ?1 until, ?2 master, then the (worker, identity) pairs. One
	// statement per batch of workers: it walks the running jobs once on
	// the (status, seq) index (they are bounded by the fleet's slots), so
	// no index of its own costs every job a write at start and finish.
	sqlRenew = `UPDATE jobs SET lease_until = ?1, master = ?2
	WHERE status = 'running' AND (worker, worker_identity) IN (VALUES `
	// ?1 reason, ?2 now, ?3 limit. One statement: the attempts it
	// selects are those it changes, under the write lock, so a rescue
	// racing another (on another handle) finds them no longer running.
	sqlRescue = `UPDATE jobs SET
		status = CASE WHEN attempts - released >= max_attempts THEN 'failed' ELSE 'queued' END,
		error = CASE WHEN attempts - released >= max_attempts
			THEN ?1 || '; gave up after ' || attempts || ' attempts' ELSE ?1 END,
		finished_at = CASE WHEN attempts - released >= max_attempts THEN ?2 ELSE finished_at END,
		queued_at = CASE WHEN attempts - released >= max_attempts THEN queued_at ELSE ?2 END,
		lease_until = 0
	WHERE status = 'running' AND id IN (
		SELECT id FROM jobs WHERE status = 'running' AND lease_until != 0 AND lease_until < ?2
		ORDER BY lease_until LIMIT ?3)
	RETURNING ` + jobColumns
)

// ClaimJobs implements store.Store.
func (s *Store) ClaimJobs(ctx context.Context, r store.ClaimRequest) ([]store.Claim, error) {
	if r.Master == "" || r.LeaseUntil.IsZero() || r.Placer == nil {
		return nil, errors.New("sqlite: ClaimJobs: Master, Placer and LeaseUntil are required")
	}
	capacity := r.Capacity()
	if capacity == 0 || len(r.Placer.Languages()) == 0 {
		return nil, nil
	}
	var (
		claims []store.Claim
		placed []store.Placement
	)
	_, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		claims = claims[:0]
		owners, err := byKey[int64](tx.Stmt(s.claimOwners).Query())
		if err != nil {
			return 0, err
		}
		// With one owner waiting, its running attempts order nothing.
		var running map[string]int
		if len(owners) > 1 {
			if running, err = byKey[int](tx.Stmt(s.claimRunning).Query()); err != nil {
				return 0, err
			}
		}
		candidates, err := queuedCandidates(tx.Stmt(s.claimCandidates), &r, owners, capacity)
		if err != nil {
			return 0, err
		}
		claim := tx.Stmt(s.claimJob)
		placed = store.Place(&r, store.FairOrder(candidates, running, owners))
		for _, p := range placed {
			w := p.Worker
			if err := checkWorker(w); err != nil {
				return 0, err
			}
			j, err := scanJob(claim.QueryRow(w.Name, w.Identity, r.Master, columns.Nanos(r.LeaseUntil), columns.Nanos(r.At), p.Job.ID))
			if errors.Is(err, sql.ErrNoRows) {
				continue // cannot happen under the write lock; a CAS all the same
			}
			if err != nil {
				return 0, err
			}
			claims = append(claims, store.Claim{Job: j, Worker: w})
		}
		return int64(len(claims)), markServed(tx.Stmt(s.claimServed), claims)
	})
	if err != nil {
		store.Unplace(&r, placed) // none of them started
		return nil, fmt.Errorf("sqlite: ClaimJobs: %w", err)
	}
	return claims, nil
}

// ClaimJob implements store.Store.
func (s *Store) ClaimJob(ctx context.Context, id, master string, w store.WorkerRef, at, leaseUntil time.Time) (*store.Job, error) {
	op := fmt.Sprintf("ClaimJob %q for %s", id, w.Name)
	if err := checkWorker(w); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if master == "" || leaseUntil.IsZero() {
		return nil, fmt.Errorf("sqlite: %s: master and lease are required", op)
	}
	var j *store.Job
	scan := func(row *sql.Row) (err error) {
		j, err = scanJob(row)
		return err
	}
	n, err := s.writes.query(ctx, scan, s.claimJob, w.Name, w.Identity, master, columns.Nanos(leaseUntil), columns.Nanos(at), id)
	if err := s.outcome(ctx, op, id, n, err); err != nil {
		return nil, err
	}
	return j, nil
}

// byKey reads (key, number) rows: the running attempts of each
// owner (bounded by the fleet's slots, not by the queue), the owners with
// queued jobs and when each was last served (store.FairOrder's lastClaim,
// from queued_counts: one row per owner, not the queue), or held attempts
// by job id.
func byKey[N int | int64](rows *sql.Rows, err error) (map[string]N, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]N{}
	for rows.Next() {
		var (
			owner string
			n     N
		)
		if err := rows.Scan(&owner, &n); err != nil {
			return nil, err
		}
		out[owner] = n
	}
	return out, rows.Err()
}

// queuedCandidates reads, for every owner with queued jobs, the first ones
// (priority, then age) that some offer fits, on the jobs_queue index: the
// work is by owners and claims, not by the length of the queue. It reads
// capacity jobs, and past them only when some did not fit, up to
// store.ClaimScanAhead more.
func queuedCandidates(st *sql.Stmt, r *store.ClaimRequest, owners map[string]int64, capacity int) (map[string][]*store.Job, error) {
	return store.Candidates(r, owners, capacity, func(owner string, limit, offset int) ([]*store.Job, error) {
		return scanCandidates(st.Query(owner, limit, offset))
	})
}

func scanCandidates(rows *sql.Rows, err error) ([]*store.Job, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var jobs []*store.Job
	for rows.Next() {
		var (
			j      store.Job
			labels string
		)
		if err := rows.Scan(&j.Seq, &j.ID, &j.Language, &j.Version, &labels); err != nil {
			return nil, err
		}
		if j.Labels, err = columns.ParseLabels(labels); err != nil {
			return nil, fmt.Errorf("job %q: %w", j.ID, err)
		}
		jobs = append(jobs, &j)
	}
	return jobs, rows.Err()
}

// markServed records the owners of claims as served, in the order of
// their last claim, after every owner served before: a counter, not a
// clock, so that masters whose clocks differ agree on the order.
func markServed(served *sql.Stmt, claims []store.Claim) error {
	var order []string
	for i := len(claims) - 1; i >= 0; i-- {
		if o := claims[i].Job.Owner; !slices.Contains(order, o) {
			order = append(order, o)
		}
	}
	slices.Reverse(order)
	for _, o := range order {
		if _, err := served.Exec(o); err != nil {
			return err
		}
	}
	return nil
}

// HeldBy implements store.Store. It walks the running jobs on the
// (status, seq) index: they are bounded by the fleet's slots.
func (s *Store) HeldBy(ctx context.Context, master string) (map[string]int, error) {
	held, err := byKey[int](s.r.QueryContext(ctx, `SELECT id, attempts FROM jobs INDEXED BY jobs_status_seq
	WHERE status = 'running' AND master = ?`, master))
	if err != nil {
		return nil, fmt.Errorf("sqlite: HeldBy: %w", err)
	}
	return held, nil
}

// RunningOn implements store.Store, walking the running jobs as HeldBy.
func (s *Store) RunningOn(ctx context.Context, w store.WorkerRef) (map[string]int, error) {
	on, err := byKey[int](s.r.QueryContext(ctx, `SELECT id, attempts FROM jobs INDEXED BY jobs_status_seq
	WHERE status = 'running' AND worker = ? AND worker_identity = ?`, w.Name, w.Identity))
	if err != nil {
		return nil, fmt.Errorf("sqlite: RunningOn: %w", err)
	}
	return on, nil
}

// RenewLeases implements store.Store.
func (s *Store) RenewLeases(ctx context.Context, master string, workers []store.WorkerRef, until time.Time) (int, error) {
	if master == "" || until.IsZero() {
		return 0, errors.New("sqlite: RenewLeases: master and until are required")
	}
	for _, w := range workers {
		if err := checkWorker(w); err != nil {
			return 0, fmt.Errorf("sqlite: RenewLeases: %w", err)
		}
	}
	if len(workers) == 0 {
		return 0, nil
	}
	n, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		var total int64
		for chunk := range slices.Chunk(workers, renewChunk) {
			args := make([]any, 0, 2+2*len(chunk))
			args = append(args, columns.Nanos(until), master)
			for _, w := range chunk {
				args = append(args, w.Name, w.Identity)
			}
			q := sqlRenew + strings.TrimSuffix(strings.Repeat("(?, ?), ", len(chunk)), ", ") + ")"
			n, err := affected(tx.Exec(q, args...))
			if err != nil {
				return 0, err
			}
			total += n
		}
		return total, nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: RenewLeases: %w", err)
	}
	return int(n), nil
}

// RescueExpired implements store.Store.
func (s *Store) RescueExpired(ctx context.Context, now time.Time, reason string, limit int) ([]*store.Job, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	var jobs []*store.Job
	_, err := s.writes.tx(ctx, func(tx *sql.Tx) (int64, error) {
		var err error
		jobs, err = scanJobs(tx.Query(sqlRescue, reason, columns.Nanos(now), limit))
		return int64(len(jobs)), err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: RescueExpired: %w", err)
	}
	return jobs, nil
}

// scanJobs reads every row of a query of jobColumns; no row is an empty
// list, not nil.
func scanJobs(rows *sql.Rows, err error) ([]*store.Job, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	jobs := []*store.Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}
