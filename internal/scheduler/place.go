package scheduler

import (
	"math/rand/v2"
	"strings"
	"time"
)

// Worker is a worker as the scheduler sees it.
type Worker struct {
	ID string
	// Languages maps a language name to the versions the worker runs.
	Languages map[string][]string
	Labels    map[string]string
	Slots     int
	Running   int
	// CPUPercent and MemoryPercent are the machine's load, 0–100.
	CPUPercent    float64
	MemoryPercent float64
	// Available is false for a worker that is draining, lost or not yet
	// welcomed: it keeps its running jobs but takes no new ones.
	Available bool
	// Testing maps a language name to the versions whose self-test the
	// worker is still running: no job is placed for them, but a job that
	// only they could run waits for them past its placement timeout.
	Testing map[string][]string
}

// Capable reports whether w can run jobs with these requirements at all,
// whatever its current load.
func (w *Worker) Capable(r Requirements) bool {
	versions, ok := w.Languages[r.Language]
	if !ok {
		return false
	}
	if r.Version != "" && !anyVersionMatches(versions, r.Version) {
		return false
	}
	for k, v := range r.Labels {
		if w.Labels[k] != v {
			return false
		}
	}
	return true
}

// VersionMatches reports whether an installed version satisfies a requested
// one: equal, or the request is a prefix ending at a dot ("3.11" matches
// "3.11.2", not "3.110").
func VersionMatches(installed, requested string) bool {
	if requested == "" || installed == requested {
		return true
	}
	return strings.HasPrefix(installed, requested) && installed[len(requested)] == '.'
}

func anyVersionMatches(installed []string, requested string) bool {
	for _, v := range installed {
		if VersionMatches(v, requested) {
			return true
		}
	}
	return false
}

// Options tune placement.
type Options struct {
	// MaxCPUPercent and MaxMemoryPercent skip workers above them; zero
	// means no threshold.
	MaxCPUPercent    float64
	MaxMemoryPercent float64
	// Rand breaks ties; nil uses the global source.
	Rand *rand.Rand
}

// Placement assigns a job to a worker.
type Placement struct {
	Job    *Job
	Worker *Worker
}

func (o *Options) eligible(w *Worker, r Requirements) bool {
	if !w.Available || w.Running >= w.Slots {
		return false
	}
	if o.MaxCPUPercent > 0 && w.CPUPercent > o.MaxCPUPercent {
		return false
	}
	if o.MaxMemoryPercent > 0 && w.MemoryPercent > o.MaxMemoryPercent {
		return false
	}
	return w.Capable(r)
}

// score is a worker's load, lower is better: mostly the share of its slots
// in use, which the master knows exactly, then its measured CPU and memory,
// which lag by a heartbeat.
func score(w *Worker) float64 {
	return 0.6*float64(w.Running)/float64(w.Slots) + 0.3*w.CPUPercent/100 + 0.1*w.MemoryPercent/100
}

// scoreEpsilon makes scores that differ by less than measurement noise a
// tie, so equal workers share the work instead of the first one winning.
const scoreEpsilon = 0.02

// pick returns the least loaded eligible worker, ties at random.
func (o *Options) pick(workers []*Worker, r Requirements) *Worker {
	var best *Worker
	var bestScore float64
	ties := 0
	for _, w := range workers {
		if !o.eligible(w, r) {
			continue
		}
		s := score(w)
		switch {
		case best == nil || s < bestScore-scoreEpsilon:
			best, bestScore, ties = w, s, 1
		case s <= bestScore+scoreEpsilon:
			// Reservoir sampling keeps each tied worker equally likely.
			ties++
			if o.intN(ties) == 0 {
				best = w
			}
			if s < bestScore {
				bestScore = s
			}
		}
	}
	return best
}

func (o *Options) intN(n int) int {
	if o.Rand != nil {
		return o.Rand.IntN(n)
	}
	return rand.IntN(n)
}

// Schedule places as many queued jobs as the workers have room for and
// removes them from the queue. It updates Running on the workers it uses,
// so the caller's snapshot stays consistent for the next call.
func (q *Queue) Schedule(workers []*Worker, opts Options) []Placement {
	if len(q.jobs) == 0 || !anyFreeSlot(workers) {
		return nil
	}
	var out []Placement
	idle := 0 // owners in a row that could place nothing
	for len(q.ring) > 0 && idle < len(q.ring) {
		if q.next >= len(q.ring) {
			q.next = 0
		}
		o := q.owners[q.ring[q.next]]
		j, w := q.bestPlaceable(o, workers, &opts)
		if j == nil {
			idle++
			q.next++
			continue
		}
		idle = 0
		w.Running++
		// Advance past this owner before unlink, which shifts the cursor
		// back if the owner leaves the ring.
		q.next++
		q.unlink(j)
		out = append(out, Placement{Job: j, Worker: w})
		if !anyFreeSlot(workers) {
			break
		}
	}
	return out
}

// bestPlaceable returns the owner's best job that some worker can take now.
func (q *Queue) bestPlaceable(o *owner, workers []*Worker, opts *Options) (*Job, *Worker) {
	var bestJob *Job
	var bestWorker *Worker
	for _, g := range o.groups {
		head := g.jobs[0]
		if bestJob != nil && !before(head, bestJob) {
			continue
		}
		if w := opts.pick(workers, head.Req); w != nil {
			bestJob, bestWorker = head, w
		}
	}
	return bestJob, bestWorker
}

func anyFreeSlot(workers []*Worker) bool {
	for _, w := range workers {
		if w.Available && w.Running < w.Slots {
			return true
		}
	}
	return false
}

// Unplaceable removes and returns the jobs that have waited longer than
// timeout while no worker at all (busy or not) could run them: their
// language, version or labels are offered by no connected worker.
func (q *Queue) Unplaceable(workers []*Worker, now time.Time, timeout time.Duration) []*Job {
	var out []*Job
	for _, o := range q.owners {
		for _, g := range o.groups {
			head := g.jobs[0]
			if anyCapable(workers, head.Req) {
				continue
			}
			for _, j := range g.jobs {
				if now.Sub(j.Since) >= timeout {
					out = append(out, j)
				}
			}
		}
	}
	for _, j := range out {
		q.unlink(j)
	}
	return out
}

// anyCapable reports whether a worker runs jobs with these requirements,
// or may soon: one still self-testing their language counts, so that a
// worker that has just started (or a job that waited for one) does not
// see its jobs fail a moment before it announces their language.
func anyCapable(workers []*Worker, r Requirements) bool {
	for _, w := range workers {
		if w.Capable(r) || (&Worker{Languages: w.Testing, Labels: w.Labels}).Capable(r) {
			return true
		}
	}
	return false
}
