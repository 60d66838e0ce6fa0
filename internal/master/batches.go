package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/httpapi"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/jobspec"
	"github.com/grappe/grappe/internal/store"
)

// SubmitBatch validates every job of a batch, then queues them all in one
// write (jobs.Core.SubmitBatch), or none: the first refusal names the
// job's place in the batch (jobs.BatchError).
func (m *Master) SubmitBatch(ctx context.Context, p *auth.Principal, subs []httpapi.Submission, callbackURL, key string) (*api.Batch, error) {
	switch {
	case len(subs) == 0:
		return nil, &jobs.Error{Code: jobs.CodeInvalid, Field: "jobs", Message: "a batch needs at least one job"}
	case len(subs) > m.cfg.MaxBatch:
		return nil, &jobs.Error{Code: jobs.CodeInvalid, Field: "jobs",
			Message: fmt.Sprintf("%d jobs: a batch takes at most %d", len(subs), m.cfg.MaxBatch)}
	}
	// The backpressure of single submissions holds for batches too.
	if err := m.admit(ctx); err != nil {
		return nil, err
	}
	// The URLs' names are resolved under one budget, each once: a batch
	// of slow names must not hold the request for each of them.
	checkCtx, cancel := context.WithTimeout(ctx, callbackCheckBudget)
	defer cancel()
	checked := map[string]error{}
	check := func(field, url string) error {
		if err, ok := checked[url]; ok {
			return err
		}
		err := m.checkCallback(checkCtx, field, url)
		checked[url] = err
		return err
	}
	if err := check("callback_url", callbackURL); err != nil {
		return nil, err
	}
	b := jobs.Batch{Owner: p.User, CallbackURL: callbackURL, IdempotencyKey: key}
	specs := make([]*jobspec.Job, len(subs))
	for i, s := range subs {
		v, sub, err := m.prepare(s.Request)
		if err == nil {
			err = check("callback_url", s.Request.CallbackURL)
		}
		if err != nil {
			return nil, &jobs.BatchError{Index: i, Err: err}
		}
		sub.Owner, sub.CallbackFormat = p.User, s.CallbackFormat
		specs[i] = v
		b.Jobs = append(b.Jobs, sub)
	}
	sb, sjs, err := m.core.SubmitBatch(ctx, b)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	for i, sj := range sjs {
		if _, claimed := m.jobs[sj.ID]; !claimed && sj.Attempts == 0 && sj.Status == store.StatusQueued && i < len(specs) {
			lj := newLiveJob(sj, specs[i], subs[i].Request)
			lj.accepted = true
			m.jobs[sj.ID] = lj
		}
	}
	m.mu.Unlock()
	m.backlog.Store(true)
	m.kick()
	for _, v := range specs {
		m.metrics.submitted(v.Lang.Name)
		m.stats.submitted()
	}
	out := batchToAPI(sb, sjs)
	if out.Callback, err = m.callbackOf(ctx, store.CallbackBatch, sb.ID); err != nil {
		return nil, err
	}
	return out, nil
}

// callbackCheckBudget bounds the resolution of a request's callback URLs.
const callbackCheckBudget = 5 * time.Second

// prepare validates and normalizes one submission (req is changed in
// place) and returns its spec and what the core stores. Its callback URL
// is the caller's to check (checkCallback).
func (m *Master) prepare(req *api.JobRequest) (*jobspec.Job, jobs.Submission, error) {
	v, err := m.validate(req)
	if err != nil {
		return nil, jobs.Submission{}, err
	}
	v.Normalize(req)
	if req.MaxAttempts == 0 {
		req.MaxAttempts = m.cfg.MaxAttempts
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, jobs.Submission{}, fmt.Errorf("encode request: %w", err)
	}
	return v, jobs.Submission{
		Language: v.Lang.Name, Version: req.Version, Labels: req.Labels, Priority: req.Priority,
		MaxAttempts: req.MaxAttempts, Request: body, CallbackURL: req.CallbackURL,
		Interactive: req.Interactive,
	}, nil
}

// visibleBatch loads a batch the principal may see: another user's
// answers not found, as jobs do.
func (m *Master) visibleBatch(ctx context.Context, p *auth.Principal, id string) (*store.Batch, []*store.Job, error) {
	if id == "" || len(id) > 64 {
		return nil, nil, jobs.NotFound
	}
	b, sjs, err := m.store.GetBatch(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, jobs.NotFound
	}
	if err != nil {
		return nil, nil, err
	}
	if !p.IsAdmin() && b.Owner != p.User {
		return nil, nil, jobs.NotFound
	}
	return b, sjs, nil
}

// Batch returns a batch with each job's state, the totals and its
// callback.
func (m *Master) Batch(ctx context.Context, p *auth.Principal, id string) (*api.Batch, error) {
	b, sjs, err := m.visibleBatch(ctx, p, id)
	if err != nil {
		return nil, err
	}
	out := batchToAPI(b, sjs)
	if out.Callback, err = m.callbackOf(ctx, store.CallbackBatch, b.ID); err != nil {
		return nil, err
	}
	return out, nil
}

// CancelBatch cancels the jobs of a batch that are not finished.
func (m *Master) CancelBatch(ctx context.Context, p *auth.Principal, id string) (*api.Batch, error) {
	if _, _, err := m.visibleBatch(ctx, p, id); err != nil {
		return nil, err
	}
	b, sjs, err := m.core.CancelBatch(ctx, id, p.User)
	if err != nil {
		return nil, err
	}
	out := batchToAPI(b, sjs)
	if out.Callback, err = m.callbackOf(ctx, store.CallbackBatch, b.ID); err != nil {
		return nil, err
	}
	return out, nil
}

// batchToAPI is the API's view of a batch and its jobs (without its
// callback).
func batchToAPI(b *store.Batch, sjs []*store.Job) *api.Batch {
	out := &api.Batch{
		ID: b.ID, Owner: b.Owner, Status: api.BatchDone, CreatedAt: b.CreatedAt,
		JobIDs: make([]string, 0, len(sjs)), Jobs: make([]api.BatchJob, 0, len(sjs)),
		Totals: api.BatchTotals{Jobs: len(sjs), ByStatus: map[string]int{
			api.StatusQueued: 0, api.StatusRunning: 0, api.StatusDone: 0, api.StatusCancelled: 0, api.StatusFailed: 0,
		}, ByVerdict: map[string]int{}},
	}
	for _, sj := range sjs {
		bj := api.BatchJob{ID: sj.ID, Status: sj.Status, Verdict: sj.Verdict, Error: sj.Error, FinishedAt: toTime(sj.FinishedAt)}
		out.JobIDs = append(out.JobIDs, sj.ID)
		out.Jobs = append(out.Jobs, bj)
		out.Totals.ByStatus[sj.Status]++
		if sj.Status == store.StatusDone && sj.Verdict != "" {
			out.Totals.ByVerdict[sj.Verdict]++
		}
		if sj.Status == store.StatusQueued || sj.Status == store.StatusRunning {
			out.Status = api.BatchRunning
		}
	}
	return out
}

// toTime is t or nil when zero.
func toTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
