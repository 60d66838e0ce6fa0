package master

import (
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/scheduler"
	"github.com/grappe/grappe/internal/store"
)

// Placement. The master keeps its workers in a scheduler.Index (m.index,
// under m.mu), updated at every change of what placement sees of one of
// them: its link, its status, its attempts, its load. A claim then finds
// each job's worker in the index (placer), in time that does not grow
// with the fleet, taking m.mu once per job and never for a pass over the
// workers: heartbeats, results and submissions do not wait behind a
// dispatch round.

// placer is the index as a claim uses it (jobs.Placer): the slots it
// takes are held until Assign records their attempts (links.Assign
// releases the hold as the attempt takes the slot), and Done gives back
// the rest.
type placer struct{ m *Master }

var _ jobs.Placer = placer{}

func (p placer) Free() int {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	return p.m.index.Free()
}

func (p placer) Languages() []string {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	return p.m.index.Languages()
}

func (p placer) Fits(j *store.Job) bool {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	return p.m.index.Fits(requirements(j))
}

func (p placer) Take(j *store.Job) (store.WorkerRef, bool) {
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	name, ok := m.index.Take(requirements(j))
	if !ok {
		return store.WorkerRef{}, false
	}
	return m.workers[name].ref(), true
}

func (p placer) Release(w store.WorkerRef) {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	p.m.index.Release(w.Name)
}

func (p placer) Done() {
	p.m.mu.Lock()
	p.m.index.ReleaseAll()
	p.m.mu.Unlock()
	p.m.admission.batchEnds()
}

func requirements(j *store.Job) scheduler.Requirements {
	return scheduler.Requirements{Language: j.Language, Version: j.Version, Labels: j.Labels}
}

// reindex brings the index in line with w's state: its attempts, whether
// it takes work, its load. Called with m.mu held after every change to
// them.
func (m *Master) reindex(w *workerEntry) {
	m.index.Update(w.name, len(w.attempts), w.available(), w.sched.CPUPercent, w.sched.MemoryPercent)
}

// putIndexed is reindex for a worker that is new to the index or
// announced other languages, labels or slots. Called with m.mu held.
func (m *Master) putIndexed(w *workerEntry) {
	sw := w.sched
	sw.Running, sw.Available = len(w.attempts), w.available()
	m.index.Put(sw)
}
