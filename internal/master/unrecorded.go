package master

import (
	"context"
	"sync"
	"time"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/workerlink"
)

// Results the store failed to record (its database unavailable, a disk
// error) are kept here and recorded again by every sweep until the store
// takes them. The worker keeps an unacknowledged result too, but sends it
// again only when it reconnects, and its link may well stay up through a
// database outage: without this the job would stay running until the
// worker's next reconnection.

// maxUnrecorded bounds the results kept; past it a result waits for its
// worker to reconnect and send it again.
const maxUnrecorded = 10000

type unrecordedResult struct {
	worker  store.WorkerRef
	result  *clusterpb.Result
	arrived time.Time
}

type unrecordedResults struct {
	mu sync.Mutex
	m  map[attemptKey]unrecordedResult
}

type attemptKey struct {
	id string
	n  int32
}

// keep keeps r for the next sweep, replacing an earlier copy of it.
func (u *unrecordedResults) keep(w store.WorkerRef, r *clusterpb.Result, arrived time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[attemptKey]unrecordedResult{}
	}
	k := attemptKey{r.Attempt.JobId, r.Attempt.Attempt}
	if _, ok := u.m[k]; !ok && len(u.m) >= maxUnrecorded {
		return
	}
	u.m[k] = unrecordedResult{worker: w, result: r, arrived: arrived}
}

// take empties the set and returns what it held.
func (u *unrecordedResults) take() []unrecordedResult {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]unrecordedResult, 0, len(u.m))
	for _, r := range u.m {
		out = append(out, r)
	}
	clear(u.m)
	return out
}

// recordAgain records the kept results again (those that fail once more
// are kept again) and acknowledges each recorded one to its worker if it
// is still linked here.
func (m *Master) recordAgain(ctx context.Context) {
	for _, u := range m.unrecorded.take() {
		if !m.record(ctx, u.worker, u.result, u.arrived) {
			continue
		}
		m.log.Info("result recorded after a store failure", "job", u.result.Attempt.JobId, "worker", u.worker.Name)
		m.mu.Lock()
		var sess workerLink
		if w := m.workers[u.worker.Name]; w != nil && w.identity == u.worker.Identity {
			sess = w.session
		}
		m.mu.Unlock()
		if sess != nil {
			sess.Send(workerlink.Ack(u.result.Attempt))
		}
	}
}
