package master

import (
	"context"
	"errors"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/store"
)

// The master's side of the job core (internal/jobs): the core owns the
// lifecycle (submit, claim, cancel, finish, release) over the store; the
// master gives it the workers it holds (links) and hears of every change
// (events), to keep its cache and its subscribers in line with the store.

// errWorkerGone: the worker an attempt was claimed for left before it
// could be told (the core gives the attempt back, uncounted).
var errWorkerGone = errors.New("master: the worker left before the job started")

// links are the workers this master holds, as the core sees them.
type links struct{ m *Master }

var _ jobs.Links = links{}

// Placer implements jobs.Links: the master's index of its workers, under
// its lock (placer.go).
func (l links) Placer() jobs.Placer {
	l.m.admission.batchStarts(time.Now())
	return placer{l.m}
}

// Assign implements jobs.Links: the attempt enters memory and its Assign
// is queued on the worker's stream under m.mu, before a cancel can find
// it, so that a Cancel always follows its Assign. A stored request that no
// longer reads (a catalogue change) fails its job here.
func (l links) Assign(ctx context.Context, ref store.WorkerRef, j *store.Job) error {
	m := l.m
	m.mu.Lock()
	lj := m.jobs[j.ID]
	m.mu.Unlock()
	if lj == nil {
		var err error
		if lj, err = m.liveFromStore(j); err != nil {
			m.failUnreadable(ctx, j, err)
			return nil
		}
	}
	n := j.Attempts
	m.mu.Lock()
	lj.attempt, lj.worker, lj.identity = n, ref.Name, ref.Identity
	lj.resultBy = time.Time{}
	m.jobs[j.ID] = lj
	w := m.workers[ref.Name]
	if w == nil || w.session == nil || w.identity != ref.Identity || w.status == api.WorkerLost {
		m.mu.Unlock()
		return errWorkerGone
	}
	w.attempts[j.ID] = n
	m.index.Release(w.name) // the slot the claim held is the attempt's now
	m.reindex(w)
	var late workerLink
	if !w.session.TrySend(assignMsg(lj, n)) {
		late = w.session // a stream too far behind to take it now gets it just after
	}
	m.mu.Unlock()
	if late != nil {
		late.Send(assignMsg(lj, n))
	}
	wait := time.Since(j.QueuedAt)
	m.metrics.started(lj.language, wait)
	m.stats.started(wait)
	return nil
}

// Cancel implements jobs.Links: the core recorded attempt n of job id
// cancelled; the worker, if this master holds it, is told to stop.
func (l links) Cancel(ref store.WorkerRef, id string, n int, reason string) bool {
	m := l.m
	m.mu.Lock()
	w := m.workers[ref.Name]
	var sess workerLink
	if w != nil && w.identity == ref.Identity && w.attempts[id] == n {
		delete(w.attempts, id)
		m.reindex(w)
		sess = w.session
	}
	m.mu.Unlock()
	if sess == nil {
		return false
	}
	sess.Send(cancelMsg(id, n, reason))
	m.kick() // a slot is free
	return true
}

// failUnreadable fails a claimed job whose stored request no longer reads.
func (m *Master) failUnreadable(ctx context.Context, j *store.Job, cause error) {
	m.log.Error("unreadable job in store; failing it", "job", j.ID, "err", cause)
	f := store.Finish{Status: store.StatusFailed, Error: "the master could not read the stored job", At: time.Now().UTC()}
	ref := store.WorkerRef{Name: j.Worker, Identity: j.WorkerIdentity}
	done, err := m.store.FinishAttempt(ctx, j.ID, j.Attempts, ref, f)
	if err != nil {
		if !errors.Is(err, store.ErrConflict) {
			m.log.Error("fail unreadable job", "job", j.ID, "err", err)
		}
		return
	}
	m.observeFinished(j.Language, store.StatusFailed, "")
	m.publishEnd(j.ID, done)
}

// events hears of every change the core makes and brings the master's
// cache and subscribers in line: a job back in the queue is no longer any
// worker's here; a finished one leaves memory and ends its subscriptions.
type events struct{ m *Master }

var _ jobs.Publisher = events{}

// Publish implements jobs.Publisher.
func (e events) Publish(ev jobs.Event) {
	m, j := e.m, ev.Job
	switch j.Status {
	case store.StatusQueued:
		m.mu.Lock()
		if lj := m.jobs[j.ID]; lj != nil && lj.worker != "" && lj.attempt <= j.Attempts {
			if w := m.workers[lj.worker]; w != nil && w.attempts[j.ID] == lj.attempt {
				delete(w.attempts, j.ID)
				m.reindex(w)
			}
			lj.worker, lj.identity = "", ""
			lj.resultBy = time.Time{}
			lj.queuedAt = time.Now()
		}
		m.mu.Unlock()
		if j.Attempts > 0 { // back in the queue: its old attempt's output is over
			m.broker.forget(j.ID)
			m.backlog.Store(true)
			m.kick()
		}
		m.publishJob(j)
	case store.StatusRunning:
		m.publishJob(j)
	default:
		m.mu.Lock()
		if lj := m.jobs[j.ID]; lj != nil && lj.attempt <= j.Attempts {
			if w := m.workers[lj.worker]; w != nil && w.attempts[j.ID] == lj.attempt {
				delete(w.attempts, j.ID)
				m.reindex(w)
			}
			delete(m.jobs, j.ID)
		}
		m.mu.Unlock()
		m.publishEnd(j.ID, j)
	}
}

// publishJob sends a job's new state, as the core stored it, to its
// subscribers.
func (m *Master) publishJob(sj *store.Job) {
	if !m.broker.hasSubscribers(sj.ID) {
		return
	}
	if j, err := toAPI(sj, false); err == nil {
		m.broker.publish(sj.ID, api.Event{Type: "state", Job: j})
	}
}

func assignMsg(lj *liveJob, n int) *clusterpb.MasterMessage {
	return &clusterpb.MasterMessage{Msg: &clusterpb.MasterMessage_Assign{Assign: &clusterpb.Assign{
		Attempt: &clusterpb.AttemptRef{JobId: lj.id, Attempt: int32(n)},
		Spec:    lj.spec,
	}}}
}
