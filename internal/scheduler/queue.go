// Package scheduler decides which queued job runs where. It is pure logic
// with no I/O: the master feeds it jobs and a snapshot of its workers and
// applies the placements it returns.
//
// Order: fair between owners (round robin, so one user's ten thousand jobs
// cannot starve another's one), then by priority (higher first) and
// submission order inside an owner. Placement: among the eligible workers
// (they run the language, match the version and labels, are up, have a free
// slot and are under the CPU and memory thresholds) the lowest load score
// wins, ties broken at random.
package scheduler

import (
	"container/heap"
	"sort"
	"strings"
	"time"
)

// Requirements say what a worker must offer to run a job.
type Requirements struct {
	Language string
	Version  string // empty, an exact version, or a prefix ("3.11" matches "3.11.2")
	Labels   map[string]string
}

// key identifies jobs with identical requirements, so an owner's queue is a
// handful of heaps rather than one list scanned job by job.
func (r Requirements) key() string {
	var b strings.Builder
	b.WriteString(r.Language)
	b.WriteByte(0)
	b.WriteString(r.Version)
	keys := make([]string, 0, len(r.Labels))
	for k := range r.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(r.Labels[k])
	}
	return b.String()
}

// Job is a queued job as the scheduler sees it.
type Job struct {
	ID       string
	Owner    string
	Priority int
	// Seq orders jobs of equal priority: lower runs first.
	Seq int64
	Req Requirements
	// Since is when the job (re)entered the queue; the placement timeout
	// counts from it.
	Since time.Time

	index int // in its group's heap
	group *group
}

// group is an owner's jobs that share requirements, best first.
type group struct {
	key   string
	owner *owner
	jobs  jobHeap
}

type owner struct {
	name   string
	groups map[string]*group
	size   int
}

// Queue holds the queued jobs. It is not safe for concurrent use: the master
// owns it under its lock.
type Queue struct {
	jobs   map[string]*Job
	owners map[string]*owner
	ring   []string // owner names in round-robin order
	next   int      // ring index of the owner served next
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	return &Queue{jobs: make(map[string]*Job), owners: make(map[string]*owner)}
}

// Len is the number of queued jobs.
func (q *Queue) Len() int { return len(q.jobs) }

// OwnerLen is the number of jobs an owner has queued.
func (q *Queue) OwnerLen(owner string) int {
	if o := q.owners[owner]; o != nil {
		return o.size
	}
	return 0
}

// Has reports whether the job is queued.
func (q *Queue) Has(id string) bool { _, ok := q.jobs[id]; return ok }

// Push adds a job; a job already queued is left as it is.
func (q *Queue) Push(j *Job) {
	if _, ok := q.jobs[j.ID]; ok {
		return
	}
	o := q.owners[j.Owner]
	if o == nil {
		o = &owner{name: j.Owner, groups: make(map[string]*group)}
		q.owners[j.Owner] = o
		q.ring = append(q.ring, j.Owner)
	}
	k := j.Req.key()
	g := o.groups[k]
	if g == nil {
		g = &group{key: k, owner: o}
		o.groups[k] = g
	}
	j.group = g
	heap.Push(&g.jobs, j)
	o.size++
	q.jobs[j.ID] = j
}

// Remove takes a job out of the queue and reports whether it was there.
func (q *Queue) Remove(id string) bool {
	j, ok := q.jobs[id]
	if !ok {
		return false
	}
	q.unlink(j)
	return true
}

func (q *Queue) unlink(j *Job) {
	g := j.group
	heap.Remove(&g.jobs, j.index)
	delete(q.jobs, j.ID)
	j.group = nil
	o := g.owner
	o.size--
	if len(g.jobs) == 0 {
		delete(o.groups, g.key)
	}
	if o.size == 0 {
		delete(q.owners, o.name)
		for i, name := range q.ring {
			if name == o.name {
				q.ring = append(q.ring[:i], q.ring[i+1:]...)
				if q.next > i {
					q.next--
				}
				break
			}
		}
		if q.next >= len(q.ring) {
			q.next = 0
		}
	}
}

// Position is the job's place in its owner's queue (1 runs next among that
// owner's jobs), or 0 when it is not queued. It costs O(owner's jobs).
func (q *Queue) Position(id string) int {
	j, ok := q.jobs[id]
	if !ok {
		return 0
	}
	pos := 1
	for _, g := range j.group.owner.groups {
		for _, other := range g.jobs {
			if other != j && before(other, j) {
				pos++
			}
		}
	}
	return pos
}

// Jobs returns the queued jobs in no particular order.
func (q *Queue) Jobs() []*Job {
	out := make([]*Job, 0, len(q.jobs))
	for _, j := range q.jobs {
		out = append(out, j)
	}
	return out
}

// before orders jobs inside an owner: higher priority, then older.
func before(a, b *Job) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.Seq < b.Seq
}

type jobHeap []*Job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return before(h[i], h[j]) }
func (h jobHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *jobHeap) Push(x any) {
	j := x.(*Job)
	j.index = len(*h)
	*h = append(*h, j)
}
func (h *jobHeap) Pop() any {
	old := *h
	n := len(old)
	j := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return j
}
