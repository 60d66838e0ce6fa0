package master

import (
	"context"
	"sync"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/httpapi"
	"github.com/grappe/grappe/internal/store"
)

// Stats keeps the last minutes of the cluster in fixed intervals, for the
// dashboard's charts: what was submitted and completed, how deep the queue
// was, how long the started jobs had waited.
const (
	statsInterval = 5 * time.Second
	statsPoints   = 120 // ten minutes
)

type statsRing struct {
	mu     sync.Mutex
	cur    api.StatsPoint
	waitN  int
	waitMs float64
	points []api.StatsPoint
}

func (s *statsRing) submitted() {
	s.mu.Lock()
	s.cur.Submitted++
	s.mu.Unlock()
}

func (s *statsRing) completed() {
	s.mu.Lock()
	s.cur.Completed++
	s.mu.Unlock()
}

func (s *statsRing) started(wait time.Duration) {
	s.mu.Lock()
	s.waitN++
	s.waitMs += float64(wait) / float64(time.Millisecond)
	s.mu.Unlock()
}

// close ends the current interval with the queue's and slots' state now.
func (s *statsRing) close(now time.Time, queued, running int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.cur
	p.Time, p.QueueDepth, p.Running = now.UTC(), queued, running
	if s.waitN > 0 {
		p.QueueWaitMs = s.waitMs / float64(s.waitN)
	}
	s.points = append(s.points, p)
	if len(s.points) > statsPoints {
		s.points = s.points[len(s.points)-statsPoints:]
	}
	s.cur, s.waitN, s.waitMs = api.StatsPoint{}, 0, 0
}

// merged is the last n intervals as one: their sums, the queue and the
// running jobs at the end, the mean of their queue waits.
func (s *statsRing) merged(n int) api.StatsPoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out api.StatsPoint
	waits := 0
	for _, p := range s.points[max(0, len(s.points)-n):] {
		out.Submitted += p.Submitted
		out.Completed += p.Completed
		out.QueueDepth, out.Running = p.QueueDepth, p.Running
		if p.QueueWaitMs > 0 {
			out.QueueWaitMs += p.QueueWaitMs
			waits++
		}
	}
	if waits > 0 {
		out.QueueWaitMs /= float64(waits)
	}
	return out
}

func (s *statsRing) snapshot() []api.StatsPoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]api.StatsPoint(nil), s.points...)
}

func (m *Master) statsLoop(ctx context.Context) {
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	perSample := int(historyEvery / statsInterval)
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			queued, running, err := m.store.CountActive(ctx)
			if err != nil && ctx.Err() == nil {
				m.logStoreErr("count active jobs", err)
			}
			m.stats.close(now, queued, running)
			if tick%perSample == 0 {
				m.sampleHistory(ctx, now, tick/perSample)
			}
		}
	}
}

// Stats returns the recent intervals, oldest first.
func (m *Master) Stats(ctx context.Context) *api.Stats {
	return &api.Stats{IntervalSeconds: int(statsInterval / time.Second), Points: m.stats.snapshot()}
}

// OwnerJobs counts each owner's jobs: in all (from the store), and queued
// and running now.
func (m *Master) OwnerJobs(ctx context.Context) (map[string]httpapi.OwnerJobs, error) {
	total, err := m.store.CountJobsByOwner(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]httpapi.OwnerJobs, len(total))
	for owner, n := range total {
		out[owner] = httpapi.OwnerJobs{Total: n}
	}
	queued, running, err := m.store.CountActiveByOwner(ctx)
	if err != nil {
		return nil, err
	}
	for owner, n := range queued {
		o := out[owner]
		o.Queued = n
		out[owner] = o
	}
	for owner, n := range running {
		o := out[owner]
		o.Running = n
		out[owner] = o
	}
	return out, nil
}

// observeFinished records a job that reached a terminal status.
func (m *Master) observeFinished(language, status, verdict string) {
	m.metrics.finished(language, status, verdict)
	m.stats.completed()
}

// observeResult records a job finished by its worker's result r: as
// observeFinished, plus the program's wall time when it ran (a compile
// error or a worker-side failure ran nothing and is not a run time).
// With test cases the run time is their sum; r.Run then repeats one of
// them (the deciding test) and is not added again.
func (m *Master) observeResult(language string, f store.Finish, r *clusterpb.Result) {
	m.observeFinished(language, f.Status, f.Verdict)
	if r.Error != "" || (r.Run == nil && len(r.Tests) == 0) {
		return
	}
	var ms int64
	for _, t := range r.Tests {
		ms += t.WallMs
	}
	if len(r.Tests) == 0 {
		ms = r.Run.WallMs
	}
	m.metrics.ran(language, time.Duration(ms)*time.Millisecond)
}
