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

// Offer is the free capacity of one worker a master holds.
type Offer struct {
	Worker WorkerRef
	// Languages maps a language name to the versions the worker runs.
	Languages map[string][]string
	Labels    map[string]string
	// Free is how many more attempts the worker takes now.
	Free int
	// Slots is how many attempts it runs at once (0: as many as Free);
	// placement spreads jobs by the share of its slots in use.
	Slots int
}

// Fits reports whether the offer's worker can run j at all: it runs j's
// language, a version that matches j's (VersionMatches), and has every
// label j asks for.
func (o *Offer) Fits(j *Job) bool {
	versions, ok := o.Languages[j.Language]
	if !ok {
		return false
	}
	if j.Version != "" && !slices.ContainsFunc(versions, func(v string) bool { return VersionMatches(v, j.Version) }) {
		return false
	}
	for k, v := range j.Labels {
		if o.Labels[k] != v {
			return false
		}
	}
	return true
}

// VersionMatches reports whether an installed version satisfies a requested
// one: equal, or the request is a prefix ending at a dot ("3.11" matches
// "3.11.2", not "3.110"). The scheduler applies the same rule.
func VersionMatches(installed, requested string) bool {
	if requested == "" || installed == requested {
		return true
	}
	return len(installed) > len(requested) && installed[:len(requested)] == requested && installed[len(requested)] == '.'
}

// ClaimRequest asks ClaimJobs for work for the workers a master holds.
//
// Order: fair across owners, then by priority and age inside an owner
// (FairOrder). Placement: each job in that order goes to the first offer
// that fits it and has a free slot (Place), so the master lists its offers
// best first (least loaded). A job no offer fits is left queued and does
// not stop the jobs behind it (a backend reads a bounded number of such
// jobs past; those nobody runs fail at their placement timeout).
type ClaimRequest struct {
	// Master is the claiming master's id, recorded in Job.Master.
	Master string
	Offers []Offer
	// Limit bounds the claims (0: as many as the offers' free slots).
	Limit int
	// At is the attempt's start time (Job.StartedAt on a first attempt).
	At time.Time
	// LeaseUntil is the new attempts' lease (Job.LeaseUntil); required.
	LeaseUntil time.Time
}

// Claim is one job ClaimJobs started.
type Claim struct {
	Job   *Job // as stored after the claim: running
	Offer int  // index in ClaimRequest.Offers of the worker it was given
}

// Languages returns the languages some offer with a free slot runs: the
// only ones worth reading candidates for.
func (r *ClaimRequest) Languages() []string {
	var out []string
	for _, o := range r.Offers {
		if o.Free <= 0 {
			continue
		}
		for l := range o.Languages {
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Capacity is the most jobs the request can take: its Limit, bounded by
// the offers' free slots.
func (r *ClaimRequest) Capacity() int {
	free := 0
	for _, o := range r.Offers {
		free += max(o.Free, 0)
	}
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

// Placement is one job of FairOrder's output given to one offer.
type Placement struct {
	Job   *Job
	Offer int
}

// Place gives each job, in order, to the offer that fits it, has a free
// slot and has the smallest share of its slots in use (placements so far
// included), ties to the earlier offer (the master lists them best first):
// jobs spread over idle workers before any worker takes a second one. Up
// to r.Capacity() placements; it does not change r.
func Place(r *ClaimRequest, order []*Job) []Placement {
	capacity := r.Capacity()
	free := make([]int, len(r.Offers))
	slots := make([]int, len(r.Offers))
	for i, o := range r.Offers {
		free[i], slots[i] = o.Free, max(o.Slots, o.Free)
	}
	used := func(i int) float64 { return float64(slots[i]-free[i]) / float64(slots[i]) }
	var out []Placement
	for _, j := range order {
		if len(out) >= capacity {
			break
		}
		best := -1
		for i := range r.Offers {
			if free[i] > 0 && (best < 0 || used(i) < used(best)) && r.Offers[i].Fits(j) {
				best = i
			}
		}
		if best >= 0 {
			free[best]--
			out = append(out, Placement{j, best})
		}
	}
	return out
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
// some offer of r fits, through the backend's page reader: capacity jobs,
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
				if len(fit) < capacity && r.fitsSome(j) {
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

// fitsSome reports whether some offer with a free slot fits j.
func (r *ClaimRequest) fitsSome(j *Job) bool {
	for i := range r.Offers {
		if r.Offers[i].Free > 0 && r.Offers[i].Fits(j) {
			return true
		}
	}
	return false
}
