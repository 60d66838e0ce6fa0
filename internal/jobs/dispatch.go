package jobs

import (
	"context"
	"fmt"

	"github.com/grappe/grappe/internal/store"
)

// Dispatch claims queued jobs for the workers this master holds and sends
// them their attempts: one store transaction per batch (ClaimJobs), then
// one message per job. It returns how many jobs it started. A job whose
// worker's link is gone by the time it is sent is given back at once,
// uncounted.
func (c *Core) Dispatch(ctx context.Context) (int, error) {
	c.dispatchMu.Lock()
	defer c.dispatchMu.Unlock()
	started := 0
	for {
		n, full, err := c.claimBatch(ctx)
		started += n
		// A full batch may leave more to claim; a partial one has taken
		// all the workers could.
		if err != nil || !full {
			return started, err
		}
	}
}

// claimBatch claims one batch of jobs and assigns them; full reports a
// batch of ClaimBatch claims.
func (c *Core) claimBatch(ctx context.Context) (started int, full bool, err error) {
	p := c.links.Placer()
	defer p.Done()
	if p.Free() == 0 {
		return 0, false, nil
	}
	now := c.now()
	claims, err := c.store.ClaimJobs(ctx, store.ClaimRequest{
		Master: c.cfg.MasterID, Placer: p, Limit: c.cfg.ClaimBatch,
		At: now, LeaseUntil: now.Add(c.cfg.LeaseTTL),
	})
	if err != nil {
		return 0, false, fmt.Errorf("jobs: dispatch: %w", err)
	}
	for _, cl := range claims {
		w := cl.Worker
		if err := c.links.Assign(ctx, w, cl.Job); err != nil {
			c.log.Info("worker left before the job started", "job", cl.Job.ID, "worker", w.Name, "err", err)
			_ = c.Release(ctx, w, cl.Job.ID, cl.Job.Attempts, Release{
				Reason: fmt.Sprintf("worker %s left before the job started", w.Name),
			})
			continue
		}
		started++
		c.publish(cl.Job)
	}
	return started, len(claims) >= c.cfg.ClaimBatch, nil
}

// WithoutDispatch runs fn while no dispatch is between a claim and the
// Assigns of what it claimed: a link settling a (re)connecting worker's
// attempts against the store reads them knowing that none is on its way.
func (c *Core) WithoutDispatch(fn func()) {
	c.dispatchMu.Lock()
	defer c.dispatchMu.Unlock()
	fn()
}

// Heartbeat records what a worker held here reported (its row, with
// LastHeartbeat the time it arrived); the next Flush writes it and renews
// the leases of its attempts. It never waits on the store or on dispatch.
func (c *Core) Heartbeat(w *store.Worker) {
	row := *w
	row.Master = c.cfg.MasterID
	c.mu.Lock()
	c.beats[w.Name] = &row
	c.mu.Unlock()
}

// Flush writes the workers heard from since the last Flush in one batch,
// and renews the leases of the attempts held by those that are not lost,
// in another: two store writes however many workers beat.
func (c *Core) Flush(ctx context.Context) error {
	c.mu.Lock()
	rows := make([]*store.Worker, 0, len(c.beats))
	for _, w := range c.beats {
		rows = append(rows, w)
	}
	clear(c.beats)
	c.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	var live []store.WorkerRef
	for _, w := range rows {
		if w.Status != store.WorkerLost && w.Identity != "" {
			live = append(live, store.WorkerRef{Name: w.Name, Identity: w.Identity})
		}
	}
	if len(live) > 0 {
		if _, err := c.store.RenewLeases(ctx, c.cfg.MasterID, live, c.now().Add(c.cfg.LeaseTTL)); err != nil {
			return fmt.Errorf("jobs: renew leases: %w", err)
		}
	}
	if err := c.store.UpsertWorkers(ctx, rows); err != nil {
		return fmt.Errorf("jobs: write workers: %w", err)
	}
	return nil
}

// AttemptRef names one attempt of one job.
type AttemptRef struct {
	JobID   string
	Attempt int
}

// Reattach takes the attempts a worker that (re)connected here says it is
// still running. Those it still holds in the store are its again: their
// leases are renewed and now held by this master, so nothing is rerun.
// The others (finished, cancelled, rescued and claimed elsewhere while it
// was away) are returned: the worker must drop them.
func (c *Core) Reattach(ctx context.Context, w store.WorkerRef, running []AttemptRef) (drop []AttemptRef, err error) {
	if len(running) == 0 {
		return nil, nil
	}
	if _, err := c.store.RenewLeases(ctx, c.cfg.MasterID, []store.WorkerRef{w}, c.now().Add(c.cfg.LeaseTTL)); err != nil {
		return nil, fmt.Errorf("jobs: reattach: %w", err)
	}
	for _, a := range running {
		j, err := c.store.GetJob(ctx, a.JobID)
		if err != nil || !holds(j, w, a.Attempt) {
			drop = append(drop, a)
		}
	}
	return drop, nil
}

// holds reports whether j runs attempt n on w.
func holds(j *store.Job, w store.WorkerRef, n int) bool {
	return j.Status == store.StatusRunning && j.Attempts == n && j.Worker == w.Name && j.WorkerIdentity == w.Identity
}
