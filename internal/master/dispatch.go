package master

import (
	"context"
	"time"
)

// Dispatch from the store (issue 12). The queue is the store's: the master
// offers the free slots of the workers it holds, least loaded first, and
// the core claims queued jobs for them in one transaction (fair across
// owners, by priority and age inside an owner, spread over the offers),
// starting each attempt under a lease held by this master. Any job queued
// in the database is dispatched, whichever master accepted it, and two
// masters never claim one job.
//
// Only after the claim has committed does the worker hear of its attempt,
// so a result can never arrive for an attempt the store does not know. A
// cancel that commits after a claim waits for the dispatch to have handed
// its attempts over (jobs.Core), so that its Cancel follows the Assign on
// the worker's stream; a worker that left meanwhile gets nothing, and its
// attempt goes back to the queue uncounted.

// claimBatch bounds the jobs of one claim transaction.
const claimBatch = 128

// kick wakes the dispatcher; it never blocks.
func (m *Master) kick() {
	m.admission.wake(time.Now())
	select {
	case m.kickc <- struct{}{}:
	default:
	}
}

// Hunger (several masters on one store that tells of jobs queued, as
// PostgreSQL does): a master whose free slots a dispatch left empty says
// so in the store for hungerTTL, again every hungerRefresh while it
// stays hungry, and only then do the other masters' submissions wake it.
// A master whose slots are full claims as each frees, so under load no
// submission wakes any other master. A job queued just as a master turns
// hungry may miss it (the two commits crossing); the dispatch right after
// the announcement, then the one of every second, find it.
const (
	hungerRefresh = time.Second
	hungerTTL     = 3 * time.Second
)

// hungerer is a store whose submissions wake the other masters only while
// one is hungry (postgres.Store.Hungry).
type hungerer interface {
	Hungry(ctx context.Context, master string, d time.Duration) error
}

// dispatchLoop dispatches whenever something changes (a job arrives, a
// slot frees, a worker joins) and at least every second, which also picks
// up the jobs other masters queued.
func (m *Master) dispatchLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var announced time.Time // the last announcement of hunger
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kickc:
		case <-t.C:
		}
		m.dispatch(ctx)
		if h, ok := m.store.(hungerer); ok && time.Since(announced) >= hungerRefresh && (placer{m}).Free() > 0 {
			if err := h.Hungry(ctx, m.cfg.MasterID, hungerTTL); err != nil {
				if ctx.Err() == nil {
					m.logStoreErr("announce free slots", err)
				}
				continue
			}
			announced = time.Now()
			m.dispatch(ctx) // what was queued as the announcement crossed it
		}
	}
}

// dispatch hands the free slots to the core, which claims the jobs they
// fit (jobs.Core.Dispatch: one transaction per batch) and sends each to
// its worker through links.Assign.
func (m *Master) dispatch(ctx context.Context) {
	started, err := m.core.Dispatch(ctx)
	if err != nil && ctx.Err() == nil {
		m.logStoreErr("dispatch", err)
	}
	// Jobs started: there may be more to claim when a slot frees.
	// None: nothing queued fits the free slots now.
	m.backlog.Store(started > 0)
}
