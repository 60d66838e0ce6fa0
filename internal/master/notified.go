package master

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// What other masters change, heard as they commit when the store tells
// (PostgreSQL's LISTEN/NOTIFY: store.Changes), else found by the sweep's
// polling, which runs either way and covers lost notifications:
//
//   - a job queued through any master is dispatched at once by the
//     masters with free slots (those whose slots are full are not told:
//     see hunger in dispatch.go);
//   - a job another master ended: the subscribers here hear of it at once,
//     and if this master's worker still runs it (cancelled or rescued
//     there), a sweep now tells the worker to stop (dropReleased);
//   - a worker drained or revoked through another master: a sweep now
//     applies the drain and closes the link of a revoked identity
//     (polled every fourth sweep, and every identityCheckEvery);
//   - users, tokens or secrets changed: the token cache is emptied at once
//     (a revoked token stops working now, not after the cache's ten
//     seconds) and a rotated join token taken.

// identityCheckEvery is how many sweeps apart the identities of the
// connected workers are checked against the store without a notification
// (a read of every identity: not every sweep).
const identityCheckEvery = 20

// notified is what a notification asked the next sweep to do.
type notified struct {
	workers, revoked, access atomic.Bool
	// ended: notifications of ends may have been missed (the store's
	// notifications restarted): the next sweep reads the watched jobs.
	ended atomic.Bool
}

// watcher is a store that tells a job's end only to the masters it
// concerns, unless one that neither accepted nor holds it watches it.
type watcher interface {
	Watch(ctx context.Context, id string) error
}

// notifier is a store that tells of the changes other masters make as
// they commit.
type notifier interface {
	Listen(ctx context.Context, c store.Changes) error
}

// sweepSoon asks for a sweep now rather than at the next tick.
func (m *Master) sweepSoon() {
	select {
	case m.sweepc <- struct{}{}:
	default:
	}
}

// followNotifications follows the store's notifications, when it gives
// them, until ctx ends.
func (m *Master) followNotifications(ctx context.Context) {
	n, ok := m.store.(notifier)
	if !ok {
		return
	}
	_ = n.Listen(ctx, store.Changes{
		Queued: func() {
			m.backlog.Store(true)
			m.kick()
		},
		Ended: func(id string) { m.endedElsewhere(ctx, id) },
		Worker: func(string) {
			m.notified.workers.Store(true)
			m.notified.revoked.Store(true)
			m.sweepSoon()
		},
		Access: func() {
			m.auth.Forget("")
			m.notified.access.Store(true)
			m.sweepSoon()
		},
		Resumed: func() {
			m.notified.ended.Store(true)
			m.sweepSoon()
		},
	})
}

// hearsEnds reports whether the store tells this master of the ends
// other masters record: the sweep then reads the jobs watched here only
// now and then, to cover a notification lost, rather than at every sweep.
func (m *Master) hearsEnds() bool {
	_, ok := m.store.(notifier)
	return ok
}

// endedElsewhere reacts to the end of job id, recorded by any master.
func (m *Master) endedElsewhere(ctx context.Context, id string) {
	m.mu.Lock()
	_, recording := m.recording[id]
	mine := m.heldHereLocked(id)
	if !recording && !mine {
		// Ended elsewhere: an entry here (queued when this master
		// accepted it) is stale. Gone, a subscription from now on reads
		// the store (Subscribe); one made before is answered below.
		delete(m.jobs, id)
	}
	m.mu.Unlock()
	if recording {
		return // this master's own end, which it publishes as it returns
	}
	if mine {
		// Its end is this master's to publish; if it did not record it
		// (a cancel or a rescue elsewhere), its worker must stop.
		m.sweepSoon()
		return
	}
	if !m.broker.hasWaiters(id) && !m.broker.hasSubscribers(id) {
		return
	}
	if sj, err := m.store.GetJob(ctx, id); err == nil && sj.Status != store.StatusQueued && sj.Status != store.StatusRunning {
		m.publishEnd(id, sj)
	}
}

// closeRevoked closes the links of this master's workers whose identity
// the store no longer trusts: revoked (through any master), or replaced
// by a new lineage. A worker revoked through this master is closed at
// once by RevokeWorker; this is for the others'.
func (m *Master) closeRevoked(ctx context.Context) {
	ids, err := m.store.ListWorkerIdentities(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.logStoreErr("read worker identities", err)
		}
		return
	}
	now := time.Now()
	trusted := make(map[string]string, len(ids)) // name → live lineage
	for _, id := range ids {
		if id.RevokedAt.IsZero() && id.Live(now) {
			trusted[id.Name] = id.ID
		}
	}
	var closed []string
	m.mu.Lock()
	for _, w := range m.workers {
		if w.session == nil || w.identity == "" || trusted[w.name] == w.identity {
			continue
		}
		w.session.Close()
		w.session = nil
		m.reindex(w)
		closed = append(closed, w.name)
	}
	m.mu.Unlock()
	for _, name := range closed {
		m.audit.Warn("worker link closed: its identity was revoked", "worker", name)
	}
}
