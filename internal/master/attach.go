package master

import (
	"context"
	"fmt"
	"time"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/scheduler"
	"github.com/grappe/grappe/internal/store"
)

// A worker that (re)connects settles its attempts against the store,
// whichever master gave them: after a blip, after this master's restart,
// or moving from a master that died. The store's attempts on the worker
// (its name and identity) are what it holds; its leases are renewed here
// first, so this master holds them from now on.
//   - an attempt it re-announces (running, or finished with the result to
//     follow) that the store gives it is adopted: nothing reruns;
//   - one the store gives it that it does not announce is requeued: it
//     lost it (it restarted);
//   - one it announces that the store does not give it is returned for the
//     worker to kill (cancelled, or rescued and run elsewhere meanwhile).
// A worker that never comes back loses its attempts when their leases
// expire (the sweep's rescue), however many masters there are.

// attach installs a (re)connected worker and settles its attempts. It
// returns the attempts the worker must abandon. No dispatch is between a
// claim and its Assigns meanwhile (jobs.Core.WithoutDispatch), so that no
// attempt claimed for this worker is on its way while they are settled.
func (m *Master) attach(ctx context.Context, h *clusterpb.Hello, ref store.WorkerRef, sess workerLink, addr string) []*clusterpb.AttemptRef {
	var abandon []*clusterpb.AttemptRef
	var vanished []attemptRef
	m.core.WithoutDispatch(func() {
		abandon, vanished = m.settle(ctx, h, ref, sess, addr)
	})
	for _, a := range vanished {
		m.requeue(ctx, a.id, a.n, a.worker, requeueCause{reason: fmt.Sprintf("worker %s reconnected without it", h.Name)})
	}
	return abandon
}

// settle is attach's part under WithoutDispatch.
func (m *Master) settle(ctx context.Context, h *clusterpb.Hello, ref store.WorkerRef, sess workerLink, addr string) ([]*clusterpb.AttemptRef, []attemptRef) {
	if _, err := m.store.RenewLeases(ctx, m.cfg.MasterID, []store.WorkerRef{ref}, time.Now().Add(m.leaseFor()).UTC()); err != nil {
		m.log.Warn("renew the leases of a connecting worker", "worker", h.Name, "err", err)
	}
	held, err := m.store.RunningOn(ctx, ref)
	if err != nil {
		// Without the store's word (held nil), memory decides: what this
		// master gave the worker. The leases settle the rest.
		m.log.Warn("read a connecting worker's attempts", "worker", h.Name, "err", err)
	}
	return m.register(h, ref, sess, addr, held, m.adoptedCopies(ctx, h, held))
}

// adoptedCopies builds the working copies of the attempts the worker
// re-announces that the store gives it and this master does not have in
// memory (given by another master), from their stored requests.
func (m *Master) adoptedCopies(ctx context.Context, h *clusterpb.Hello, held map[string]int) map[string]*liveJob {
	var missing []string
	m.mu.Lock()
	for _, a := range append(append([]*clusterpb.AttemptRef{}, h.Running...), h.Finished...) {
		n, ok := held[a.JobId]
		if lj := m.jobs[a.JobId]; ok && n == int(a.Attempt) && (lj == nil || lj.attempt != n) {
			missing = append(missing, a.JobId)
		}
	}
	m.mu.Unlock()
	copies := map[string]*liveJob{}
	for _, id := range missing {
		sj, err := m.store.GetJob(ctx, id)
		if err != nil {
			continue
		}
		if lj, err := m.liveFromStore(sj); err == nil {
			copies[id] = lj
		}
	}
	return copies
}

// register installs the worker's session and settles its attempts in
// memory (see attach). held is the store's word (nil: unknown, memory
// decides); copies are the working copies adoptedCopies built.
func (m *Master) register(h *clusterpb.Hello, ref store.WorkerRef, sess workerLink, addr string, held map[string]int, copies map[string]*liveJob) (abandon []*clusterpb.AttemptRef, vanished []attemptRef) {
	now := time.Now()
	langs, byName := languageSets(h.Languages)
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.workers[h.Name]
	if w == nil {
		w = &workerEntry{name: h.Name, identity: ref.Identity, attempts: map[string]int{}}
		m.workers[h.Name] = w
	} else if w.session != nil {
		w.session.Close() // a newer connection of the same worker wins
	}
	if w.identity != ref.Identity {
		// The name joined again after a revocation: the old identity's
		// attempts are not this one's to run or report on.
		for id, n := range w.attempts {
			vanished = append(vanished, attemptRef{id, n, w.ref()})
		}
		w.attempts = map[string]int{}
		w.identity, w.releases = ref.Identity, nil
	}
	w.address, w.languages, w.labels = addr, langs, h.Labels
	w.sandbox, w.version, w.selfDrain = h.Sandbox, h.Version, h.Draining
	w.session, w.connectedAt, w.lastBeat = sess, now, now
	w.setHealth(h.Health)
	w.setStatus()
	w.sched = scheduler.Worker{ID: h.Name, Languages: byName, Labels: h.Labels, Slots: int(h.Slots)}
	w.setTesting(h.Testing, now)
	w.listsHeld, w.missing = h.HeartbeatListsHeld, nil
	m.markRow(h.Name)

	// holds reports whether attempt a is the worker's, and its working copy.
	holds := func(a *clusterpb.AttemptRef) *liveJob {
		n := int(a.Attempt)
		lj := m.jobs[a.JobId]
		if held == nil {
			if lj != nil && lj.worker == h.Name && lj.identity == ref.Identity && lj.attempt == n {
				return lj
			}
			return nil
		}
		if held[a.JobId] != n {
			return nil
		}
		if lj == nil || lj.attempt != n {
			lj = copies[a.JobId] // nil when unreadable: abandoned
		}
		return lj
	}
	adopt := func(a *clusterpb.AttemptRef, lj *liveJob) {
		n := int(a.Attempt)
		lj.attempt, lj.worker, lj.identity = n, h.Name, ref.Identity
		m.jobs[a.JobId] = lj
		w.attempts[a.JobId] = n
	}
	announced := map[string]int{}
	for _, a := range h.Running {
		if lj := holds(a); lj != nil {
			announced[a.JobId] = int(a.Attempt)
			adopt(a, lj)
			lj.resultBy = time.Time{}
			continue
		}
		abandon = append(abandon, a)
	}
	// A finished attempt is still the worker's: its result follows the
	// welcome. Re-queueing it would run the job twice; if the result
	// never comes, ResultGrace re-queues it (sweep).
	for _, a := range h.Finished {
		if lj := holds(a); lj != nil {
			announced[a.JobId] = int(a.Attempt)
			adopt(a, lj)
			lj.resultBy = now.Add(m.cfg.ResultGrace)
		}
	}
	// What it does not announce, it lost: what this master gave it, and
	// what the store has on it from any master.
	for id, n := range w.attempts {
		if announced[id] != n {
			delete(w.attempts, id)
			vanished = append(vanished, attemptRef{id, n, ref})
		}
	}
	for id, n := range held {
		if announced[id] != n && !containsAttempt(vanished, id, n) {
			vanished = append(vanished, attemptRef{id, n, ref})
		}
	}
	m.putIndexed(w)
	return abandon, vanished
}

func containsAttempt(as []attemptRef, id string, n int) bool {
	for _, a := range as {
		if a.id == id && a.n == n {
			return true
		}
	}
	return false
}
