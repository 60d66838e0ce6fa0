package master

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/attach"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/store"
)

// Interactive jobs (issue 14). The client's stream (a WebSocket) reaches
// any master; the worker that runs the job is linked to one. Rather than
// relay between masters, the job goes to the client: it is started only
// by the master its client attached to, on one of that master's workers
// (jobs.Core.StartAttached; no claim ever places it), so the stream, the
// session and the worker's link are in one process. The job waits in the
// queue for its attach and a free worker, within its placement timeout,
// then fails saying so. Its input cannot be replayed: an attempt that is
// interrupted fails the job (jobs.Core.Release), and a running one whose
// client is not attached here any more (this master restarted, or the
// worker moved to another master) is cancelled (endOrphans).

// attachPoll is how often an attached job that waits for a free worker
// tries again.
const attachPoll = 200 * time.Millisecond

// attachStoreTimeout bounds each store call made for a session.
const attachStoreTimeout = 10 * time.Second

// attachedSessions are the sessions of the jobs attached here, by job.
type attachedSessions struct {
	mu    sync.Mutex
	byJob map[string]*attach.Session
}

func (a *attachedSessions) get(id string) *attach.Session {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.byJob[id]
}

// add registers s for job id, unless the job has one.
func (a *attachedSessions) add(id string, s *attach.Session) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byJob[id] != nil {
		return false
	}
	a.byJob[id] = s
	return true
}

func (a *attachedSessions) remove(id string, s *attach.Session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byJob[id] == s {
		delete(a.byJob, id)
	}
}

func (a *attachedSessions) all() []*attach.Session {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*attach.Session, 0, len(a.byJob))
	for _, s := range a.byJob {
		out = append(out, s)
	}
	return out
}

// Attach connects the owner's client to interactive job id, which must be
// waiting for it (queued): the job starts on a worker of this master as
// soon as one is free. The session ends with the job's exit; closing it
// before ends the job.
func (m *Master) Attach(ctx context.Context, p *auth.Principal, id string) (*attach.Session, error) {
	sj, err := m.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	switch {
	case sj.Owner != p.User:
		// An admin sees every job, but types into none.
		return nil, jobs.NotFound
	case !jobs.IsInteractive(sj):
		return nil, jobs.Errorf(jobs.CodeConflict, "job %s is not interactive: submit it with \"interactive\": true", id)
	case sj.Status != store.StatusQueued:
		return nil, jobs.Errorf(jobs.CodeConflict, "job %s is %s: a client attaches to an interactive job once, before it starts", id, sj.Status)
	}
	s := attach.New(attach.Config{Idle: m.cfg.InteractiveIdle, Link: attachLink{m, id}})
	if !m.attached.add(id, s) {
		return nil, jobs.Errorf(jobs.CodeConflict, "another client is attached to job %s", id)
	}
	// Subscribed before the relay starts, so that no end is missed: the
	// relay reads the end from it (a waiter's subscription: no output,
	// which comes straight from the worker's link, never dropped).
	end, unsubscribe := m.broker.subscribe(id, false)
	go m.relayAttached(id, s, end, unsubscribe)
	return s, nil
}

// relayAttached starts an attached job as soon as a worker of this master
// is free, then waits for its end and gives it to the session. It returns
// when the session is over.
func (m *Master) relayAttached(id string, s *attach.Session, end <-chan api.Event, unsubscribe func()) {
	defer unsubscribe()
	defer m.attached.remove(id, s)
	poll := time.NewTicker(attachPoll)
	defer poll.Stop()
	pollC := poll.C
	var final *api.Job
	for {
		if pollC != nil && !m.tryStartAttached(id, s) {
			pollC = nil
		}
		select {
		case ev, ok := <-end:
			if !ok {
				s.Exit(m.finalJob(id, final))
				return
			}
			if ev.Type == "end" {
				final = ev.Job
			}
		case <-pollC:
		case <-s.Ended():
			return
		}
	}
}

// tryStartAttached tries to start the job; false when there is nothing
// more to try: it started, or it is not waiting any more.
func (m *Master) tryStartAttached(id string, s *attach.Session) bool {
	ctx, cancel := context.WithTimeout(context.Background(), attachStoreTimeout)
	defer cancel()
	j, err := m.core.StartAttached(ctx, id)
	switch {
	case errors.Is(err, jobs.ErrNotWaiting):
		sj, err := m.store.GetJob(ctx, id)
		switch {
		case err != nil:
			s.Refuse("the job cannot be read: " + err.Error())
		case sj.Status == store.StatusRunning:
			s.Refuse("another client attached to this job first")
		case sj.Status != store.StatusQueued:
			// It ended before its start (cancelled, or failed at its
			// placement timeout), maybe before the subscription.
			s.Exit(m.finalJob(id, nil))
		}
		return false
	case err != nil:
		m.logStoreErr("start an attached job", err, "job", id)
		return true
	case j == nil:
		return true // no worker free: the next poll
	}
	s.Started()
	return false
}

// finalJob is the job as it ended: the end event's, else the store's.
func (m *Master) finalJob(id string, final *api.Job) *api.Job {
	if final == nil {
		ctx, cancel := context.WithTimeout(context.Background(), attachStoreTimeout)
		defer cancel()
		if sj, err := m.store.GetJob(ctx, id); err == nil {
			final, _ = toAPI(sj, false)
		}
	}
	if final != nil {
		j := *final
		j.Request = nil // the client has it; the exit stays small
		return &j
	}
	return nil
}

// stage relays an interactive attempt's stage to its client.
func (m *Master) stage(w store.WorkerRef, st *clusterpb.Stage) {
	if st.Attempt == nil || !m.checkHolds(w, "stage", st.Attempt.JobId, int(st.Attempt.Attempt)) {
		return
	}
	if s := m.attached.get(st.Attempt.JobId); s != nil {
		s.Stage(st.Stage)
	}
}

// attachLink is a session's relay to its job's worker.
type attachLink struct {
	m  *Master
	id string
}

var _ attach.Link = attachLink{}

// Stdin implements attach.Link: to the worker holding the job's attempt,
// on its link's queue (which waits when full: the client waits too).
func (l attachLink) Stdin(data []byte, eof bool, signal string) error {
	m := l.m
	m.mu.Lock()
	var sess workerLink
	var n int
	if lj := m.jobs[l.id]; lj != nil && lj.worker != "" {
		if w := m.workers[lj.worker]; w != nil && w.identity == lj.identity && w.attempts[l.id] == lj.attempt {
			sess, n = w.session, lj.attempt
		}
	}
	m.mu.Unlock()
	if sess == nil {
		return attach.ErrNotRunning
	}
	sess.Send(&clusterpb.MasterMessage{Msg: &clusterpb.MasterMessage_Stdin{Stdin: &clusterpb.Stdin{
		Attempt: &clusterpb.AttemptRef{JobId: l.id, Attempt: int32(n)}, Data: data, Eof: eof, Signal: signal,
	}}})
	return nil
}

// End implements attach.Link: a job still waiting fails, a running one is
// cancelled.
func (l attachLink) End(why string) {
	m := l.m
	ctx, cancel := context.WithTimeout(context.Background(), attachStoreTimeout)
	defer cancel()
	err := m.core.Abandon(ctx, l.id, fmt.Sprintf("the interactive job never started: %s", why))
	if errors.Is(err, jobs.ErrNotWaiting) {
		_, err = m.core.Cancel(ctx, l.id, "grappe ("+why+")")
	}
	if err != nil {
		m.logStoreErr("end an interactive job", err, "job", l.id)
	}
}

// endOrphans cancels the interactive attempts this master's workers run
// with no client attached here: the master restarted, or the worker came
// over from another master; their input has nowhere to come from.
func (m *Master) endOrphans(ctx context.Context) {
	var orphans []string
	m.mu.Lock()
	for id, lj := range m.jobs {
		if lj.spec.GetInteractive() && m.heldHereLocked(id) && m.attached.get(id) == nil {
			orphans = append(orphans, id)
		}
	}
	m.mu.Unlock()
	for _, id := range orphans {
		m.log.Info("interactive job without its client; cancelling it", "job", id)
		if _, err := m.core.Cancel(ctx, id, "grappe (its client is not attached any more)"); err != nil {
			m.logStoreErr("cancel an orphaned interactive job", err, "job", id)
		}
	}
}

// closeSessions ends the sessions attached here: the master stops.
func (m *Master) closeSessions() {
	for _, s := range m.attached.all() {
		s.Refuse("the master is shutting down")
	}
}

// notStarted is the error of an interactive job that did not start within
// its placement timeout.
func notStarted(j *store.Job, timeout time.Duration) string {
	return fmt.Sprintf("the interactive job did not start within %s: no client attached to it, or no worker running %s was free", timeout, j.Language)
}
