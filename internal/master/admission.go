package master

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grappe/grappe/internal/jobs"
)

// Backpressure (issue 16). A master that cannot keep up refuses new jobs
// with 503 and Retry-After rather than accept more than it can place: the
// jobs it accepted keep their place and run on time, and the clients slow
// down instead of the master collapsing under them. Two signs, each with
// a threshold:
//   - the dispatch lag: how long the oldest request for a dispatch round
//     (a job submitted, a slot freed, a worker joined) has waited for a
//     claim batch to serve it (to start and end). A healthy master serves
//     one in milliseconds, whatever the fleet's load (a batch with no
//     free slot ends at once, and one holds at most jobs.Config.ClaimBatch
//     jobs, so a long backlog is many short batches); a master behind
//     (its store slow, its CPU short) lets them wait;
//   - the queue depth of the cluster (the store's count of queued jobs),
//     read at most every depthReadEvery.

// depthReadEvery bounds how often submissions read the queue depth from
// the store.
const depthReadEvery = 250 * time.Millisecond

// admission decides whether the master takes new jobs now.
type admission struct {
	maxDepth int
	maxLag   time.Duration
	// asked is when the oldest wake-up of the dispatcher that no claim
	// batch has started to serve was made; serving, when the one the
	// batch in progress serves was (unix nanoseconds, 0: none).
	asked, serving atomic.Int64

	mu      sync.Mutex // one depth read at a time
	depth   atomic.Int64
	depthAt atomic.Int64 // when depth was read (unix nanoseconds)
}

// wake notes a request for a dispatch round.
func (a *admission) wake(now time.Time) {
	a.asked.CompareAndSwap(0, now.UnixNano())
}

// batchStarts takes the requests a claim batch starting now serves.
func (a *admission) batchStarts(now time.Time) {
	t := a.asked.Swap(0)
	if t == 0 {
		t = now.UnixNano() // the periodic round, or a batch after a full one
	}
	a.serving.Store(t)
}

// batchEnds notes the end of the batch in progress.
func (a *admission) batchEnds() { a.serving.Store(0) }

// lag is how long the oldest request for a dispatch round has waited.
func (a *admission) lag(now time.Time) time.Duration {
	oldest := int64(0)
	for _, t := range []int64{a.serving.Load(), a.asked.Load()} {
		if t != 0 && (oldest == 0 || t < oldest) {
			oldest = t
		}
	}
	if oldest == 0 {
		return 0
	}
	return max(now.Sub(time.Unix(0, oldest)), 0)
}

// queueDepth is the cluster's queued jobs as last read, read again when
// older than depthReadEvery. A read that fails keeps the last value: the
// submission itself will meet the store's trouble.
func (a *admission) queueDepth(ctx context.Context, now time.Time, count func(context.Context) (int, error)) int {
	if now.UnixNano()-a.depthAt.Load() < int64(depthReadEvery) || !a.mu.TryLock() {
		return int(a.depth.Load()) // fresh, or being read by another submission
	}
	defer a.mu.Unlock()
	if n, err := count(ctx); err == nil {
		a.depth.Store(int64(n))
		a.depthAt.Store(now.UnixNano())
	}
	return int(a.depth.Load())
}

// admit returns nil when the master takes a new job now, and the
// unavailable error with its Retry-After otherwise.
func (m *Master) admit(ctx context.Context) error {
	a, now := &m.admission, time.Now()
	if lag := a.lag(now); a.maxLag > 0 && lag > a.maxLag {
		m.metrics.refused("dispatch_lag")
		return &jobs.Error{Code: jobs.CodeUnavailable, RetryAfter: retryAfter(lag),
			Message: fmt.Sprintf("the master is behind (dispatch lag %s); retry later", lag.Round(time.Millisecond))}
	}
	if a.maxDepth <= 0 {
		return nil
	}
	depth := a.queueDepth(ctx, now, func(ctx context.Context) (int, error) {
		queued, _, err := m.store.CountActive(ctx)
		return queued, err
	})
	if depth >= a.maxDepth {
		m.metrics.refused("queue_depth")
		return &jobs.Error{Code: jobs.CodeUnavailable, RetryAfter: 5,
			Message: fmt.Sprintf("%d jobs are waiting (the limit is %d); retry later", depth, a.maxDepth)}
	}
	return nil
}

// retryAfter is the seconds a client refused for a lag should wait: the
// lag itself, within 1 to 30 seconds.
func retryAfter(lag time.Duration) int {
	return min(max(int(math.Ceil(lag.Seconds())), 1), 30)
}
