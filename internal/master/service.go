package master

import (
	"context"
	"errors"
	"net/http"
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

// Submit validates, persists and queues a job (jobs.Core.Submit). The
// job is committed to the store before its id is returned: an accepted
// job survives a crash. The quota is the store's, so it holds across
// masters and concurrent submissions.
func (m *Master) Submit(ctx context.Context, p *auth.Principal, req *api.JobRequest, key string) (*api.Job, error) {
	if err := m.admit(ctx); err != nil {
		return nil, err
	}
	v, sub, err := m.prepare(req)
	if err != nil {
		return nil, err
	}
	checkCtx, cancel := context.WithTimeout(ctx, callbackCheckBudget)
	defer cancel()
	if err := m.checkCallback(checkCtx, "callback_url", req.CallbackURL); err != nil {
		return nil, err
	}
	sub.Owner, sub.IdempotencyKey = p.User, key
	sj, err := m.core.Submit(ctx, sub)
	if err != nil {
		return nil, err
	}
	// Its spec is kept ready for the claim (built outside the lock). A
	// dispatch may have claimed it since the commit, with its own copy
	// now running: that one is the truth. A retried submission's first
	// job is left as it is.
	if sj.Attempts == 0 && sj.Status == store.StatusQueued {
		lj := newLiveJob(sj, v, req)
		lj.accepted = true
		m.mu.Lock()
		if _, claimed := m.jobs[sj.ID]; !claimed {
			m.jobs[sj.ID] = lj
		}
		m.mu.Unlock()
	}
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
	if j.Request != nil && j.Request.CallbackURL != "" {
		if j.Callback, err = m.callbackOf(ctx, store.CallbackJob, id); err != nil {
			return nil, err
		}
	}
	if j.Status == api.StatusQueued {
		// Best effort: the job may start between the two reads.
		if j.QueuePosition, err = m.store.QueuePosition(ctx, id); err != nil {
			j.QueuePosition = 0
		}
	}
	return j, nil
}

// Jobs lists the caller's jobs, or everyone's for an admin, newest first,
// as q selects them.
func (m *Master) Jobs(ctx context.Context, p *auth.Principal, q httpapi.JobQuery) ([]api.Job, error) {
	f := store.ListFilter{Status: q.Status, Limit: q.Limit, Before: q.Before, Language: q.Language,
		Verdict: q.Verdict, Since: q.Since, Until: q.Until, Search: q.Search}
	if !p.IsAdmin() {
		f.Owner = p.User
		// Another user's job is no cursor: it would tell that it exists,
		// and when it was made.
		if q.Before != "" {
			if sj, err := m.store.GetJob(ctx, q.Before); err == nil && sj.Owner != p.User {
				return nil, httpapi.Errorf(http.StatusBadRequest, api.CodeBadRequest, "before: no such job %q", q.Before)
			}
		}
	}
	sjs, err := m.store.ListJobs(ctx, f)
	if errors.Is(err, store.ErrNotFound) {
		return nil, httpapi.Errorf(http.StatusBadRequest, api.CodeBadRequest, "before: no such job %q", q.Before)
	}
	if err != nil {
		return nil, err
	}
	out := make([]api.Job, 0, len(sjs))
	positioned := 0
	for _, sj := range sjs {
		j, err := toAPI(sj, false)
		if err != nil {
			return nil, err
		}
		// Queued jobs show their place, as GET /jobs/{id} does: the first
		// listPositions of them, each a read of its owner's queue.
		if j.Status == api.StatusQueued && positioned < listPositions {
			positioned++
			if j.QueuePosition, err = m.store.QueuePosition(ctx, j.ID); err != nil {
				j.QueuePosition = 0
			}
		}
		out = append(out, *j)
	}
	return out, nil
}

// OwnJobs lists a page of the caller's own jobs, newest first, with
// their requests, and counts them all.
func (m *Master) OwnJobs(ctx context.Context, p *auth.Principal, offset, limit int) ([]api.Job, int, error) {
	total, err := m.store.CountOwnerJobs(ctx, p.User)
	if err != nil {
		return nil, 0, err
	}
	sjs, err := m.store.ListJobs(ctx, store.ListFilter{Owner: p.User, Offset: offset, Limit: limit})
	if err != nil {
		return nil, 0, err
	}
	out := make([]api.Job, 0, len(sjs))
	for _, sj := range sjs {
		j, err := toAPI(sj, true)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, *j)
	}
	return out, total, nil
}

// QueuedByLanguage counts the queued jobs of each language.
func (m *Master) QueuedByLanguage(ctx context.Context) (map[string]int, error) {
	return m.store.CountQueuedByLanguage(ctx)
}

// TallyJobs counts the cluster's jobs, for statistics.
func (m *Master) TallyJobs(ctx context.Context, since time.Time) (*store.Tally, error) {
	return m.store.TallyJobs(ctx, since)
}

// listPositions bounds the queue positions a job list reads.
const listPositions = 100

// Cancel stops a queued job before it starts, or a running one: the job
// is recorded cancelled at once and its worker told to kill it
// (jobs.Core.Cancel, by compare-and-set on the state the store has,
// whichever master accepted the job or holds its worker).
func (m *Master) Cancel(ctx context.Context, p *auth.Principal, id string) (*api.Job, error) {
	before, err := m.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	sj, err := m.core.Cancel(ctx, id, p.User)
	if err != nil {
		return nil, err
	}
	if sj.Status == store.StatusCancelled && before.Status != store.StatusCancelled {
		m.observeFinished(sj.Language, sj.Status, "")
	}
	return m.Job(ctx, p, id)
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
	// another master). Such a job's end is told to this master only once
	// the store knows that it watches it (watcher): first that, then the
	// look.
	m.mu.Lock()
	lj = m.jobs[id]
	told := lj != nil && (lj.accepted || m.heldHereLocked(id))
	m.mu.Unlock()
	if !told {
		if w, ok := m.store.(watcher); ok {
			if err := w.Watch(ctx, id); err != nil {
				m.logStoreErr("watch a job", err, "job", id) // the sweep's polling covers it
			}
		}
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
	if m.callbacks != nil {
		m.callbacks.Kick() // a callback may be due
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
		w.failures.describe(&out[len(out)-1], w.jobsDone)
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
	var sess workerLink
	if here {
		w.adminDrain = drain
		w.setStatus()
		m.reindex(w)
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
		sess.Send(&clusterpb.MasterMessage{Msg: &clusterpb.MasterMessage_Drain{Drain: &clusterpb.Drain{Drain: drain}}})
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
