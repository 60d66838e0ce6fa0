package master

import (
	"context"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/store"
)

// Leases (issue 12, first step of the master on the core). Every running
// attempt this master's workers hold carries a lease in the store,
// renewed in one statement per flush of the workers table (twice per
// heartbeat interval, however many workers and jobs), and the sweep gives
// back, once, the attempts whose lease expired: those of a master that
// died and never came back, or of a worker nobody renews.
//
// The lease is longer than the worker timeout, so that while this master
// lives its own loss detection (and, after a restart, the adoption grace)
// still decides first, with the reasons the API has always shown; the
// lease is the backstop the store keeps for the cluster. The in-memory
// paths go once dispatch claims through the store (jobs.Core).

// rescueLimit bounds the attempts one sweep gives back.
const rescueLimit = 256

// rescueReason is the error a job rescued from an expired lease records.
const rescueReason = "its lease expired: no master renewed it"

// leaseFor is how long a renewal keeps an attempt: twice the worker
// timeout, so that a worker that falls silent is declared lost by this
// master before its lease runs out.
func (m *Master) leaseFor() time.Duration {
	return 2 * m.cfg.WorkerTimeout
}

// renewLeases extends the leases of the attempts held by this master's
// connected workers. Called by the workers-table flush.
func (m *Master) renewLeases(ctx context.Context) {
	m.mu.Lock()
	refs := make([]store.WorkerRef, 0, len(m.workers))
	for _, w := range m.workers {
		if w.session != nil && w.status != api.WorkerLost && w.identity != "" {
			refs = append(refs, w.ref())
		}
	}
	m.mu.Unlock()
	if len(refs) == 0 {
		return
	}
	until := time.Now().Add(m.leaseFor()).UTC()
	if _, err := m.store.RenewLeases(ctx, m.cfg.MasterID, refs, until); err != nil && ctx.Err() == nil {
		m.log.Error("renew leases", "err", err)
	}
}

// extendRecovered gives the running attempts recovered at start the
// adoption grace plus a lease: their workers reconnect and re-announce
// them, or the adoption grace requeues them, before the store would.
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
	until := now.Add(m.cfg.RecoveryGrace + m.leaseFor()).UTC()
	_, err := m.store.RenewLeases(ctx, m.cfg.MasterID, refs, until)
	return err
}

// rescueExpired gives back the attempts whose lease expired and brings
// this master's memory in line: a rescued job it holds goes back to its
// queue, or ends if it ran out of attempts.
func (m *Master) rescueExpired(ctx context.Context, now time.Time) {
	rescued, err := m.store.RescueExpired(ctx, now.UTC(), rescueReason, rescueLimit)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("rescue expired leases", "err", err)
		}
		return
	}
	for _, sj := range rescued {
		m.mu.Lock()
		lj := m.jobs[sj.ID]
		if lj != nil && lj.attempt == sj.Attempts {
			for _, w := range m.workers {
				if w.attempts[sj.ID] == sj.Attempts {
					delete(w.attempts, sj.ID)
				}
			}
			lj.worker, lj.identity = "", ""
			lj.adoptBy, lj.resultBy = time.Time{}, time.Time{}
			if sj.Status == store.StatusQueued {
				lj.queuedAt = now
			} else {
				delete(m.jobs, sj.ID)
			}
		}
		m.mu.Unlock()
		m.log.Warn("lease expired", "job", sj.ID, "attempt", sj.Attempts, "worker", sj.Worker, "status", sj.Status)
		if sj.Status == store.StatusQueued {
			m.broker.forget(sj.ID)
			m.publishState(ctx, sj.ID)
			m.backlog.Store(true)
			m.kick()
			continue
		}
		m.observeFinished(sj.Language, sj.Status, "")
		m.publishEnd(sj.ID, sj)
	}
}
