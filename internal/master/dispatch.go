package master

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/scheduler"
	"github.com/grappe/grappe/internal/store"
)

// Dispatch from the store (issue 12). The queue is the store's: the master
// offers the free slots of the workers it holds, least loaded first, and
// the store claims queued jobs for them in one transaction (fair across
// owners, by priority and age inside an owner, spread over the offers),
// starting each attempt under a lease held by this master. Any job queued
// in the database is dispatched, whichever master accepted it, and two
// masters never claim one job.
//
// Only after the claim has committed does the worker hear of its attempt,
// so a result can never arrive for an attempt the store does not know.
// A cancel that commits between the claim's commit and the attempt's
// entry in memory waits for that entry (claimMu), so that its Cancel
// follows the Assign on the worker's stream; a worker that left meanwhile
// gets nothing, and its attempt goes back to the queue uncounted.

// claimBatch bounds the jobs of one claim transaction.
const claimBatch = 128

// kick wakes the dispatcher; it never blocks.
func (m *Master) kick() {
	select {
	case m.kickc <- struct{}{}:
	default:
	}
}

// dispatchLoop dispatches whenever something changes (a job arrives, a
// slot frees, a worker joins) and at least every second, which also picks
// up the jobs other masters queued.
func (m *Master) dispatchLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kickc:
		case <-t.C:
		}
		m.dispatch(ctx)
	}
}

// schedWorkers refreshes and returns the scheduler's view of the workers.
// Called with m.mu held.
func (m *Master) schedWorkers() []*scheduler.Worker {
	ws := m.wsBuf[:0]
	for _, w := range m.workers {
		if w.status == api.WorkerLost {
			continue
		}
		w.sched.Running = len(w.attempts)
		w.sched.Available = w.available()
		ws = append(ws, &w.sched)
	}
	m.wsBuf = ws
	return ws
}

// offers lists the free slots of the workers that take new work, best
// first. Called with m.mu held.
func (m *Master) offers() []store.Offer {
	ranked := scheduler.Rank(m.schedWorkers(), m.schedOpts)
	out := make([]store.Offer, 0, len(ranked))
	for _, sw := range ranked {
		w := m.workers[sw.ID]
		out = append(out, store.Offer{
			Worker: w.ref(), Languages: sw.Languages, Labels: sw.Labels,
			Free: sw.Slots - sw.Running, Slots: sw.Slots,
		})
	}
	return out
}

// dispatch claims jobs for the free slots until the store has no more
// that they fit.
func (m *Master) dispatch(ctx context.Context) {
	for ctx.Err() == nil {
		m.mu.Lock()
		offers := m.offers()
		m.mu.Unlock()
		if len(offers) == 0 {
			m.backlog.Store(true) // nobody to offer: the queue is unknown
			return
		}
		claimed, capacity, err := m.claim(ctx, offers)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Error("claim jobs", "err", err)
			}
			return
		}
		// A round that filled every offer may leave jobs queued; one that
		// did not has taken all the offers could run.
		m.backlog.Store(claimed == capacity)
		if claimed == capacity || claimed < claimBatch {
			return
		}
	}
}

// started is a claimed attempt entered in memory, to announce.
type started struct {
	job  *liveJob
	sess *session // nil when the Assign is already on the stream
	n    int
	wait time.Duration
}

// claim runs one claim transaction and hands the attempts to their
// workers. It returns how many jobs it claimed, and how many it could have.
func (m *Master) claim(ctx context.Context, offers []store.Offer) (claimed, capacity int, err error) {
	m.claimMu.Lock()
	defer m.claimMu.Unlock()
	now := time.Now().UTC()
	req := store.ClaimRequest{
		Master: m.cfg.MasterID, Offers: offers, Limit: claimBatch,
		At: now, LeaseUntil: now.Add(m.leaseFor()),
	}
	capacity = req.Capacity()
	claims, err := m.store.ClaimJobs(ctx, req)
	if err != nil {
		return 0, capacity, err
	}
	jobs := m.liveJobs(ctx, claims)
	var out []started
	var gone []attemptRef
	m.mu.Lock()
	for i, cl := range claims {
		lj, ref, n := jobs[i], offers[cl.Offer].Worker, cl.Job.Attempts
		if lj == nil {
			continue // unreadable: failed by liveJobs
		}
		lj.attempt, lj.worker, lj.identity, lj.released = n, ref.Name, ref.Identity, cl.Job.Released
		lj.resultBy = time.Time{}
		m.jobs[lj.id] = lj
		w := m.workers[ref.Name]
		if w == nil || w.session == nil || w.identity != ref.Identity || w.status == api.WorkerLost {
			gone = append(gone, attemptRef{lj.id, n, ref})
			continue
		}
		w.attempts[lj.id] = n
		s := started{job: lj, n: n, wait: now.Sub(cl.Job.QueuedAt)}
		// Queued under m.mu, before a cancel can find the attempt, so a
		// Cancel always follows its Assign; a stream too far behind to
		// take it now gets it just after.
		select {
		case w.session.send <- assignMsg(lj, n):
		default:
			s.sess = w.session
		}
		out = append(out, s)
	}
	m.mu.Unlock()
	for _, a := range gone {
		m.requeue(ctx, a.id, a.n, a.worker, requeueCause{
			reason: fmt.Sprintf("worker %s left before the job started", a.worker.Name), released: true,
		})
	}
	for _, s := range out {
		if s.sess != nil {
			s.sess.sendMsg(assignMsg(s.job, s.n))
		}
		m.metrics.started(s.job.language, s.wait)
		m.stats.started(s.wait)
		m.publishState(ctx, s.job.id)
	}
	return len(claims), capacity, nil
}

// liveJobs returns the working copy of each claimed job: the one in memory
// (submitted here), or one built from its stored request. A stored
// request that no longer reads (a catalogue change) fails its job; its
// entry is nil.
func (m *Master) liveJobs(ctx context.Context, claims []store.Claim) []*liveJob {
	out := make([]*liveJob, len(claims))
	m.mu.Lock()
	for i, cl := range claims {
		out[i] = m.jobs[cl.Job.ID]
	}
	m.mu.Unlock()
	for i, cl := range claims {
		if out[i] != nil {
			continue
		}
		lj, err := m.liveFromStore(cl.Job)
		if err == nil {
			out[i] = lj
			continue
		}
		m.log.Error("unreadable job in store; failing it", "job", cl.Job.ID, "err", err)
		f := store.Finish{Status: store.StatusFailed, Error: "the master could not read the stored job", At: time.Now().UTC()}
		ref := store.WorkerRef{Name: cl.Job.Worker, Identity: cl.Job.WorkerIdentity}
		if _, err := m.store.FinishAttempt(ctx, cl.Job.ID, cl.Job.Attempts, ref, f); err != nil && !errors.Is(err, store.ErrConflict) {
			m.log.Error("fail unreadable job", "job", cl.Job.ID, "err", err)
		}
		m.observeFinished(cl.Job.Language, store.StatusFailed, "")
		m.publishEnd(cl.Job.ID, nil)
	}
	return out
}

func assignMsg(lj *liveJob, n int) *clusterpb.MasterMessage {
	return &clusterpb.MasterMessage{Msg: &clusterpb.MasterMessage_Assign{Assign: &clusterpb.Assign{
		Attempt: &clusterpb.AttemptRef{JobId: lj.id, Attempt: int32(n)},
		Spec:    lj.spec,
	}}}
}
