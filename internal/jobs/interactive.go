package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/grappe/grappe/internal/jobspec"
	"github.com/grappe/grappe/internal/store"
)

// Interactive jobs. Their stdin is a person typing into a stream held by
// one master (the attach), and that master alone can relay it to a
// worker: so the job is started only by the master its client attached
// to, on a worker linked to that same master, never by the queue's
// claims. The store marks it with a label no worker offers (AttachLabel,
// reserved by jobspec), so that ClaimJobs, which places a job only on an
// offer with all its labels, passes it by on every master; the attaching
// master starts it itself (StartAttached). A job nobody attaches to, or
// that finds no free worker, fails at its placement timeout like any job
// nobody can run. Its input cannot be replayed, so it has one attempt and
// is never put back in the queue: an attempt interrupted (a worker lost
// or leaving) fails the job.

// AttachLabel is the store's mark of an interactive job; its value is the
// job's id, so that no worker's labels can ever match it.
const AttachLabel = jobspec.ReservedLabelPrefix + "attach"

// IsInteractive reports whether j is an interactive job.
func IsInteractive(j *store.Job) bool { return j.Labels[AttachLabel] != "" }

// ErrNotWaiting is StartAttached's answer for a job that is not waiting
// for its attach: running, finished, or not interactive.
var ErrNotWaiting = &Error{Code: CodeConflict, Message: "the job is not an interactive job waiting for its client"}

// StartAttached starts interactive job id on the first worker held here
// that runs it and has a free slot (Links.Placer, the best one), under a
// lease held by this master (store.ClaimJob: a claim of one named job),
// and returns it running. It returns nil, nil
// when no such worker is free now: the caller tries again when a slot
// frees. ErrNotWaiting when the job is not queued and interactive, or
// ended here (its worker left as it was sent).
func (c *Core) StartAttached(ctx context.Context, id string) (*store.Job, error) {
	c.dispatchMu.Lock() // the offers must not be spent twice
	defer c.dispatchMu.Unlock()
	j, err := c.store.GetJob(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, NotFound
	case err != nil:
		return nil, fmt.Errorf("jobs: start attached: %w", err)
	case j.Status != store.StatusQueued || !IsInteractive(j):
		return nil, ErrNotWaiting
	}
	plain := *j // the job as a worker sees it: without its mark
	plain.Labels = maps.Clone(j.Labels)
	delete(plain.Labels, AttachLabel)
	// The slot taken stays held until Assign records the attempt; Done
	// frees it on every way out before that.
	placer := c.links.Placer()
	defer placer.Done()
	w, found := placer.Take(&plain)
	if !found {
		return nil, nil
	}
	now := c.now()
	j, err = c.store.ClaimJob(ctx, id, c.cfg.MasterID, w, now, now.Add(c.cfg.LeaseTTL))
	switch {
	case errors.Is(err, store.ErrConflict):
		return nil, ErrNotWaiting // cancelled, failed or started meanwhile
	case err != nil:
		return nil, fmt.Errorf("jobs: start attached: %w", err)
	}
	if err := c.links.Assign(ctx, w, j); err != nil {
		// Given back, which fails it: its client may have typed already.
		c.log.Info("worker left before the job started", "job", id, "worker", w.Name, "err", err)
		_ = c.Release(ctx, w, id, j.Attempts, Release{Reason: fmt.Sprintf("worker %s left before the job started", w.Name)})
		return nil, ErrNotWaiting
	}
	c.publish(j)
	return j, nil
}

// Abandon fails interactive job id, still queued, because its client
// left before it started (reason says so). A job that started meanwhile
// is the caller's to cancel: ErrNotWaiting.
func (c *Core) Abandon(ctx context.Context, id, reason string) error {
	err := c.store.FinishQueued(ctx, id, store.Finish{Status: store.StatusFailed, Error: reason, At: c.now()})
	switch {
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
		return ErrNotWaiting
	case err != nil:
		return fmt.Errorf("jobs: abandon: %w", err)
	}
	if j, err := c.store.GetJob(ctx, id); err == nil {
		c.publish(j)
	}
	return nil
}

// interrupted is the error of an interactive job whose attempt was given
// back: it is not run again.
func interrupted(reason string) string {
	return fmt.Sprintf("the interactive run was interrupted (%s); it is not run again: its input is gone", reason)
}
