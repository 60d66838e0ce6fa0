package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// Claims, leases and rescues: what several masters on one database race
// for. Lock order, everywhere: job rows first, each either taken with
// SKIP LOCKED (a claim's candidates, a rescue's expired attempts: a
// master never waits for the jobs another is moving) or one at a time (a
// transition); then the owners' queued_counts rows, in owner order (the
// trigger that counts the queue takes them as the jobs change status,
// so a claim or a rescue of several owners locks them all, sorted,
// before changing any job). No wait can then close a cycle.

const (
	// $1 worker, $2 identity, $3 master, $4 lease, $5 at, $6 id. The
	// compare-and-set on status cannot fail on a row the claim locked;
	// it stays, as the claim's statement of what it expects.
	sqlClaim = `UPDATE jobs SET status = 'running', attempts = attempts + 1,
		worker = $1, worker_identity = $2, master = $3, lease_until = $4,
		started_at = CASE WHEN started_at = 0 THEN $5 ELSE started_at END
	WHERE id = $6 AND status = 'queued'
	RETURNING ` + jobColumns
	sqlClaimRunning = `SELECT owner, COUNT(*) FROM jobs WHERE status = 'running' GROUP BY owner`
	sqlClaimOwners  = `SELECT owner, last_claim FROM queued_counts WHERE n > 0`
	// $1 owner, $2 limit, $3 offset: the owner's queue on the jobs_queue
	// index. The rows another claim holds are skipped, not waited for:
	// they are being claimed, and the next ones are as good.
	sqlClaimCandidates = `SELECT seq, id, language, version, labels FROM jobs
	WHERE status = 'queued' AND owner = $1 ORDER BY priority DESC, seq LIMIT $2 OFFSET $3
	FOR UPDATE SKIP LOCKED`
	// $1 owners, sorted: see the lock order above.
	sqlLockOwners = `SELECT owner FROM queued_counts WHERE owner = ANY($1) ORDER BY owner FOR UPDATE`
	// One statement per owner served, in order: each takes the next
	// number of a counter every master shares.
	sqlClaimServed = `UPDATE queued_counts SET last_claim = nextval('claim_serial') WHERE owner = $1`
	// $1 until, $2 master, $3 workers, $4 their identities (pairwise).
	sqlRenew = `UPDATE jobs SET lease_until = $1, master = $2
	WHERE status = 'running' AND (worker, worker_identity) IN (SELECT * FROM unnest($3::TEXT[], $4::TEXT[]))`
	// $1 now, $2 limit: the expired attempts, locked; those another
	// rescue holds are its own.
	sqlExpired = `SELECT seq, owner FROM jobs
	WHERE status = 'running' AND lease_until <> 0 AND lease_until < $1
	ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED`
	// $1 reason, $2 now, $3 the seqs sqlExpired locked.
	sqlRescue = `UPDATE jobs SET
		status = CASE WHEN attempts - released >= max_attempts THEN 'failed' ELSE 'queued' END,
		error = CASE WHEN attempts - released >= max_attempts
			THEN $1::TEXT || '; gave up after ' || attempts || ' attempts' ELSE $1::TEXT END,
		finished_at = CASE WHEN attempts - released >= max_attempts THEN $2 ELSE finished_at END,
		queued_at = CASE WHEN attempts - released >= max_attempts THEN queued_at ELSE $2 END,
		lease_until = 0
	WHERE seq = ANY($3) AND status = 'running'
	RETURNING ` + jobColumns
)

// ClaimJob implements store.Store: one job row, then (the trigger) its
// owner's queued_counts row, as any transition.
func (s *Store) ClaimJob(ctx context.Context, id, master string, w store.WorkerRef, at, leaseUntil time.Time) (*store.Job, error) {
	op := fmt.Sprintf("ClaimJob %q for %s", id, w.Name)
	if err := checkWorker(w); err != nil {
		return nil, errorf("postgres: %s: %w", op, err)
	}
	if master == "" || leaseUntil.IsZero() {
		return nil, errorf("postgres: %s: master and lease are required", op)
	}
	j, err := scanJob(s.db.QueryRow(ctx, sqlClaim, w.Name, w.Identity, master, columns.Nanos(leaseUntil), columns.Nanos(at), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, s.outcome(ctx, op, id, 0, nil)
	}
	if err != nil {
		return nil, errorf("postgres: %s: %w", op, err)
	}
	return j, nil
}

// ClaimJobs implements store.Store: one transaction that reads the
// candidates (locking them), orders and places them with store.FairOrder
// and store.Place, as every backend does, and starts the placed ones.
func (s *Store) ClaimJobs(ctx context.Context, r store.ClaimRequest) ([]store.Claim, error) {
	if r.Master == "" || r.LeaseUntil.IsZero() || r.Placer == nil {
		return nil, errors.New("postgres: ClaimJobs: Master, Placer and LeaseUntil are required")
	}
	capacity := r.Capacity()
	if capacity == 0 || len(r.Placer.Languages()) == 0 {
		return nil, nil
	}
	var (
		claims []store.Claim
		placed []store.Placement
	)
	err := s.inPipeTx(ctx, func(tx *pipeTx) error {
		// A transaction run again (a deadlock) places again.
		store.Unplace(&r, placed)
		claims, placed = claims[:0], nil
		var owners map[string]int64
		var first pgx.Batch
		first.Queue(sqlClaimOwners).Query(func(rows pgx.Rows) (err error) {
			owners, err = byKey[int64](rows, nil)
			return err
		})
		if err := tx.Send(ctx, &first, false); err != nil {
			return err
		}
		// With one owner waiting, its running attempts order nothing.
		var running map[string]int
		var err error
		if len(owners) > 1 {
			if running, err = byKey[int](tx.Query(ctx, sqlClaimRunning)); err != nil {
				return err
			}
		}
		candidates, err := queuedCandidates(ctx, tx, &r, owners, capacity)
		if err != nil {
			return err
		}
		placed = store.Place(&r, store.FairOrder(candidates, running, owners))
		for _, p := range placed {
			if err := checkWorker(p.Worker); err != nil {
				return err
			}
		}
		// The writes go in one pipeline with the COMMIT (one round trip):
		// the owners' counters locked in order, the claims, the owners
		// served. The claims cannot miss on rows this transaction locked,
		// so the owners served are those of the placements. With nothing
		// placed, the COMMIT alone releases the candidates.
		var b pgx.Batch
		served := placedOwners(placed)
		if len(served) > 1 {
			// One owner's counter alone cannot close a cycle of waits.
			b.Queue(sqlLockOwners, slices.Sorted(slices.Values(served)))
		}
		for _, p := range placed {
			w := p.Worker
			b.Queue(sqlClaim, w.Name, w.Identity, r.Master, columns.Nanos(r.LeaseUntil), columns.Nanos(r.At), p.Job.ID).QueryRow(func(row pgx.Row) error {
				j, err := scanJob(row)
				if errors.Is(err, pgx.ErrNoRows) {
					return nil // cannot happen on a locked row; a CAS all the same
				}
				if err != nil {
					return err
				}
				claims = append(claims, store.Claim{Job: j, Worker: w})
				return nil
			})
		}
		for _, o := range served {
			b.Queue(sqlClaimServed, o)
		}
		return tx.Send(ctx, &b, true)
	})
	if err != nil {
		store.Unplace(&r, placed) // none of them started
		return nil, errorf("postgres: ClaimJobs: %w", err)
	}
	return claims, nil
}

// lockOwners locks the queued_counts rows of owners, in owner order. One
// owner's counter alone cannot close a cycle of waits: it is left to the
// trigger.
func lockOwners(ctx context.Context, tx pgx.Tx, owners []string) error {
	if len(owners) < 2 {
		return nil
	}
	sorted := slices.Sorted(slices.Values(owners))
	rows, err := tx.Query(ctx, sqlLockOwners, sorted)
	if err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// querier runs a query in a transaction: a pgx.Tx or a pipeTx.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

var (
	_ querier = (pgx.Tx)(nil)
	_ querier = (*pipeTx)(nil)
)

// queuedCandidates reads, for every owner with queued jobs, the first ones
// (priority, then age) that some offer fits and no other claim holds, on
// the jobs_queue index. It reads capacity jobs, and past them only when
// some did not fit, up to store.ClaimScanAhead more. Every row read stays
// locked until the claim commits, the ones not placed included: other
// claims skip them meanwhile, which costs them nothing but this claim's
// candidates.
func queuedCandidates(ctx context.Context, tx querier, r *store.ClaimRequest, owners map[string]int64, capacity int) (map[string][]*store.Job, error) {
	return store.Candidates(r, owners, capacity, func(owner string, limit, offset int) ([]*store.Job, error) {
		return scanCandidates(tx.Query(ctx, sqlClaimCandidates, owner, limit, offset))
	})
}

func scanCandidates(rows pgx.Rows, err error) ([]*store.Job, error) {
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

// placedOwners returns the owners of the placements in the order of
// their last placement: the order in which the claim marks them served
// (sqlClaimServed), after every owner served before. A shared counter, not
// a clock, so that masters whose clocks differ agree on the order.
func placedOwners(placed []store.Placement) []string {
	var order []string
	for i := len(placed) - 1; i >= 0; i-- {
		if o := placed[i].Job.Owner; !slices.Contains(order, o) {
			order = append(order, o)
		}
	}
	slices.Reverse(order)
	return order
}

// HeldBy implements store.Store. It walks the running jobs on the
// (status, seq) index: they are bounded by the fleet's slots.
func (s *Store) HeldBy(ctx context.Context, master string) (map[string]int, error) {
	held, err := byKey[int](s.db.Query(ctx, `SELECT id, attempts FROM jobs
	WHERE status = 'running' AND master = $1`, master))
	if err != nil {
		return nil, errorf("postgres: HeldBy: %w", err)
	}
	return held, nil
}

// RunningOn implements store.Store, walking the running jobs as HeldBy.
func (s *Store) RunningOn(ctx context.Context, w store.WorkerRef) (map[string]int, error) {
	on, err := byKey[int](s.db.Query(ctx, `SELECT id, attempts FROM jobs
	WHERE status = 'running' AND worker = $1 AND worker_identity = $2`, w.Name, w.Identity))
	if err != nil {
		return nil, errorf("postgres: RunningOn: %w", err)
	}
	return on, nil
}

// RenewLeases implements store.Store: one statement, the workers passed as
// two arrays, so no batch of workers is too large for the parameters.
func (s *Store) RenewLeases(ctx context.Context, master string, workers []store.WorkerRef, until time.Time) (int, error) {
	if master == "" || until.IsZero() {
		return 0, errors.New("postgres: RenewLeases: master and until are required")
	}
	for _, w := range workers {
		if err := checkWorker(w); err != nil {
			return 0, errorf("postgres: RenewLeases: %w", err)
		}
	}
	if len(workers) == 0 {
		return 0, nil
	}
	names := make([]string, len(workers))
	idents := make([]string, len(workers))
	for i, w := range workers {
		names[i], idents[i] = w.Name, w.Identity
	}
	tag, err := s.db.Exec(ctx, sqlRenew, columns.Nanos(until), master, names, idents)
	if err != nil {
		return 0, errorf("postgres: RenewLeases: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// RescueExpired implements store.Store: the expired attempts are locked
// first (SKIP LOCKED: a racing rescue takes the others, and each attempt
// comes back from exactly one), then their owners' counters, then they
// are given back in one UPDATE.
func (s *Store) RescueExpired(ctx context.Context, now time.Time, reason string, limit int) ([]*store.Job, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	var jobs []*store.Job
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		jobs = []*store.Job{}
		rows, err := tx.Query(ctx, sqlExpired, columns.Nanos(now), limit)
		if err != nil {
			return err
		}
		var (
			seqs   []int64
			owners []string
		)
		for rows.Next() {
			var (
				seq   int64
				owner string
			)
			if err := rows.Scan(&seq, &owner); err != nil {
				rows.Close()
				return err
			}
			seqs = append(seqs, seq)
			if !slices.Contains(owners, owner) {
				owners = append(owners, owner)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(seqs) == 0 {
			return nil
		}
		if err := lockOwners(ctx, tx, owners); err != nil {
			return err
		}
		jobs, err = scanJobs(tx.Query(ctx, sqlRescue, reason, columns.Nanos(now), seqs))
		return err
	})
	if err != nil {
		return nil, errorf("postgres: RescueExpired: %w", err)
	}
	return jobs, nil
}
