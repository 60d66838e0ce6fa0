package store

import (
	"cmp"
	"slices"
	"time"
)

// Claims. A master does not keep the queue: it offers the capacity of the
// workers it holds, and the store picks the jobs and starts them in the
// same transaction, so two masters on one database never start one job
// twice and each sees the jobs submitted through the other. The order and
// the placement rules are here, in plain Go, so that every backend applies
// the same ones: a backend only finds the candidates (FairOrder's input)
// and commits the placements (Place's output) under its own locking.

// VersionMatches reports whether an installed version satisfies a requested
// one: equal, or the request is a prefix ending at a dot ("3.11" matches
// "3.11.2", not "3.110"). The scheduler applies the same rule.
func VersionMatches(installed, requested string) bool {
	if requested == "" || installed == requested {
		return true
	}
	return len(installed) > len(requested) && installed[:len(requested)] == requested && installed[len(requested)] == '.'
}

// Placer chooses the worker of each job a claim starts, among the
// workers the claiming master holds: its index of them (the master's
// scheduler.Index), or an OfferList. A claim calls it from the store's
// transaction; what Take holds stays held until the master records the
// attempt, or gives back what the claim did not start (a failed
// transaction gives back its placements at once: Unplace).
type Placer interface {
	// Free is how many more attempts the workers take now.
	Free() int
	// Languages returns, sorted, the languages some worker with a free
	// slot runs. The caller must not modify the slice.
	Languages() []string
	// Fits reports whether some worker with a free slot can run j: its
	// language, a version that matches j's (VersionMatches), and every
	// label j asks for.
	Fits(j *Job) bool
	// Take returns the best worker with a free slot that can run j and
	// holds that slot for j.
	Take(j *Job) (WorkerRef, bool)
	// Release gives back a slot Take held on w.
	Release(w WorkerRef)
}

// ClaimRequest asks ClaimJobs for work for the workers a master holds.
//
// Order: fair across owners, then by priority and age inside an owner
// (FairOrder). Placement: each job in that order goes to the worker the
// Placer takes for it (Place). A job no worker fits is left queued and
// does not stop the jobs behind it (a backend reads a bounded number of
// such jobs past; those nobody runs fail at their placement timeout).
type ClaimRequest struct {
	// Master is the claiming master's id, recorded in Job.Master.
	Master string
	Placer Placer
	// Limit bounds the claims (0: as many as the placer's free slots).
	Limit int
	// At is the attempt's start time (Job.StartedAt on a first attempt).
	At time.Time
	// LeaseUntil is the new attempts' lease (Job.LeaseUntil); required.
	LeaseUntil time.Time
}

// Claim is one job ClaimJobs started.
type Claim struct {
	Job    *Job // as stored after the claim: running
	Worker WorkerRef
}

// Capacity is the most jobs the request can take: its Limit, bounded by
// the placer's free slots.
func (r *ClaimRequest) Capacity() int {
	free := max(r.Placer.Free(), 0)
	if r.Limit > 0 {
		return min(r.Limit, free)
	}
	return free
}

// FairOrder merges each owner's candidates (already in that owner's order:
// priority, then age) into one order fair across owners: an owner with r
// running attempts has its k-th candidate (from 0) at rank r+k, and lower
// ranks come first; at equal ranks the owner served longest ago (the
// lower lastClaim; 0 for never) comes first, then the older job (Seq).
// An owner with 10,000 queued jobs therefore gets one slot in turn with
// an owner who has one, even when every slot frees one at a time (both
// then run nothing at each claim: the round robin is lastClaim's), and an
// owner who already runs much waits for the others to catch up.
func FairOrder(candidates map[string][]*Job, running map[string]int, lastClaim map[string]int64) []*Job {
	type ranked struct {
		job  *Job
		rank int
		last int64
	}
	var all []ranked
	for owner, jobs := range candidates {
		r, last := running[owner], lastClaim[owner]
		for k, j := range jobs {
			all = append(all, ranked{j, r + k, last})
		}
	}
	slices.SortFunc(all, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.last, b.last), cmp.Compare(a.job.Seq, b.job.Seq))
	})
	out := make([]*Job, len(all))
	for i, r := range all {
		out[i] = r.job
	}
	return out
}

// Placement is one job of FairOrder's output given to one worker.
type Placement struct {
	Job    *Job
	Worker WorkerRef
}

// Place gives each job, in order, to the worker the placer takes for it,
// up to r.Capacity() placements. The placer holds their slots: a backend
// whose transaction does not commit them gives them back (Unplace).
func Place(r *ClaimRequest, order []*Job) []Placement {
	capacity := r.Capacity()
	var out []Placement
	for _, j := range order {
		if len(out) >= capacity {
			break
		}
		if w, ok := r.Placer.Take(j); ok {
			out = append(out, Placement{j, w})
		}
	}
	return out
}

// Unplace gives back the slots of placements a claim did not start (its
// transaction failed, or is run again).
func Unplace(r *ClaimRequest, placed []Placement) {
	for _, p := range placed {
		r.Placer.Release(p.Worker)
	}
}

// ClaimScanAhead is how many queued jobs of an owner that no offer fits a
// claim reads past (a version or a label no connected worker has), so that
// they do not hide the owner's jobs behind them. Jobs nobody can run fail
// at their placement timeout and leave the queue.
const ClaimScanAhead = 64

// CandidatePage reads an owner's queued jobs in claim order (priority,
// then age), limit of them from offset on: a backend's candidate query.
type CandidatePage func(owner string, limit, offset int) ([]*Job, error)

// Candidates reads, for every owner with queued jobs, the first ones that
// some worker of r's placer fits, through the backend's page reader: capacity jobs,
// and past them only when some did not fit, up to ClaimScanAhead more.
// The work is by owners and claims, not by the length of the queue. The
// jobs come back with their Owner set.
func Candidates(r *ClaimRequest, owners map[string]int64, capacity int, page CandidatePage) (map[string][]*Job, error) {
	out := make(map[string][]*Job, len(owners))
	for owner := range owners {
		var fit []*Job
		for offset, limit := 0, capacity; len(fit) < capacity && offset < capacity+ClaimScanAhead; offset, limit = offset+limit, ClaimScanAhead {
			jobs, err := page(owner, limit, offset)
			if err != nil {
				return nil, err
			}
			for _, j := range jobs {
				if len(fit) < capacity && r.Placer.Fits(j) {
					j.Owner = owner
					fit = append(fit, j)
				}
			}
			if len(jobs) < limit {
				break // the owner's queue is read to its end
			}
		}
		if len(fit) > 0 {
			out[owner] = fit
		}
	}
	return out, nil
}
