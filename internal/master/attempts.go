package master

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/store"
)

// A worker can only report on what it was given: every Accepted, Output,
// Result and Release names an attempt, and is taken only from the worker
// that holds it, under the identity (certificate lineage) it was given the
// attempt under. The store's compare-and-set enforces it for results and
// requeues; the checks here refuse early, in memory, and tell a forgery
// (an attempt that runs elsewhere) from a late message (an attempt taken
// back from this worker), which is normal and only dropped.

// Releases. A worker shutting down gives its running attempts back; that
// must not cost the jobs their attempts, so a plain release is not
// counted. A rogue worker could then hold jobs hostage by taking and
// giving back everything it is given, so:
const (
	// The uncounted releases of one job are bounded by
	// jobs.MaxReleasedAttempts (jobs.GiveBack): past it, a release
	// counts against the job's attempts like a failure.
	// A worker that gives back more than its slots plus releaseAllowance
	// attempts within releaseWindow, without finishing one in between, is
	// drained as an admin would (a shutdown gives back at most its slots).
	releaseAllowance = 3
	releaseWindow    = 10 * time.Minute
)

// Refused messages are audit-logged at most auditBurst per worker at once,
// then one per auditEvery; the lines skipped are counted in the next one.
const (
	auditBurst = 5
	auditEvery = 10 * time.Second
)

// checkHolds reports whether worker w holds attempt n of job id; when it
// does not and the attempt is assigned elsewhere, the message is refused
// in the audit log.
func (m *Master) checkHolds(w store.WorkerRef, what, id string, n int) bool {
	m.mu.Lock()
	we := m.workers[w.Name]
	held := we != nil && we.identity == w.Identity && we.attempts[id] == n
	forged := !held && m.assignedElsewhereLocked(w, id, n)
	m.mu.Unlock()
	if forged {
		m.refuse(w, what, id, n)
	}
	return held
}

// assignedElsewhere reports whether attempt n of job id is not w's and
// never was: it runs on another worker or identity, or was never given.
func (m *Master) assignedElsewhere(w store.WorkerRef, id string, n int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.assignedElsewhereLocked(w, id, n)
}

// assignedElsewhereLocked is assignedElsewhere with m.mu held. A job that is
// no longer live (finished, unknown) has nothing left to protect: the
// store refuses anything late.
func (m *Master) assignedElsewhereLocked(w store.WorkerRef, id string, n int) bool {
	lj := m.jobs[id]
	switch {
	case lj == nil:
		return false
	case n > lj.attempt || n < 1:
		return true
	}
	return n == lj.attempt && lj.worker != "" && (lj.worker != w.Name || lj.identity != w.Identity)
}

// refuse audit-logs a message about an attempt the worker does not hold.
func (m *Master) refuse(w store.WorkerRef, what, id string, n int) {
	ok, skipped := m.refusals.allow(w.Name, time.Now())
	if !ok {
		return
	}
	m.audit.Warn("worker message refused: the attempt is not this worker's",
		"worker", w.Name, "lineage", w.Identity, "message", what, "job", id, "attempt", n, "suppressed", skipped)
}

// noteRelease counts an attempt worker w gave back, and drains the worker
// when it gives back too many without finishing any.
func (m *Master) noteRelease(w store.WorkerRef) {
	now := time.Now()
	m.mu.Lock()
	we := m.workers[w.Name]
	if we == nil || we.identity != w.Identity {
		m.mu.Unlock()
		return
	}
	recent := we.releases[:0]
	for _, t := range we.releases {
		if now.Sub(t) < releaseWindow {
			recent = append(recent, t)
		}
	}
	we.releases = append(recent, now)
	count, limit := len(we.releases), we.sched.Slots+releaseAllowance
	drain := count > limit && !we.adminDrain
	var sess workerLink
	if drain {
		we.adminDrain = true
		we.setStatus()
		m.reindex(we)
		m.markRow(we.name)
		sess = we.session
	}
	m.mu.Unlock()
	if !drain {
		return
	}
	if err := m.store.SetWorkerDrain(context.Background(), w.Name, true); err == nil {
		m.mu.Lock()
		we.rowDrain = true
		m.mu.Unlock()
	}
	reason := fmt.Sprintf("it gave back %d jobs within %s without finishing one", count, releaseWindow)
	m.audit.Warn("worker drained", "worker", w.Name, "lineage", w.Identity, "reason", reason)
	if sess != nil {
		sess.Send(&clusterpb.MasterMessage{Msg: &clusterpb.MasterMessage_Drain{Drain: &clusterpb.Drain{Drain: true, Reason: reason}}})
	}
}

// auditLimiter is a token bucket per worker name for audit lines, so a
// rogue worker cannot flood the log. Its zero value is ready to use.
type auditLimiter struct {
	mu      sync.Mutex
	buckets map[string]*auditBucket
}

type auditBucket struct {
	tokens  float64
	last    time.Time
	skipped int
}

// allow reports whether a line about name may be logged at now, and how
// many were skipped since the last one logged.
func (l *auditLimiter) allow(name string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*auditBucket{}
	}
	b := l.buckets[name]
	if b == nil {
		if len(l.buckets) >= 10000 {
			l.prune(now)
		}
		b = &auditBucket{tokens: auditBurst, last: now}
		l.buckets[name] = b
	}
	b.tokens = min(auditBurst, b.tokens+now.Sub(b.last).Seconds()/auditEvery.Seconds())
	b.last = now
	if b.tokens < 1 {
		b.skipped++
		return false, 0
	}
	b.tokens--
	skipped := b.skipped
	b.skipped = 0
	return true, skipped
}

// prune forgets buckets that are full again, whose state a new bucket
// reproduces (the skipped count of a quiet worker is lost, which is fine).
func (l *auditLimiter) prune(now time.Time) {
	for name, b := range l.buckets {
		if now.Sub(b.last) > auditBurst*auditEvery {
			delete(l.buckets, name)
		}
	}
}
