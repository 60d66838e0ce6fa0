package master

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/scheduler"
	"github.com/grappe/grappe/internal/store"
)

// Jobs that wait: the placement timeout, read from the store (the queue is
// the store's, whichever master accepted the job), and the entries of this
// master's cache that other masters made stale.

// sweepPage bounds one store read of a sweep.
const sweepPage = 256

// failUnplaceable fails the queued jobs that have waited longer than the
// placement timeout while no worker of the cluster can run them (their
// language, version or labels). A job some worker could run, busy or
// still self-testing its language, waits on. One page per sweep, from
// where the last one stopped: a long queue of jobs that merely wait for a
// slot costs each sweep one bounded read, and a job nobody can run behind
// them is still reached.
func (m *Master) failUnplaceable(ctx context.Context, now time.Time) {
	// After a start the timeout counts from the start: the workers have
	// not reconnected yet.
	if now.Sub(m.started) < m.cfg.PlacementTimeout {
		return
	}
	waiting, err := m.store.QueuedBefore(ctx, now.Add(-m.cfg.PlacementTimeout).UTC(), m.sweepAfter, sweepPage)
	if err != nil {
		if ctx.Err() == nil {
			m.logStoreErr("read waiting jobs", err)
		}
		return
	}
	if len(waiting) < sweepPage {
		m.sweepAfter = 0
	} else {
		m.sweepAfter = waiting[len(waiting)-1].Seq
	}
	if len(waiting) == 0 {
		return
	}
	workers := m.capableWorkers(ctx)
	for _, j := range waiting {
		req := scheduler.Requirements{Language: j.Language, Version: j.Version, Labels: j.Labels}
		why := fmt.Sprintf("no connected worker runs %s (waited %s)", describe(req), m.cfg.PlacementTimeout)
		if jobs.IsInteractive(j) {
			// Never placeable by a claim (jobs.AttachLabel): it must
			// have started by now.
			why = notStarted(j, m.cfg.PlacementTimeout)
		} else if scheduler.AnyCapable(workers, req) {
			continue
		}
		f := store.Finish{Status: store.StatusFailed, At: now.UTC(), Error: why}
		if err := m.store.FinishQueued(ctx, j.ID, f); err != nil {
			continue // claimed or cancelled meanwhile
		}
		m.mu.Lock()
		delete(m.jobs, j.ID)
		m.mu.Unlock()
		m.observeFinished(j.Language, store.StatusFailed, "")
		m.publishEnd(j.ID, nil)
	}
}

// capableWorkers is every live worker of the cluster as the scheduler
// sees it: this master's connected ones from memory (with the languages
// they still self-test), the others' from the workers table.
func (m *Master) capableWorkers(ctx context.Context) []*scheduler.Worker {
	var out []*scheduler.Worker
	for _, w := range m.otherWorkers(ctx, m.holds) {
		if w.Status == api.WorkerLost {
			continue
		}
		sw := &scheduler.Worker{ID: w.Name, Languages: map[string][]string{}, Labels: w.Labels}
		for _, l := range w.Languages {
			sw.Languages[l.Name] = append(sw.Languages[l.Name], l.Version)
		}
		out = append(out, sw)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.workers {
		if w.session != nil && w.status != api.WorkerLost {
			sw := w.sched // a copy: the maps are replaced, never changed in place
			out = append(out, &sw)
		}
	}
	return out
}

// describe names what a job asks for: "python 3.11 with labels gpu=1".
func describe(r scheduler.Requirements) string {
	what := r.Language
	if r.Version != "" {
		what += " " + r.Version
	}
	for i, k := range slices.Sorted(maps.Keys(r.Labels)) {
		if i == 0 {
			what += " with labels "
		} else {
			what += ","
		}
		what += k + "=" + r.Labels[k]
	}
	return what
}

// staleAfter is how long a queued entry of this master's cache waits
// before the sweep checks that the store still has it queued.
const staleAfter = time.Minute

// dropStale drops the queued entries of this master's cache that another
// master claimed, cancelled or failed (a bounded number per sweep). With
// one master nothing is ever stale: every change goes through here.
func (m *Master) dropStale(ctx context.Context, now time.Time) {
	var check []string
	m.mu.Lock()
	for id, lj := range m.jobs {
		if lj.worker == "" && now.Sub(lj.queuedAt) > staleAfter {
			check = append(check, id)
			lj.queuedAt = now // checked again a minute from now
			if len(check) == 32 {
				break
			}
		}
	}
	m.mu.Unlock()
	for _, id := range check {
		sj, err := m.store.GetJob(ctx, id)
		if err != nil || sj.Status == store.StatusQueued {
			continue
		}
		m.mu.Lock()
		if lj := m.jobs[id]; lj != nil && lj.worker == "" {
			delete(m.jobs, id)
		}
		m.mu.Unlock()
		if sj.Status != store.StatusRunning {
			m.publishEnd(id, sj)
		}
	}
}

// dropReleased stops the attempts this master's workers run that the
// store no longer has it hold: cancelled through another master, or
// rescued there after a lease expired. The worker is told to stop, and
// its slot is free. Only attempts in memory both before and after the
// store read count, so that one claimed or adopted meanwhile is never
// taken for gone (both are recorded in the store before memory).
func (m *Master) dropReleased(ctx context.Context) {
	type held struct {
		worker string
		n      int
	}
	mine := map[string]held{}
	m.mu.Lock()
	for _, w := range m.workers {
		for id, n := range w.attempts {
			mine[id] = held{w.name, n}
		}
	}
	m.mu.Unlock()
	if len(mine) == 0 {
		return
	}
	stored, err := m.store.HeldBy(ctx, m.cfg.MasterID)
	if err != nil {
		if ctx.Err() == nil {
			m.logStoreErr("read held attempts", err)
		}
		return
	}
	for id, h := range mine {
		if stored[id] == h.n {
			continue
		}
		m.mu.Lock()
		w := m.workers[h.worker]
		dropped := w != nil && w.attempts[id] == h.n
		var sess workerLink
		if dropped {
			delete(w.attempts, id)
			m.reindex(w)
			sess = w.session
			if lj := m.jobs[id]; lj != nil && lj.attempt == h.n {
				delete(m.jobs, id)
			}
		}
		m.mu.Unlock()
		if !dropped {
			continue // it ended here meanwhile
		}
		m.log.Info("attempt released elsewhere; stopping it", "job", id, "attempt", h.n, "worker", h.worker)
		if sess != nil {
			sess.Send(cancelMsg(id, h.n, "the job was stopped through another master"))
		}
		if sj, err := m.store.GetJob(ctx, id); err == nil && sj.Status != store.StatusQueued && sj.Status != store.StatusRunning {
			m.publishEnd(id, sj)
		}
		m.kick() // a slot is free
	}
}

// endsPollEvery is how many sweeps apart endFinishedElsewhere reads the
// watched jobs when the store tells of ends as they commit: it covers a
// notification lost, which the store's (re)connection also flags
// (notified.ended). Without notifications it runs at every sweep.
const endsPollEvery = 10

// endFinishedElsewhere ends the subscriptions (SSE streams, ?wait) of the
// jobs another master finished: this master hears only of the ends it
// records. A bounded number per sweep, read from the store; the jobs one
// of this master's workers runs are skipped (it publishes their end
// itself).
func (m *Master) endFinishedElsewhere(ctx context.Context) {
	for _, id := range m.broker.watched(256) {
		m.mu.Lock()
		mine := m.heldHereLocked(id)
		m.mu.Unlock()
		if mine {
			continue
		}
		sj, err := m.store.GetJob(ctx, id)
		if err != nil || sj.Status == store.StatusQueued || sj.Status == store.StatusRunning {
			continue
		}
		m.mu.Lock()
		if cur := m.jobs[id]; cur != nil && !m.heldHereLocked(id) {
			delete(m.jobs, id) // a stale entry: queued, or a lost worker's
		}
		m.mu.Unlock()
		m.publishEnd(id, sj)
	}
}

// heldHereLocked reports whether one of this master's workers holds the
// job's current attempt: its end is then this master's to publish. A
// lost worker's attempts are not (the loss clears them) although the job
// still names it: whichever master sweeps first rescues them, and when
// another does, this one hears of the job only from the store. Called
// with m.mu held.
func (m *Master) heldHereLocked(id string) bool {
	lj := m.jobs[id]
	if lj == nil || lj.worker == "" {
		return false
	}
	w := m.workers[lj.worker]
	return w != nil && w.attempts[id] == lj.attempt
}

// applyDrains applies to this master's workers the drains and undrains
// asked through other masters (their rows' AdminDrain changed since this
// master last read or wrote it).
func (m *Master) applyDrains(ctx context.Context) {
	rows, err := m.store.ListWorkers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.logStoreErr("read the workers table", err)
		}
		return
	}
	type change struct {
		name  string
		sess  workerLink
		drain bool
	}
	var changes []change
	m.mu.Lock()
	for _, r := range rows {
		w := m.workers[r.Name]
		if r.Master != m.cfg.MasterID || w == nil || r.AdminDrain == w.rowDrain {
			continue
		}
		w.rowDrain = r.AdminDrain
		if w.adminDrain == r.AdminDrain {
			continue
		}
		w.adminDrain = r.AdminDrain
		w.setStatus()
		m.reindex(w)
		m.markRow(w.name)
		changes = append(changes, change{w.name, w.session, r.AdminDrain})
	}
	m.mu.Unlock()
	for _, c := range changes {
		m.log.Info("worker drain set through another master", "worker", c.name, "drain", c.drain)
		if c.sess != nil {
			c.sess.Send(&clusterpb.MasterMessage{Msg: &clusterpb.MasterMessage_Drain{Drain: &clusterpb.Drain{Drain: c.drain}}})
		}
	}
	if len(changes) > 0 {
		m.kick()
	}
}
