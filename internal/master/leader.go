package master

import (
	"context"
	"sync"
	"time"

	"github.com/grappe/grappe/internal/autoscale"
	"github.com/grappe/grappe/internal/store"
)

// Leadership. Of several masters on one database, one at a time gives
// back expired leases and fails the jobs no worker can run (the sweeper),
// and one runs the autoscaler: each role is a lease row in the store
// (store.Lead), taken when free or expired, renewed by its holder every
// quarter of a lease, and given up when the master stops. A master that
// cannot reach the database stops leading at its next renewal, before its
// lease runs out.

// role is one lease this master may hold.
type role struct {
	name string

	mu    sync.Mutex
	since time.Time // when this master took it; zero while it does not hold it
	tried time.Time // the last Lead call
}

// leadLease is how long a role is held without renewal: a dead leader is
// replaced within it.
func (m *Master) leadLease() time.Duration {
	return max(m.cfg.WorkerTimeout, time.Second)
}

// leads reports whether this master holds r at now, taking or renewing
// the lease when a quarter of it has passed since the last try.
func (m *Master) leads(ctx context.Context, r *role, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	lease := m.leadLease()
	if now.Sub(r.tried) < lease/4 {
		return !r.since.IsZero()
	}
	r.tried = now
	ok, err := m.store.Lead(ctx, r.name, m.cfg.MasterID, now.UTC(), now.Add(lease).UTC())
	if err != nil && ctx.Err() == nil {
		m.logStoreErr("take or renew a role", err, "role", r.name)
	}
	switch {
	case ok && r.since.IsZero():
		r.since = now
		m.log.Info("this master leads", "role", r.name, "master", m.cfg.MasterID)
	case !ok && !r.since.IsZero():
		r.since = time.Time{}
		m.log.Warn("this master no longer leads", "role", r.name, "master", m.cfg.MasterID)
	}
	return ok
}

// ledFor is how long this master has held r without a break; zero while
// it does not hold it.
func (r *role) ledFor(now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.since.IsZero() {
		return 0
	}
	return now.Sub(r.since)
}

// resign gives up the roles this master holds, so that another master
// takes them at once rather than after a lease. Called when it stops.
func (m *Master) resign(ctx context.Context) {
	for _, r := range []*role{&m.sweeper, &m.autoscaleRole} {
		r.mu.Lock()
		held := !r.since.IsZero()
		r.since = time.Time{}
		r.mu.Unlock()
		if !held {
			continue
		}
		if err := m.store.Resign(ctx, r.name, m.cfg.MasterID); err != nil {
			m.log.Warn("give up a role", "role", r.name, "err", err)
		}
	}
}

// autoscaleLeader is the master as the autoscaler's Leader.
type autoscaleLeader struct{ m *Master }

var _ autoscale.Leader = autoscaleLeader{}

func (l autoscaleLeader) Leads(ctx context.Context) bool {
	return l.m.leads(ctx, &l.m.autoscaleRole, time.Now())
}

// autoscaleState keeps the autoscaler's workers in the store.
type autoscaleState struct{ m *Master }

var _ autoscale.State = autoscaleState{}

func (s autoscaleState) Load(ctx context.Context) ([]autoscale.Started, error) {
	rows, err := s.m.store.ListAutoscaled(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]autoscale.Started, 0, len(rows))
	for _, r := range rows {
		out = append(out, autoscale.Started{Name: r.Name, Provisioner: r.Provisioner, Reason: r.Reason, StartedAt: r.StartedAt})
	}
	return out, nil
}

func (s autoscaleState) Save(ctx context.Context, st autoscale.Started) error {
	return s.m.store.PutAutoscaled(ctx, &store.Autoscaled{
		Name: st.Name, Provisioner: st.Provisioner, Master: s.m.cfg.MasterID, Reason: st.Reason, StartedAt: st.StartedAt.UTC(),
	})
}

func (s autoscaleState) Delete(ctx context.Context, name string) error {
	return s.m.store.DeleteAutoscaled(ctx, name)
}
