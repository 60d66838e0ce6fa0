package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/grappe/grappe/internal/store"
)

// Submission is a job to queue. Request is the canonical job spec as the
// store keeps it (validated by the caller, once, with internal/jobspec);
// the other fields are what the store indexes and the claims match on.
type Submission struct {
	Owner          string
	Language       string
	Version        string // requested version constraint, "" for any
	Labels         map[string]string
	Priority       int
	MaxAttempts    int // 0: the configured default
	Request        []byte
	IdempotencyKey string // "" for none
	// Interactive: the job waits for its client's attach (StartAttached)
	// and has one attempt.
	Interactive bool
	// CallbackURL, if set, is where the finished job is sent, in
	// CallbackFormat (the callback package's): its outbox row is
	// created with the job.
	CallbackURL, CallbackFormat string
}

// Submit stores a queued job and returns it; the job is committed before
// Submit returns. A submission retried with the same IdempotencyKey
// returns the first job. The owner's queued-job quota is the store's
// (rate_limited when full), so it holds across masters.
func (c *Core) Submit(ctx context.Context, s Submission) (*store.Job, error) {
	switch {
	case s.Owner == "":
		return nil, &Error{Code: CodeInvalid, Field: "owner", Message: "a job needs an owner"}
	case s.Language == "":
		return nil, &Error{Code: CodeInvalid, Field: "language", Message: "a job needs a language"}
	case s.MaxAttempts < 0:
		return nil, &Error{Code: CodeInvalid, Field: "max_attempts", Message: "must not be negative"}
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = c.cfg.MaxAttempts
	}
	id := c.cfg.NewID()
	if s.Interactive {
		s.Labels = maps.Clone(s.Labels)
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[AttachLabel] = id
		s.MaxAttempts = 1
	}
	j := &store.Job{
		ID: id, Owner: s.Owner, Language: s.Language, Version: s.Version,
		Status: store.StatusQueued, MaxAttempts: s.MaxAttempts, Priority: s.Priority,
		Labels: s.Labels, CreatedAt: c.now(), Request: s.Request, IdempotencyKey: s.IdempotencyKey,
	}
	var err error
	if s.CallbackURL == "" {
		err = c.store.CreateJob(ctx, j, c.cfg.MaxQueuedPerUser)
	} else {
		err = c.store.CreateJobs(ctx, &store.NewJobs{Jobs: []*store.Job{j}, Callbacks: []*store.Callback{{
			Kind: store.CallbackJob, Target: j.ID, Owner: j.Owner, URL: s.CallbackURL, Format: s.CallbackFormat, CreatedAt: j.CreatedAt,
		}}}, c.cfg.MaxQueuedPerUser)
	}
	switch {
	case errors.Is(err, store.ErrQuota):
		return nil, c.quotaError()
	case err != nil && s.IdempotencyKey != "" && errors.Is(err, store.ErrConflict):
		// A retry of a submission already accepted: the unique key
		// refused the second row. Trying the insert first saves a read
		// on every submission.
		first, gerr := c.store.JobByIdempotencyKey(ctx, s.Owner, s.IdempotencyKey)
		if gerr != nil {
			return nil, fmt.Errorf("jobs: submit: %w", errors.Join(err, gerr))
		}
		return first, nil
	case err != nil:
		return nil, fmt.Errorf("jobs: submit: %w", err)
	}
	c.publish(j)
	c.Kick()
	return j, nil
}

func (c *Core) quotaError() *Error {
	return &Error{Code: CodeRateLimited, RetryAfter: 5,
		Message: fmt.Sprintf("%d jobs of yours are already waiting (the limit); retry when some have run", c.cfg.MaxQueuedPerUser)}
}

// Cancel cancels a queued or running job on behalf of by (recorded in the
// job's error) and returns the job as stored after. A finished job is
// returned as it is, with no error: cancelling it is a no-op. The master
// holding the worker's link tells the worker at once; another master's
// worker learns it from its master, which finds its attempt finished.
func (c *Core) Cancel(ctx context.Context, id, by string) (*store.Job, error) {
	f := store.Finish{Status: store.StatusCancelled, Error: "cancelled by " + by}
	// Each round is a compare-and-set against the state just read; a
	// conflict means the job moved (claimed, requeued, finished): look
	// again. A job moves a bounded number of times, so this ends.
	for range 16 {
		j, err := c.store.GetJob(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, &Error{Code: CodeNotFound, Message: "no such job"}
		}
		if err != nil {
			return nil, fmt.Errorf("jobs: cancel: %w", err)
		}
		f.At = c.now()
		switch j.Status {
		case store.StatusQueued:
			err = c.store.FinishQueued(ctx, id, f)
			if err == nil {
				j, err = c.store.GetJob(ctx, id)
				if err != nil {
					return nil, fmt.Errorf("jobs: cancel: %w", err)
				}
				c.publish(j)
				return j, nil
			}
		case store.StatusRunning:
			w := store.WorkerRef{Name: j.Worker, Identity: j.WorkerIdentity}
			var done *store.Job
			done, err = c.store.FinishAttempt(ctx, id, j.Attempts, w, f)
			if err == nil {
				// A dispatch that claimed the job before this commit
				// hands it to its worker first (dispatchMu), so that
				// the Cancel follows the Assign on the worker's link.
				c.dispatchMu.Lock()
				c.dispatchMu.Unlock() //nolint:staticcheck // an empty critical section: a barrier
				c.links.Cancel(w, id, j.Attempts, f.Error)
				c.publish(done)
				c.Kick() // a slot is free
				return done, nil
			}
		default:
			return j, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("jobs: cancel: %w", err)
		}
	}
	return nil, &Error{Code: CodeUnavailable, RetryAfter: 1, Message: "the job is changing state; try again"}
}
