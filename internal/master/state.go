package master

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/scheduler"
	"github.com/grappe/grappe/internal/store"
)

// liveJob is a job that is not terminal yet, as this master holds it in
// memory: a running attempt of one of its workers, or a queued job it
// accepted (its spec ready for the claim). The store is the truth; this
// is a cache the worker sessions act on, which a job claimed or finished
// by another master leaves stale until the sweep drops it.
type liveJob struct {
	id, owner, language string
	version             string
	spec                *clusterpb.JobSpec
	// attempt is the number of the current (running) or last attempt.
	attempt int
	// worker runs the current attempt; empty while queued. identity is
	// the lineage of the identity it was given the attempt under: only
	// that worker, under that identity, may report on it.
	worker, identity string
	// queuedAt is when this master last saw it enter the queue, for the
	// sweep of stale entries.
	queuedAt time.Time
	// resultBy, for an attempt its worker reconnected with as finished, is
	// when the job goes back to the queue if the result has not arrived.
	resultBy time.Time
	// accepted: this master accepted the job, so the store tells it of
	// the job's end wherever it is recorded (watcher).
	accepted bool
}

// workerEntry is one worker the master knows, connected or not.
type workerEntry struct {
	name      string
	address   string
	sched     scheduler.Worker
	languages []api.WorkerLanguage
	labels    map[string]string
	sandbox   string
	version   string
	status    string
	// A worker drains because it said so (it is shutting down) or because
	// an admin asked; the two are kept apart so a heartbeat cannot undo an
	// admin's drain. rowDrain is the admin drain last read from (or
	// written to) its row in the workers table: a change there, asked
	// through another master, is applied (applyDrains).
	selfDrain, adminDrain, rowDrain bool
	session                         workerLink
	attempts                        map[string]int // job id → attempt the worker runs
	connectedAt                     time.Time
	lastBeat                        time.Time
	lostAt                          time.Time
	jobsDone                        int64

	// identity is the lineage of the identity of its latest connection;
	// its attempts are held under it.
	identity string
	// releases are the times of the attempts it gave back since it last
	// finished one (see noteRelease).
	releases []time.Time
	// listsHeld: its heartbeats list every attempt it holds
	// (Hello.heartbeat_lists_held); missing counts, per attempt, the
	// heartbeats in a row that did not list it (notListed).
	listsHeld bool
	missing   map[string]miss

	// The worker's own verdict on its machinery (Hello and Heartbeat):
	// an unhealthy worker gets no job until it says it has repaired
	// itself.
	unhealthy     bool
	healthReason  string
	infraFailures int64

	// What this master saw of its jobs failing there (failures.go).
	failures workerFailures
}

// setHealth takes the health a worker reported; an older worker reports
// none, and is healthy.
func (w *workerEntry) setHealth(h *clusterpb.Health) {
	w.unhealthy, w.healthReason, w.infraFailures = h.GetUnhealthy(), clip(h.GetReason(), maxHealthReason), h.GetInfraFailures()
}

// What a worker says of itself is bounded: its health reason is shown in
// the API and the dashboard, and its languages still self-testing keep
// jobs waiting past the placement timeout, which a worker cannot claim
// for ever.
const (
	maxHealthReason = 512
	maxSelfTesting  = 10 * time.Minute
)

// setTesting takes the languages a worker says it still self-tests, and
// ignores them once it has been connected longer than any self-test takes.
func (w *workerEntry) setTesting(ls []*clusterpb.Language, now time.Time) {
	w.sched.Testing = nil
	if now.Sub(w.connectedAt) < maxSelfTesting {
		_, w.sched.Testing = languageSets(ls)
	}
}

// clip cuts s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// missedBeats is how many heartbeats in a row may leave out an attempt
// the worker holds, for at least the worker timeout, before the master
// takes it back: an Assign on its way is listed by the next heartbeat
// built after it arrives, and a slow link is not a lost attempt.
const missedBeats = 3

// maxListed bounds the attempts one heartbeat may list (its running ones
// and its unacknowledged results) for the master to read it: a longer
// list, which a worker's slots and results cannot make, is ignored rather
// than indexed.
const maxListed = 10000

// miss is how long a heartbeat has left out an attempt.
type miss struct {
	beats int
	since time.Time
}

// notListed takes the attempts a heartbeat lists and returns those the
// worker holds that missedBeats heartbeats in a row, over at least
// timeout, left out; they are removed from its attempts: it lost them
// without reconnecting. Nothing for a worker whose heartbeats do not list
// every attempt. Called with m.mu held.
func (w *workerEntry) notListed(listed []*clusterpb.AttemptRef, now time.Time, timeout time.Duration) map[string]int {
	if !w.listsHeld || len(w.attempts) == 0 {
		clear(w.missing)
		return nil
	}
	if len(listed) > maxListed {
		return nil // not an honest list: counts nothing either way
	}
	seen := make(map[string]int32, len(listed))
	for _, a := range listed {
		seen[a.GetJobId()] = a.GetAttempt()
	}
	if w.missing == nil {
		w.missing = map[string]miss{}
	}
	var dropped map[string]int
	for id, n := range w.attempts {
		if seen[id] == int32(n) {
			delete(w.missing, id)
			continue
		}
		m, ok := w.missing[id]
		if !ok {
			m.since = now
		}
		m.beats++
		w.missing[id] = m
		if m.beats >= missedBeats && now.Sub(m.since) >= timeout {
			if dropped == nil {
				dropped = map[string]int{}
			}
			dropped[id] = n
			delete(w.attempts, id)
			delete(w.missing, id)
		}
	}
	for id := range w.missing {
		if _, held := w.attempts[id]; !held {
			delete(w.missing, id) // ended meanwhile
		}
	}
	return dropped
}

// ref is the worker as its attempts are held.
func (w *workerEntry) ref() store.WorkerRef {
	return store.WorkerRef{Name: w.name, Identity: w.identity}
}

func (w *workerEntry) available() bool {
	return w.session != nil && w.status == api.WorkerUp
}

// setStatus derives up/draining/unhealthy for a connected worker.
// Unhealthy shows over draining: it is what an operator must act on.
func (w *workerEntry) setStatus() {
	switch {
	case w.unhealthy:
		w.status = api.WorkerUnhealthy
	case w.selfDrain || w.adminDrain:
		w.status = api.WorkerDraining
	default:
		w.status = api.WorkerUp
	}
}

// requeue puts attempt n, held by w, back in the queue, or fails the job
// when it has used all its attempts (jobs.Core.Release, with the rule of
// jobs.GiveBack: an attempt given back unrun, cause.released, does not
// count, up to jobs.MaxReleasedAttempts per job). The store's
// compare-and-set decides races with a result arriving at the same
// moment: whichever commits first wins. The core's event brings memory in
// line (events.Publish).
func (m *Master) requeue(ctx context.Context, id string, n int, w store.WorkerRef, cause requeueCause) {
	err := m.core.Release(ctx, w, id, n, jobs.Release{
		Reason: cause.reason, Infrastructure: cause.infrastructure, Counted: !cause.released,
	})
	switch {
	case errors.Is(err, jobs.ErrStale):
		return // finished, cancelled or given back meanwhile
	case err != nil:
		m.logStoreErr("requeue job", err, "job", id)
		return
	}
	m.log.Info("attempt given back", "job", id, "attempt", n, "worker", w.Name, "released", cause.released, "reason", cause.reason)
	if sj, err := m.store.GetJob(ctx, id); err == nil && sj.Status == store.StatusFailed {
		m.observeFinished(sj.Language, store.StatusFailed, "")
	}
	m.kick()
}

// sweepLoop declares silent workers lost, re-queues orphaned attempts after
// a restart, and fails jobs that no connected worker can run.
func (m *Master) sweepLoop(ctx context.Context) {
	t := time.NewTicker(m.cfg.HeartbeatInterval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.sweepc: // another master's commit concerns this one (notified.go)
		}
		m.sweep(ctx, time.Now())
	}
}

// silent reports whether the master has evidence that w went quiet for
// timeout: no link, or a link that has waited that long for its next
// message. A link busy handling a message (the master behind, its
// heartbeats in the connection's buffers) is not silence: a busy master
// must not declare healthy workers lost.
func silent(w *workerEntry, now time.Time, timeout time.Duration) bool {
	return w.session == nil || w.session.Silent(now) >= timeout
}

// requeueCause says why an attempt goes back to the queue.
type requeueCause struct {
	reason string // recorded in the job's error while it waits
	// released: the worker gave it back unrun (it was shutting down); the
	// attempt does not count.
	released bool
	// infrastructure: the worker's own machinery failed; the attempt
	// counts, and a job that runs out of attempts says so plainly.
	infrastructure bool
}

type attemptRef struct {
	id     string
	n      int
	worker store.WorkerRef
}

func (m *Master) sweep(ctx context.Context, now time.Time) {
	var lostNames []string
	m.mu.Lock()
	for _, w := range m.workers {
		switch {
		case w.status != api.WorkerLost && now.Sub(w.lastBeat) > m.cfg.WorkerTimeout && silent(w, now, m.cfg.WorkerTimeout):
			// Its attempts stay its own until their leases expire (no
			// renewal from now on): the rescue below gives them back, or
			// the worker re-announces them in time, to any master.
			w.status = api.WorkerLost
			w.lostAt = now
			if w.session != nil {
				w.session.Close()
				w.session = nil
			}
			clear(w.attempts)
			m.reindex(w)
			lostNames = append(lostNames, w.name)
			m.markRow(w.name)
		case w.status == api.WorkerLost && now.Sub(w.lostAt) > m.cfg.ForgetLostAfter:
			delete(m.workers, w.name)
			m.index.Remove(w.name)
			m.markRow(w.name) // deleted from the table too
		}
	}
	var undelivered []attemptRef
	for _, lj := range m.jobs {
		if !lj.resultBy.IsZero() && now.After(lj.resultBy) {
			lj.resultBy = time.Time{}
			undelivered = append(undelivered, attemptRef{lj.id, lj.attempt, store.WorkerRef{Name: lj.worker, Identity: lj.identity}})
		}
	}
	m.mu.Unlock()

	for _, name := range lostNames {
		m.log.Warn("worker lost", "worker", name, "timeout", m.cfg.WorkerTimeout)
	}
	for _, a := range undelivered {
		m.mu.Lock()
		for _, w := range m.workers {
			if w.attempts[a.id] == a.n {
				delete(w.attempts, a.id)
				m.reindex(w)
			}
		}
		m.mu.Unlock()
		m.requeue(ctx, a.id, a.n, a.worker, requeueCause{reason: "its worker finished it but did not deliver the result"})
	}
	m.recordAgain(ctx)
	if m.leads(ctx, &m.sweeper, now) {
		// A new sweeper first lets every master renew its leases: one
		// that could not reach the database a moment ago (nor could we)
		// has had no chance to, and its workers are alive.
		if m.sweeper.ledFor(now) >= m.leaseFor() {
			m.rescueExpired(ctx, now)
		}
		m.failUnplaceable(ctx, now)
	}
	m.dropStale(ctx, now)
	m.dropReleased(ctx)
	m.endOrphans(ctx)
	if !m.hearsEnds() || m.sweeps%endsPollEvery == 0 || m.notified.ended.Swap(false) {
		m.endFinishedElsewhere(ctx)
	}
	m.sweeps++
	if m.sweeps%4 == 0 || m.notified.workers.Swap(false) {
		m.applyDrains(ctx) // a read of the whole table: every fourth sweep
	}
	if m.sweeps%4 == 0 || m.notified.access.Swap(false) {
		m.followJoinToken(ctx)
	}
	if m.sweeps%identityCheckEvery == 0 || m.notified.revoked.Swap(false) {
		m.closeRevoked(ctx)
	}
}

// recover takes back, after a start, the running attempts this master
// held: their leases are extended by RecoveryGrace, for their workers to
// reconnect and re-announce them (attach), or the rescue gives them back.
// Attempts other masters hold are theirs; queued jobs need nothing: the
// store is the queue.
func (m *Master) recover(ctx context.Context) error {
	jobs, err := m.store.Unfinished(ctx)
	if err != nil {
		return fmt.Errorf("master: load unfinished jobs: %w", err)
	}
	now := time.Now()
	if err := m.extendRecovered(ctx, jobs, now); err != nil {
		return fmt.Errorf("master: extend recovered leases: %w", err)
	}
	if err := m.markOldRowsLost(ctx, now); err != nil {
		return fmt.Errorf("master: mark the workers of the last run lost: %w", err)
	}
	running := 0
	for _, sj := range jobs {
		if sj.Status != store.StatusRunning || sj.Master != m.cfg.MasterID {
			continue
		}
		lj, err := m.liveFromStore(sj)
		if err != nil {
			m.log.Error("unreadable job in store; failing it", "job", sj.ID, "err", err)
			f := store.Finish{Status: store.StatusFailed, Error: "the master could not read the stored job", At: now.UTC()}
			_, _ = m.store.FinishAttempt(ctx, sj.ID, sj.Attempts, store.WorkerRef{Name: sj.Worker, Identity: sj.WorkerIdentity}, f)
			continue
		}
		lj.worker, lj.identity = sj.Worker, sj.WorkerIdentity
		m.jobs[lj.id] = lj
		running++
	}
	if running > 0 {
		m.log.Info("recovered running jobs", "running", running, "grace", m.cfg.RecoveryGrace)
	}
	return nil
}
