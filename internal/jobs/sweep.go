package jobs

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/grappe/grappe/internal/store"
)

// sweepBatch bounds one store call of a sweep.
const sweepBatch = 256

// ReasonLost is the error of an attempt whose worker went silent.
const ReasonLost = "worker lost"

// Sweep does what must happen with time: attempts whose lease expired
// (their worker went silent, or the master holding it died) go back to the
// queue or fail, exactly once whichever master sweeps; and queued jobs that
// no live worker of the cluster can run fail once they have waited
// PlacementTimeout. Any master may sweep; issue 13 elects one.
func (c *Core) Sweep(ctx context.Context) error {
	c.sweepMu.Lock()
	defer c.sweepMu.Unlock()
	now := c.now()
	for {
		rescued, err := c.store.RescueExpired(ctx, now, ReasonLost, sweepBatch)
		if err != nil {
			return fmt.Errorf("jobs: sweep: %w", err)
		}
		for _, j := range rescued {
			c.log.Info("attempt rescued", "job", j.ID, "attempt", j.Attempts, "worker", j.Worker, "status", j.Status)
			c.publish(j)
		}
		if len(rescued) > 0 {
			c.Kick()
		}
		if len(rescued) < sweepBatch {
			break
		}
	}
	// One page of the jobs waiting past their timeout per sweep, from
	// where the last sweep stopped: a long queue of jobs that merely wait
	// for a slot costs each sweep one bounded read, and a job nobody can
	// run behind them is still reached.
	waiting, err := c.store.QueuedBefore(ctx, now.Add(-c.cfg.PlacementTimeout), c.sweepAfter, sweepBatch)
	if err != nil {
		return fmt.Errorf("jobs: sweep: %w", err)
	}
	if len(waiting) < sweepBatch {
		c.sweepAfter = 0
	} else {
		c.sweepAfter = waiting[len(waiting)-1].Seq
	}
	if len(waiting) == 0 {
		return nil
	}
	workers, err := c.store.ListWorkers(ctx)
	if err != nil {
		return fmt.Errorf("jobs: sweep: %w", err)
	}
	var live []store.Offer
	for _, w := range workers {
		if w.Status != store.WorkerLost {
			live = append(live, store.Offer{Languages: w.Languages, Labels: w.Labels})
		}
	}
	for _, j := range waiting {
		if slices.ContainsFunc(live, func(o store.Offer) bool { return o.Fits(j) }) {
			continue // someone can run it: it waits for a slot
		}
		f := store.Finish{
			Status: store.StatusFailed, At: now,
			Error: fmt.Sprintf("no connected worker runs %s (waited %s)", describe(j), c.cfg.PlacementTimeout),
		}
		if err := c.store.FinishQueued(ctx, j.ID, f); err != nil {
			continue // claimed or cancelled meanwhile
		}
		if done, err := c.store.GetJob(ctx, j.ID); err == nil {
			c.publish(done)
		}
	}
	return nil
}

// describe names what a job asks for: "python 3.11 with labels gpu=1".
func describe(j *store.Job) string {
	what := j.Language
	if j.Version != "" {
		what += " " + j.Version
	}
	if len(j.Labels) > 0 {
		var ls []string
		for _, k := range slices.Sorted(maps.Keys(j.Labels)) {
			ls = append(ls, k+"="+j.Labels[k])
		}
		what += " with labels " + strings.Join(ls, ",")
	}
	return what
}
