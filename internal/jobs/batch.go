package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/grappe/grappe/internal/store"
)

// Batch is jobs to queue together, all or none.
type Batch struct {
	Owner string
	Jobs  []Submission // their Owner is the batch's
	// CallbackURL, if set, is where the batch is sent once every job of
	// it is finished.
	CallbackURL string
	// IdempotencyKey, if set, makes the submission safe to retry: the
	// batch's id is derived from it, and a retry finds the first batch.
	IdempotencyKey string
}

// SubmitBatch stores the batch's jobs, the batch and the callbacks in one
// write and returns them: either every job is queued or none is. The
// owner's quota counts them all.
func (c *Core) SubmitBatch(ctx context.Context, b Batch) (*store.Batch, []*store.Job, error) {
	switch {
	case b.Owner == "":
		return nil, nil, &Error{Code: CodeInvalid, Field: "owner", Message: "a batch needs an owner"}
	case len(b.Jobs) == 0:
		return nil, nil, &Error{Code: CodeInvalid, Field: "jobs", Message: "a batch needs at least one job"}
	}
	now := c.now()
	sb := &store.Batch{ID: c.cfg.NewID(), Owner: b.Owner, CreatedAt: now}
	if b.IdempotencyKey != "" {
		sb.ID = batchID(b.Owner, b.IdempotencyKey)
	}
	n := &store.NewJobs{Batch: sb}
	for i, s := range b.Jobs {
		if s.Language == "" {
			return nil, nil, &Error{Code: CodeInvalid, Field: fmt.Sprintf("jobs[%d].language", i), Message: "a job needs a language"}
		}
		if s.MaxAttempts <= 0 {
			s.MaxAttempts = c.cfg.MaxAttempts
		}
		j := &store.Job{
			ID: c.cfg.NewID(), Owner: b.Owner, Language: s.Language, Version: s.Version,
			Status: store.StatusQueued, MaxAttempts: s.MaxAttempts, Priority: s.Priority,
			Labels: s.Labels, CreatedAt: now, Request: s.Request,
		}
		n.Jobs = append(n.Jobs, j)
		if s.CallbackURL != "" {
			n.Callbacks = append(n.Callbacks, &store.Callback{Kind: store.CallbackJob, Target: j.ID, Owner: b.Owner,
				URL: s.CallbackURL, Format: s.CallbackFormat, CreatedAt: now})
		}
	}
	if b.CallbackURL != "" {
		n.Callbacks = append(n.Callbacks, &store.Callback{Kind: store.CallbackBatch, Target: sb.ID, Owner: b.Owner,
			URL: b.CallbackURL, CreatedAt: now})
	}
	err := c.store.CreateJobs(ctx, n, c.cfg.MaxQueuedPerUser)
	if err != nil && b.IdempotencyKey != "" && (errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrQuota)) {
		// A retry: the batch's id, derived from the key, exists (and
		// its own jobs may be what fills the quota now).
		if first, jobs, gerr := c.store.GetBatch(ctx, sb.ID); gerr == nil && first.Owner == b.Owner {
			return first, jobs, nil
		}
	}
	switch {
	case errors.Is(err, store.ErrQuota):
		return nil, nil, c.quotaError()
	case err != nil:
		return nil, nil, fmt.Errorf("jobs: submit batch: %w", err)
	}
	for _, j := range n.Jobs {
		c.publish(j)
	}
	c.Kick()
	return sb, n.Jobs, nil
}

// batchID is the id of owner's batch submitted with key: the same for a
// retry, and not one another owner's key can reach.
func batchID(owner, key string) string {
	sum := sha256.Sum256([]byte("grappe batch\x00" + owner + "\x00" + key))
	return hex.EncodeToString(sum[:16])
}

// CancelBatch cancels every job of the batch still queued or running, on
// behalf of by, and returns the batch and its jobs as stored after. The
// batch must exist (NotFound otherwise); its visibility is the caller's
// to check.
func (c *Core) CancelBatch(ctx context.Context, id, by string) (*store.Batch, []*store.Job, error) {
	b, jobs, err := c.store.GetBatch(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, NotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("jobs: cancel batch: %w", err)
	}
	for i, j := range jobs {
		if j.Status != store.StatusQueued && j.Status != store.StatusRunning {
			continue
		}
		done, err := c.Cancel(ctx, j.ID, by)
		if err != nil {
			return nil, nil, fmt.Errorf("jobs: cancel batch %s: job %s: %w", id, j.ID, err)
		}
		jobs[i] = done
	}
	return b, jobs, nil
}
