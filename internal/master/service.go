package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/httpapi"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/store"
)

var _ httpapi.Service = (*Master)(nil)

// Submit validates, persists and queues a job. The job is committed to the
// store before its id is returned: an accepted job survives a crash.
func (m *Master) Submit(ctx context.Context, p *auth.Principal, req *api.JobRequest, key string) (*api.Job, error) {
	v, err := m.validate(req)
	if err != nil {
		return nil, err
	}
	v.Normalize(req)
	if req.MaxAttempts == 0 {
		req.MaxAttempts = m.cfg.MaxAttempts
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	sj := &store.Job{
		ID: newJobID(), Owner: p.User, Language: v.Lang.Name, Version: req.Version,
		Status: store.StatusQueued, MaxAttempts: req.MaxAttempts, Priority: req.Priority,
		Labels: req.Labels, CreatedAt: time.Now().UTC(), Request: body, IdempotencyKey: key,
	}
	// The quota is the store's: checked and taken in the write that
	// inserts the job, so it holds across masters and concurrent
	// submissions.
	if err := m.store.CreateJob(ctx, sj, m.cfg.MaxQueuedPerUser); err != nil {
		if errors.Is(err, store.ErrQuota) {
			return nil, &jobs.Error{Code: jobs.CodeRateLimited, RetryAfter: 5,
				Message: fmt.Sprintf("%d jobs of yours are already waiting (the limit); retry when some have run", m.cfg.MaxQueuedPerUser)}
		}
		if key != "" && errors.Is(err, store.ErrConflict) {
			// A retry of a submission already accepted (the unique key
			// refused the second row): answer with the first job. Trying
			// the insert first saves a read on every submission.
			if first, err := m.store.JobByIdempotencyKey(ctx, p.User, key); err == nil {
				return toAPI(first, false)
			}
		}
		return nil, fmt.Errorf("store job: %w", err)
	}
	// The job is in the store's queue; its spec is kept ready for the
	// claim (built outside the lock).
	lj := newLiveJob(sj, v, req)
	m.mu.Lock()
	// A dispatch may have claimed it since the commit, with its own copy
	// now running: that one is the truth.
	if _, claimed := m.jobs[sj.ID]; !claimed {
		m.jobs[sj.ID] = lj
	}
	m.mu.Unlock()
	m.backlog.Store(true)
	m.kick()
	m.metrics.submitted(v.Lang.Name)
	m.stats.submitted()
	return toAPI(sj, false)
}

// visible loads a job the principal may see. Another user's job answers
// not found, not forbidden, so ids leak nothing.
func (m *Master) visible(ctx context.Context, p *auth.Principal, id string) (*store.Job, error) {
	if id == "" || len(id) > 64 {
		return nil, jobs.NotFound
	}
	sj, err := m.store.GetJob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, jobs.NotFound
	}
	if err != nil {
		return nil, err
	}
	if !p.IsAdmin() && sj.Owner != p.User {
		return nil, jobs.NotFound
	}
	return sj, nil
}

// Job returns one job, with its queue position while it waits.
func (m *Master) Job(ctx context.Context, p *auth.Principal, id string) (*api.Job, error) {
	sj, err := m.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	j, err := toAPI(sj, true)
	if err != nil {
		return nil, err
	}
	if j.Status == api.StatusQueued {
		// Best effort: the job may start between the two reads.
		if j.QueuePosition, err = m.store.QueuePosition(ctx, id); err != nil {
			j.QueuePosition = 0
		}
	}
	return j, nil
}

// Jobs lists the caller's jobs, or everyone's for an admin, newest first.
func (m *Master) Jobs(ctx context.Context, p *auth.Principal, status string, limit int) ([]api.Job, error) {
	f := store.ListFilter{Status: status, Limit: limit}
	if !p.IsAdmin() {
		f.Owner = p.User
	}
	sjs, err := m.store.ListJobs(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]api.Job, 0, len(sjs))
	for _, sj := range sjs {
		j, err := toAPI(sj, false)
		if err != nil {
			return nil, err
		}
		out = append(out, *j)
	}
	return out, nil
}

// Cancel stops a queued job before it starts, or a running one: the job
// is recorded cancelled at once and its worker told to kill it. The store
// decides, by compare-and-set on the state it has, whichever master
// accepted the job.
func (m *Master) Cancel(ctx context.Context, p *auth.Principal, id string) (*api.Job, error) {
	if _, err := m.visible(ctx, p, id); err != nil {
		return nil, err
	}
	f := store.Finish{Status: store.StatusCancelled, Error: "cancelled by " + p.User}
	// A conflict means the job moved between the read and the write
	// (claimed, requeued, finished): look again. A job moves a bounded
	// number of times, so this ends.
	for range 16 {
		f.At = time.Now().UTC()
		switch err := m.cancelStored(ctx, id, f); {
		case errors.Is(err, store.ErrConflict):
			continue
		case err != nil:
			return nil, err
		}
		return m.Job(ctx, p, id)
	}
	return nil, &jobs.Error{Code: jobs.CodeUnavailable, RetryAfter: 1, Message: "the job is changing state; try again"}
}

// cancelStored cancels a job by compare-and-set on the state the store
// has: nothing for a finished job, ErrConflict when the job moved between
// the read and the write. A worker of this master running it is told to
// stop.
func (m *Master) cancelStored(ctx context.Context, id string, f store.Finish) error {
	sj, err := m.store.GetJob(ctx, id)
	if err != nil {
		return err
	}
	switch sj.Status {
	case store.StatusQueued:
		err = m.store.FinishQueued(ctx, id, f)
	case store.StatusRunning:
		_, err = m.store.FinishAttempt(ctx, id, sj.Attempts, store.WorkerRef{Name: sj.Worker, Identity: sj.WorkerIdentity}, f)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	var sess *session
	if sj.Status == store.StatusRunning {
		// A claim that committed before this cancel enters its attempt
		// in memory, and queues its Assign, before claimMu is free.
		m.claimMu.Lock()
		m.claimMu.Unlock() // nothing to do inside: a barrier

	}
	m.mu.Lock()
	if lj := m.jobs[id]; lj != nil && (sj.Status == store.StatusQueued || lj.attempt == sj.Attempts) {
		delete(m.jobs, id)
	}
	if w := m.workers[sj.Worker]; sj.Status == store.StatusRunning && w != nil && w.identity == sj.WorkerIdentity && w.attempts[id] == sj.Attempts {
		delete(w.attempts, id)
		sess = w.session
	}
	m.mu.Unlock()
	if sess != nil {
		sess.sendMsg(cancelMsg(id, sj.Attempts, f.Error))
		m.kick() // a slot is free
	}
	m.finishedEvent(ctx, id, sj.Language, f)
	return nil
}

func (m *Master) finishedEvent(ctx context.Context, id, language string, f store.Finish) {
	m.observeFinished(language, f.Status, f.Verdict)
	m.publishEnd(id, nil)
}

func cancelMsg(id string, n int, reason string) *clusterpb.MasterMessage {
	return &clusterpb.MasterMessage{Msg: &clusterpb.MasterMessage_Cancel{Cancel: &clusterpb.Cancel{
		Attempt: &clusterpb.AttemptRef{JobId: id, Attempt: int32(n)}, Reason: reason,
	}}}
}

// Subscribe streams a job's events; see httpapi.Service.
func (m *Master) Subscribe(ctx context.Context, p *auth.Principal, id string, events bool) (<-chan api.Event, func(), error) {
	// A live job's owner is in memory: no store read on the hot path of
	// ?wait=true. Anything else goes through the store's visibility check.
	m.mu.Lock()
	lj := m.jobs[id]
	m.mu.Unlock()
	if lj == nil || (!p.IsAdmin() && lj.owner != p.User) {
		if _, err := m.visible(ctx, p, id); err != nil {
			return nil, nil, err
		}
	}
	ch, cancel := m.broker.subscribe(id, events)
	// A job that finished between the check and the subscription would
	// never close the channel: look once more (in the store for a job
	// this master does not hold: queued before a restart, or accepted by
	// another master).
	m.mu.Lock()
	_, live := m.jobs[id]
	m.mu.Unlock()
	if !live {
		sj, err := m.store.GetJob(ctx, id)
		if err != nil || (sj.Status != store.StatusQueued && sj.Status != store.StatusRunning) {
			cancel()
		}
	}
	return ch, cancel, nil
}

// publishState sends a job's new state to its subscribers.
func (m *Master) publishState(ctx context.Context, id string) {
	if !m.broker.hasSubscribers(id) {
		return
	}
	sj, err := m.store.GetJob(ctx, id)
	if err != nil {
		return
	}
	if j, err := toAPI(sj, false); err == nil {
		m.broker.publish(id, api.Event{Type: "state", Job: j})
	}
}

// publishEnd closes a finished job's subscriptions; subscribers then read
// the final job from the store, except the ?wait requests when the job as
// stored is at hand (final): they are handed it.
func (m *Master) publishEnd(id string, final *store.Job) {
	if id == "" {
		return
	}
	var j *api.Job
	if final != nil && m.broker.hasWaiters(id) {
		j, _ = toAPI(final, true) // nil on error: the waiters read it back
	}
	m.broker.finish(id, j)
}

// Languages lists what the connected workers can run.
func (m *Master) Languages(ctx context.Context) []api.Language {
	type agg struct {
		versions map[string]bool
		workers  int
	}
	byName := map[string]*agg{}
	add := func(langs []api.WorkerLanguage) {
		for _, l := range langs {
			a := byName[l.Name]
			if a == nil {
				a = &agg{versions: map[string]bool{}}
				byName[l.Name] = a
			}
			a.versions[l.Version] = true
			a.workers++
		}
	}
	// The other masters' workers too (workers table): any master serves
	// any client, and places on the workers of the whole cluster.
	for _, w := range m.otherWorkers(ctx, m.holds) {
		if w.Status != api.WorkerLost {
			add(w.Languages)
		}
	}
	m.mu.Lock()
	for _, w := range m.workers {
		if w.session == nil || w.status == api.WorkerLost {
			continue
		}
		add(w.languages)
	}
	m.mu.Unlock()
	out := make([]api.Language, 0, len(byName))
	for name, a := range byName {
		l := api.Language{Name: name, Workers: a.workers}
		for v := range a.versions {
			l.Versions = append(l.Versions, v)
		}
		sort.Strings(l.Versions)
		l.Version = l.Versions[len(l.Versions)-1]
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Workers lists every known worker of the cluster with its live load:
// this master's own from memory, the other masters' from the workers
// table (workertable.go).
func (m *Master) Workers(ctx context.Context) []api.Worker {
	others := m.otherWorkers(ctx, m.holds)
	elsewhere := map[string]bool{}
	for _, w := range others {
		elsewhere[w.Name] = true
	}
	m.mu.Lock()
	out := make([]api.Worker, 0, len(m.workers))
	for _, w := range m.workers {
		if elsewhere[w.name] {
			continue // lost here, held by another master now
		}
		labels := w.labels
		if labels == nil {
			labels = map[string]string{}
		}
		out = append(out, api.Worker{
			Name: w.name, Address: w.address, Status: w.status,
			Languages: w.languages, Labels: labels,
			Slots: w.sched.Slots, Running: len(w.attempts),
			CPUPercent: w.sched.CPUPercent, MemoryPercent: w.sched.MemoryPercent,
			JobsDone: w.jobsDone, LastHeartbeat: w.lastBeat.UTC(), ConnectedAt: w.connectedAt.UTC(),
			Sandbox: w.sandbox, Version: w.version,
			InfraFailures: w.infraFailures, Health: w.healthReason,
		})
	}
	m.mu.Unlock()
	out = append(out, others...)
	m.annotateOrigins(out)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Cluster summarises workers and jobs.
func (m *Master) Cluster(ctx context.Context) (*api.Cluster, error) {
	counts, err := m.store.CountJobs(ctx)
	if err != nil {
		return nil, err
	}
	c := &api.Cluster{Workers: map[string]int{}, Jobs: map[string]int{}}
	for _, s := range []string{api.StatusQueued, api.StatusRunning, api.StatusDone, api.StatusCancelled, api.StatusFailed} {
		c.Jobs[s] = counts[s]
	}
	elsewhere := map[string]bool{}
	for _, w := range m.otherWorkers(ctx, m.holds) {
		elsewhere[w.Name] = true
		c.Workers[w.Status]++
		if w.Status != api.WorkerLost {
			c.Slots += w.Slots
			c.SlotsInUse += w.Running
		}
	}
	m.mu.Lock()
	for _, w := range m.workers {
		if elsewhere[w.name] {
			continue
		}
		c.Workers[w.status]++
		if w.status != api.WorkerLost {
			c.Slots += w.sched.Slots
			c.SlotsInUse += len(w.attempts)
		}
	}
	m.mu.Unlock()
	c.QueueDepth = counts[api.StatusQueued]
	return c, nil
}

// Drain stops (or resumes, with drain false) placing jobs on a worker. Its
// running jobs finish; the worker is told so it reports itself draining.
// The drain is recorded in the workers table too: a worker another master
// holds is drained by that master within a few seconds (applyDrains), and
// a drain outlives a master's restart.
func (m *Master) Drain(ctx context.Context, name string, drain bool) (*api.Worker, error) {
	m.mu.Lock()
	w := m.workers[name]
	here := w != nil && w.status != api.WorkerLost
	var sess *session
	if here {
		w.adminDrain = drain
		w.setStatus()
		m.markRow(name)
		sess = w.session
	}
	m.mu.Unlock()
	err := m.store.SetWorkerDrain(ctx, name, drain)
	switch {
	case err == nil:
		if here {
			m.mu.Lock()
			w.rowDrain = drain
			m.mu.Unlock()
		}
	case errors.Is(err, store.ErrNotFound) && here:
		// Not in the table yet (its first row is on its way): memory
		// holds the drain.
	case errors.Is(err, store.ErrNotFound):
		return nil, jobs.NotFound
	case !here:
		return nil, err
	default:
		m.log.Warn("record a drain in the workers table", "worker", name, "err", err)
	}
	if sess != nil {
		sess.sendMsg(&clusterpb.MasterMessage{Msg: &clusterpb.MasterMessage_Drain{Drain: &clusterpb.Drain{Drain: drain}}})
	}
	m.log.Info("worker drain set", "worker", name, "drain", drain, "held_here", here)
	m.kick()
	for _, wk := range m.Workers(ctx) {
		if wk.Name == name {
			return &wk, nil
		}
	}
	return nil, jobs.NotFound
}
