package master

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/workerlink"
)

// workerLink is a worker's live link as the master uses it
// (*workerlink.Link; fakes in tests).
type workerLink interface {
	// Send queues a message, waiting for room; TrySend does not wait.
	Send(*clusterpb.MasterMessage)
	TrySend(*clusterpb.MasterMessage) bool
	Close()
	// Silent is how long the link has waited for the worker's next
	// message (0 while it handles one).
	Silent(now time.Time) time.Duration
}

var _ workerLink = (*workerlink.Link)(nil)

// linkHub is the master as its workers' links see it (workerlink.Hub).
type linkHub struct{ m *Master }

var _ workerlink.Hub = linkHub{}

func (h linkHub) Join(ctx context.Context, p workerlink.Peer, req *clusterpb.JoinRequest) (*clusterpb.JoinResponse, error) {
	return h.m.join(ctx, p, req)
}

func (h linkHub) Authorize(ctx context.Context, p workerlink.Peer, hello *clusterpb.Hello) (store.WorkerRef, error) {
	return h.m.authorizeWorker(ctx, p, hello)
}

func (h linkHub) Attach(ctx context.Context, hello *clusterpb.Hello, ref store.WorkerRef, l *workerlink.Link, addr string) []*clusterpb.AttemptRef {
	abandon := h.m.attach(ctx, hello, ref, l, addr)
	h.m.kick()
	return abandon
}

func (h linkHub) Detach(name string, l *workerlink.Link) { h.m.unregister(name, l) }

func (h linkHub) Heartbeat(name string, l *workerlink.Link, hb *clusterpb.Heartbeat) {
	h.m.heartbeat(name, l, hb)
}

func (h linkHub) Output(ref store.WorkerRef, o *clusterpb.Output)     { h.m.output(ref, o) }
func (h linkHub) Stage(ref store.WorkerRef, st *clusterpb.Stage)      { h.m.stage(ref, st) }
func (h linkHub) Accepted(ref store.WorkerRef, a *clusterpb.Accepted) { h.m.accepted(ref, a) }

func (h linkHub) Result(ctx context.Context, ref store.WorkerRef, r *clusterpb.Result) bool {
	return h.m.recordResult(ctx, ref, r)
}

func (h linkHub) ResultComing(name string, l *workerlink.Link, a *clusterpb.AttemptRef) {
	h.m.resultProgress(name, l, a)
}

func (h linkHub) Release(ctx context.Context, ref store.WorkerRef, r *clusterpb.Release) {
	h.m.release(ctx, ref, r)
}

// resultProgress notes that a result is coming: the worker is alive
// (its heartbeats wait in the stream behind the pieces, so a big result
// must not get it declared lost), and a result announced in a hello
// (finished) gets more time while its pieces keep coming.
func (m *Master) resultProgress(name string, sess workerLink, a *clusterpb.AttemptRef) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.workers[name]; w != nil && w.session == sess {
		w.lastBeat = now
	}
	if a == nil {
		return
	}
	if lj := m.jobs[a.JobId]; lj != nil && lj.attempt == int(a.Attempt) && !lj.resultBy.IsZero() {
		lj.resultBy = now.Add(m.cfg.ResultGrace)
	}
}

// unregister detaches a link that ended. The worker keeps its attempts
// until it reconnects or its heartbeat timeout declares it lost.
func (m *Master) unregister(name string, sess workerLink) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.workers[name]; w != nil && w.session == sess {
		w.session = nil
		m.reindex(w)
		m.markRow(name)
	}
}

func (m *Master) heartbeat(name string, sess workerLink, hb *clusterpb.Heartbeat) {
	m.mu.Lock()
	w := m.workers[name]
	if w == nil || w.session != sess {
		m.mu.Unlock()
		return
	}
	w.lastBeat = time.Now()
	w.sched.CPUPercent, w.sched.MemoryPercent = hb.CpuPercent, hb.MemoryPercent
	wasDraining, wasUnhealthy := w.selfDrain, w.unhealthy
	w.selfDrain = hb.Draining
	w.setHealth(hb.Health)
	w.setStatus()
	healthChanged := w.unhealthy != wasUnhealthy
	if hb.LanguagesChanged {
		w.languages, w.sched.Languages = languageSets(hb.Languages)
		w.setTesting(hb.Testing, time.Now())
	} else if w.sched.Testing != nil && time.Since(w.connectedAt) >= maxSelfTesting {
		w.sched.Testing = nil // it has tested for longer than any self-test takes
	}
	m.markRow(name)
	queued := m.backlog.Load()
	dropped := w.notListed(hb.Running, w.lastBeat, m.cfg.WorkerTimeout)
	if hb.LanguagesChanged {
		m.putIndexed(w)
	} else {
		m.reindex(w)
	}
	ref := w.ref()
	m.mu.Unlock()
	if healthChanged {
		m.log.Warn("worker health changed", "worker", name, "unhealthy", hb.Health.GetUnhealthy(),
			"infra_failures", hb.Health.GetInfraFailures(), "reason", hb.Health.GetReason())
	}
	for id, n := range dropped {
		m.log.Warn("worker no longer holds an attempt; requeueing it", "worker", name, "job", id, "attempt", n)
		m.requeue(context.Background(), id, n, ref, requeueCause{reason: fmt.Sprintf("worker %s no longer ran it", name)})
	}
	if queued || wasDraining != hb.Draining || healthChanged || hb.LanguagesChanged {
		m.kick()
	}
}

// output relays a worker's live output to the job's watchers, if the
// worker holds that attempt. Checked in memory: output is the hot path.
func (m *Master) output(w store.WorkerRef, o *clusterpb.Output) {
	if o.Attempt == nil {
		return
	}
	id, n := o.Attempt.JobId, int(o.Attempt.Attempt)
	if !m.checkHolds(w, "output", id, n) {
		return
	}
	m.broker.output(id, o.Attempt.Attempt, o.Stream, o.Data, o.Offset)
	if s := m.attached.get(id); s != nil {
		s.Output(o.Stream, o.Data)
	}
}

// accepted checks a worker's acknowledgement of an assignment.
func (m *Master) accepted(w store.WorkerRef, a *clusterpb.Accepted) {
	if a.Attempt != nil {
		m.checkHolds(w, "accepted", a.Attempt.JobId, int(a.Attempt.Attempt))
	}
}

// resultCommitTimeout bounds the commit of a result that arrived, which
// outlives the link it came by.
const resultCommitTimeout = 10 * time.Second

// recordResult stores worker w's result for (job, attempt) exactly once,
// and only if w holds that attempt: the store's compare-and-set is on the
// worker and its identity too. It reports whether the worker may forget
// the result: true when it was recorded, stale or refused, false when the
// store failed and it must be resent.
func (m *Master) recordResult(ctx context.Context, w store.WorkerRef, r *clusterpb.Result) bool {
	return m.record(ctx, w, r, time.Now())
}

// record is recordResult of a result that arrived at arrived (its
// FinishedAt). A result the store failed to record is kept and recorded
// again by the sweep (unrecorded.go).
func (m *Master) record(ctx context.Context, w store.WorkerRef, r *clusterpb.Result, arrived time.Time) bool {
	if r.Attempt == nil {
		return true
	}
	id, n := r.Attempt.JobId, int(r.Attempt.Attempt)
	if m.assignedElsewhere(w, id, n) {
		m.refuse(w, "result", id, n)
		return true
	}
	f, err := finishFromResult(r)
	if err != nil {
		m.log.Error("unreadable result", "job", id, "worker", w.Name, "err", err)
		f = store.Finish{Status: store.StatusFailed, Error: "the worker sent an unreadable result"}
	}
	// The worker's slot is free as soon as its result arrives: hand it the
	// next job while this result is being committed, not after.
	m.mu.Lock()
	we := m.workers[w.Name]
	if we != nil && we.identity == w.Identity && we.attempts[id] == n {
		delete(we.attempts, id)
		m.reindex(we)
	}
	m.recording[id] = n
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if m.recording[id] == n {
			delete(m.recording, id)
		}
		m.mu.Unlock()
	}()
	m.kick()
	// The result is here: its commit does not depend on the link. Under
	// the link's context, a worker killed just after sending it cancels
	// the statement in flight, whose outcome is then unknown here: a
	// commit that landed reported as failed (no end published, memory
	// left behind), or a result lost with the worker that would resend it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resultCommitTimeout)
	defer cancel()
	final, err := m.core.Finish(fctx, w, id, n, jobs.Outcome{
		Status: f.Status, Verdict: f.Verdict, Error: f.Error, Version: f.Version, Result: f.Result, At: arrived,
	})
	switch {
	case err == nil:
		m.mu.Lock()
		if we != nil && we.identity == w.Identity {
			we.jobsDone++
			we.releases = nil // it runs what it is given
			if f.Status == store.StatusFailed {
				we.failures.failed(f.Error, arrived)
			}
		}
		m.mu.Unlock()
		m.log.Debug("result recorded", "job", id, "attempt", n, "worker", w.Name, "status", f.Status, "verdict", f.Verdict)
		m.observeResult(final.Language, f, r)
		return true
	case errors.Is(err, jobs.ErrStale):
		m.log.Debug("stale or duplicate result ignored", "job", id, "attempt", n, "worker", w.Name)
		return true
	default:
		m.logStoreErr("record result", err, "job", id)
		m.unrecorded.keep(w, r, arrived)
		return false
	}
}

// release re-queues an attempt its worker handed back unfinished. A plain
// release (the worker is shutting down) does not count against the job's
// attempts; one for a failure of the worker's own machinery does. A
// worker that keeps giving jobs back is drained (noteRelease).
func (m *Master) release(ctx context.Context, w store.WorkerRef, r *clusterpb.Release) {
	if r.Attempt == nil {
		return
	}
	id, n := r.Attempt.JobId, int(r.Attempt.Attempt)
	if !m.checkHolds(w, "release", id, n) {
		return
	}
	m.mu.Lock()
	if we := m.workers[w.Name]; we != nil && we.attempts[id] == n {
		delete(we.attempts, id)
		if r.Infrastructure {
			we.failures.gaveBack(r.Reason, time.Now())
		}
		m.reindex(we)
	}
	m.mu.Unlock()
	if !r.Infrastructure {
		// First, so that a worker drained now is not given the job back.
		m.noteRelease(w)
	}
	m.requeue(ctx, id, n, w, requeueCause{reason: r.Reason, released: !r.Infrastructure, infrastructure: r.Infrastructure})
}

// languageSets converts announced languages for the API and the scheduler.
func languageSets(ls []*clusterpb.Language) ([]api.WorkerLanguage, map[string][]string) {
	langs := make([]api.WorkerLanguage, 0, len(ls))
	byName := map[string][]string{}
	for _, l := range ls {
		langs = append(langs, api.WorkerLanguage{Name: l.Name, Version: l.Version})
		byName[l.Name] = append(byName[l.Name], l.Version)
	}
	sort.Slice(langs, func(i, j int) bool { return langs[i].Name < langs[j].Name })
	return langs, byName
}
