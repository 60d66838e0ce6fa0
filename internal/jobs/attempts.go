package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// Outcome is what a worker reports at the end of an attempt.
type Outcome struct {
	Status  string // done or failed
	Verdict string
	Error   string
	Version string // toolchain version, if known
	Result  []byte // the result document as stored
	// At is when the result arrived (the job's FinishedAt); zero: now.
	// The link stamps it before it frees the worker's slot, so that the
	// next attempt there never starts before this one finished.
	At time.Time
}

// Finish records the outcome of attempt n of job id, reported by worker w.
// It is a compare-and-set on (job, attempt, worker, identity): a late or
// forged report gets ErrStale and is dropped. It returns the job as
// stored.
func (c *Core) Finish(ctx context.Context, w store.WorkerRef, id string, n int, o Outcome) (*store.Job, error) {
	if o.Status != store.StatusDone && o.Status != store.StatusFailed {
		return nil, &Error{Code: CodeInvalid, Field: "status", Message: fmt.Sprintf("%q is not an outcome", o.Status)}
	}
	at := o.At.UTC()
	if o.At.IsZero() {
		at = c.now()
	}
	j, err := c.store.FinishAttempt(ctx, id, n, w, store.Finish{
		Status: o.Status, Verdict: o.Verdict, Error: o.Error, Version: o.Version, Result: o.Result, At: at,
	})
	switch {
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
		return nil, ErrStale
	case err != nil:
		return nil, fmt.Errorf("jobs: finish: %w", err)
	}
	c.publish(j)
	c.Kick() // a slot is free
	return j, nil
}

// Release says why an attempt goes back to the queue.
type Release struct {
	Reason string // recorded in the job's error while it waits
	// Infrastructure: the worker's own machinery failed (a broken
	// sandbox). The attempt counts, and a job that runs out of attempts
	// this way fails with InfrastructureGaveUp's plain sentence.
	Infrastructure bool
	// Counted: the attempt counts against the job's attempts (a lost
	// worker). Otherwise it is a release, given back unrun (a worker
	// shutting down), which does not count up to MaxReleasedAttempts.
	Counted bool
}

// Release gives attempt n of job id, held by w, back to the queue, or
// fails the job when that was its last counted attempt. ErrStale when w
// no longer holds it.
func (c *Core) Release(ctx context.Context, w store.WorkerRef, id string, n int, r Release) error {
	j, err := c.store.GetJob(ctx, id)
	if err != nil || !holds(j, w, n) {
		return ErrStale
	}
	released, msg := GiveBack(n, j.Released, j.MaxAttempts, r)
	if IsInteractive(j) {
		msg = interrupted(r.Reason)
	}
	now := c.now()
	if msg != "" {
		done, err := c.store.FinishAttempt(ctx, id, n, w, store.Finish{Status: store.StatusFailed, Error: msg, At: now})
		switch {
		case errors.Is(err, store.ErrConflict):
			return ErrStale
		case err != nil:
			return fmt.Errorf("jobs: release: %w", err)
		}
		c.publish(done)
		return nil
	}
	err = c.store.RequeueAttempt(ctx, id, n, w, store.Requeue{Reason: r.Reason, Released: released, At: now})
	switch {
	case errors.Is(err, store.ErrConflict):
		return ErrStale
	case err != nil:
		return fmt.Errorf("jobs: release: %w", err)
	}
	if j, err := c.store.GetJob(ctx, id); err == nil {
		c.publish(j)
	}
	c.Kick()
	return nil
}

// GiveBack is the rule for attempt n given back (r), of a job that had
// released attempts given back uncounted and may use maxAttempts counted
// ones: whether this one goes uncounted (a plain release, up to
// MaxReleasedAttempts per job), and, when it was the job's last counted
// attempt, the error the job fails with (empty: it goes back to the
// queue). The master's worker links and the core apply this one rule.
func GiveBack(n, released, maxAttempts int, r Release) (uncounted bool, fail string) {
	uncounted = !r.Counted && !r.Infrastructure && released < MaxReleasedAttempts
	counted := n - released // the attempts that count, this one included
	if uncounted {
		counted--
	}
	if counted < maxAttempts {
		return uncounted, ""
	}
	if r.Infrastructure {
		return false, InfrastructureGaveUp(counted)
	}
	return false, fmt.Sprintf("%s; gave up after %d attempts", r.Reason, n)
}

// InfrastructureGaveUp is the error of a job whose attempts all met a
// broken sandbox: plain, for the person who submitted it.
func InfrastructureGaveUp(attempts int) string {
	return fmt.Sprintf("grappe could not run this job: the workers' sandbox failed on %d attempts", attempts)
}
