package master

import (
	"context"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/store"
)

// The cluster's activity history, for charts that reach back further
// than the ten minutes of the stats ring and survive a restart: every
// historyEvery the master writes one sample of what it saw (the sum of
// the ring's last intervals) to the store, which keeps historyKeep of
// them. At 15 s that is 5,760 small rows a day per master. Reading
// downsamples: the points of a span are merged into steps.
const (
	historyEvery = 15 * time.Second
	historyKeep  = 24 * time.Hour
)

// The audit log keeps auditKeep of entries; a master trims it with its
// first sample and then once per auditTrimEvery samples (hourly). Any
// master may: the trim is one idempotent delete.
const (
	auditKeep      = 90 * 24 * time.Hour
	auditTrimEvery = int(time.Hour / historyEvery)
)

// sampleHistory writes the sample of the last historyEvery, the n-th
// since the master started. A failure is logged: the chart misses a
// point, nothing else.
func (m *Master) sampleHistory(ctx context.Context, now time.Time, n int) {
	if n%auditTrimEvery == 1 {
		if _, err := m.store.TrimAudit(ctx, now.Add(-auditKeep)); err != nil && ctx.Err() == nil {
			m.logStoreErr("trim the audit log", err)
		}
	}
	p := m.stats.merged(int(historyEvery / statsInterval))
	s := &store.StatsSample{
		Master: m.cfg.MasterID, Time: now.UTC(), Seconds: int(historyEvery / time.Second),
		QueueDepth: p.QueueDepth, Running: p.Running, Submitted: p.Submitted, Completed: p.Completed, QueueWaitMs: p.QueueWaitMs,
	}
	if err := m.store.AddStatsSample(ctx, s, now.Add(-historyKeep)); err != nil && ctx.Err() == nil {
		m.logStoreErr("write activity sample", err)
	}
}

// StatsHistory returns the cluster's activity since since, in points of
// step (a multiple of historyEvery), oldest first: per step the jobs
// submitted and completed through every master, the deepest queue and
// the most running jobs seen, and the mean queue wait. A step no sample
// fell in has no point.
func (m *Master) StatsHistory(ctx context.Context, since time.Time, step time.Duration) (*api.Stats, error) {
	samples, err := m.store.StatsSamples(ctx, since)
	if err != nil {
		return nil, err
	}
	return historyPoints(samples, step, time.Now()), nil
}

// historyPoints merges samples (oldest first) into points of step, each
// at the end of its step.
func historyPoints(samples []*store.StatsSample, step time.Duration, now time.Time) *api.Stats {
	out := &api.Stats{IntervalSeconds: int(step / time.Second), Points: []api.StatsPoint{}}
	var cur *api.StatsPoint
	var waits int
	for _, s := range samples {
		// Steps are aligned on the clock, not on since: the same sample
		// falls in the same step whatever the request's time.
		end := s.Time.Add(-time.Nanosecond).Truncate(step).Add(step).UTC()
		if cur == nil || !cur.Time.Equal(end) {
			out.Points = append(out.Points, api.StatsPoint{Time: end})
			cur, waits = &out.Points[len(out.Points)-1], 0
		}
		cur.Submitted += s.Submitted
		cur.Completed += s.Completed
		cur.QueueDepth = max(cur.QueueDepth, s.QueueDepth)
		cur.Running = max(cur.Running, s.Running)
		if s.QueueWaitMs > 0 {
			cur.QueueWaitMs = (cur.QueueWaitMs*float64(waits) + s.QueueWaitMs) / float64(waits+1)
			waits++
		}
	}
	// The last step is still filling: its end is in the future, and its
	// sums would read as a drop. It is shown at its last sample instead.
	if n := len(out.Points); n > 0 && out.Points[n-1].Time.After(now) {
		out.Points[n-1].Time = samples[len(samples)-1].Time
	}
	return out
}
