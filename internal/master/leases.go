package master

import (
	"context"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/store"
)

// Leases. Every running attempt this master's workers hold carries a
// lease in the store, renewed in one statement per flush of the workers
// table (twice per heartbeat interval, however many workers and jobs) for
// the workers heard from since the last one, to WorkerTimeout from the
// flush. A worker that falls silent is not renewed, and the sweep's rescue
// gives its attempts back, once, whichever master sweeps; so does the
// death of the master that held them. A worker that reconnects in time,
// to any master, keeps them (attach.go).

// rescueLimit bounds the attempts one sweep gives back.
const rescueLimit = 256

// rescueReason is the error a job rescued from an expired lease records:
// no master heard from its worker in time.
const rescueReason = "worker lost"

// leaseFor is how long a renewal keeps an attempt: the worker timeout.
func (m *Master) leaseFor() time.Duration {
	return m.cfg.WorkerTimeout
}

// renewLeases extends the leases of the attempts held by this master's
// workers heard from since the last renewal. Called by the workers-table
// flush, from one goroutine.
func (m *Master) renewLeases(ctx context.Context) {
	now := time.Now()
	m.mu.Lock()
	refs := make([]store.WorkerRef, 0, len(m.workers))
	for _, w := range m.workers {
		if w.session != nil && w.status != api.WorkerLost && w.identity != "" && !w.lastBeat.Before(m.renewedAt) {
			refs = append(refs, w.ref())
		}
	}
	m.mu.Unlock()
	m.renewedAt = now
	if len(refs) == 0 {
		return
	}
	_, err := m.store.RenewLeases(ctx, m.cfg.MasterID, refs, now.Add(m.leaseFor()).UTC())
	switch {
	case err == nil:
		m.leaseStoreOK(time.Now())
	case ctx.Err() == nil:
		m.leaseStoreFailed(time.Now())
		m.logStoreErr("renew leases", err)
	}
}

// extendRecovered gives the running attempts recovered at start
// RecoveryGrace for their workers to reconnect and re-announce them.
func (m *Master) extendRecovered(ctx context.Context, running []*store.Job, now time.Time) error {
	seen := map[store.WorkerRef]bool{}
	var refs []store.WorkerRef
	for _, sj := range running {
		ref := store.WorkerRef{Name: sj.Worker, Identity: sj.WorkerIdentity}
		if sj.Status != store.StatusRunning || sj.Master != m.cfg.MasterID || ref.Name == "" || ref.Identity == "" || seen[ref] {
			continue
		}
		seen[ref] = true
		refs = append(refs, ref)
	}
	if len(refs) == 0 {
		return nil
	}
	until := now.Add(m.cfg.RecoveryGrace).UTC()
	_, err := m.store.RenewLeases(ctx, m.cfg.MasterID, refs, until)
	return err
}

// rescueExpired gives back the attempts whose lease expired and brings
// this master's memory in line: a rescued job it holds goes back to its
// queue, or ends if it ran out of attempts.
//
// Nothing is rescued from a failure of the store until a lease period
// after it is back: leases that ran out meanwhile may have done so for
// want of the store, not of their workers (in an outage of the database
// no master renews any), and the first sweep after its return would give
// back the attempts of live workers, whose results are then refused and
// the jobs run again. In that period the masters holding live workers
// renew their leases; those of dead workers stay expired, and are
// rescued after it. Meanwhile the sweep still calls the store, with a
// cut-off no lease precedes, to see it come back.
func (m *Master) rescueExpired(ctx context.Context, now time.Time) {
	cutoff := now
	if m.leaseStoreRecovering(now) {
		cutoff = time.Unix(0, 1)
	}
	rescued, err := m.store.RescueExpired(ctx, cutoff.UTC(), rescueReason, rescueLimit)
	if err != nil {
		if ctx.Err() == nil {
			m.leaseStoreFailed(now)
			m.logStoreErr("rescue expired leases", err)
		}
		return
	}
	m.leaseStoreOK(now)
	for _, sj := range rescued {
		m.log.Warn("lease expired", "job", sj.ID, "attempt", sj.Attempts, "worker", sj.Worker, "status", sj.Status)
		if sj.Status != store.StatusQueued {
			m.observeFinished(sj.Language, sj.Status, "")
		}
		events{m}.Publish(jobs.Event{Job: sj}) // memory and subscribers in line
	}
}

// leaseStoreFailed notes that the lease machinery could not reach the
// store at t.
func (m *Master) leaseStoreFailed(t time.Time) {
	m.leaseStoreFailedAt.Store(t.UnixNano())
	m.leaseStoreBackAt.Store(0)
}

// leaseStoreOK notes that it could at t: the store is back, if it failed.
func (m *Master) leaseStoreOK(t time.Time) {
	if m.leaseStoreFailedAt.Load() != 0 {
		m.leaseStoreBackAt.CompareAndSwap(0, t.UnixNano())
	}
}

// leaseStoreRecovering reports whether the store failed and is not back
// yet, or came back less than a lease period before now.
func (m *Master) leaseStoreRecovering(now time.Time) bool {
	if m.leaseStoreFailedAt.Load() == 0 {
		return false
	}
	back := m.leaseStoreBackAt.Load()
	return back == 0 || now.Sub(time.Unix(0, back)) < m.leaseFor()
}
