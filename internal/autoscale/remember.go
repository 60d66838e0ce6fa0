package autoscale

import (
	"context"
	"time"
)

// What the autoscaler remembers, and when it acts.
//
// A master that restarts, or another master that takes over the
// autoscaler's role, must know the workers started before: to stop them
// when the load falls, to count them against the maximum, and not to give
// their names to new ones. State keeps them (in the master's store); the
// autoscaler loads it whenever it starts to lead. A provisioner that can
// take back a worker it did not start in this process (Adopter: exec,
// whose workers live on other machines) adopts them; the others' (local
// workers are child processes, gone with the master that started them)
// are found unlisted and stopped, and their names retired.

// Started is a worker the autoscaler started and has not stopped.
type Started struct {
	Name, Provisioner, Reason string
	StartedAt                 time.Time
}

// State keeps the started workers. The master implements it over its
// store.
type State interface {
	Load(ctx context.Context) ([]Started, error)
	Save(ctx context.Context, s Started) error
	Delete(ctx context.Context, name string) error
}

// Leader says whether this master runs the autoscaler now: of several
// masters, one does. The master implements it with a lease in its store.
type Leader interface {
	Leads(ctx context.Context) bool
}

// Adopter is a Provisioner that can take back a worker started by an
// earlier process (or another master) with the same configuration.
type Adopter interface {
	Adopt(name string, startedAt time.Time)
}

// stateTimeout bounds one write or read of the state.
const stateTimeout = 5 * time.Second

// load takes back the workers State remembers that this autoscaler does
// not know, and returns those its provisioner cannot take back: they are
// gone (a local worker dies with the master that started it). Called with
// a.mu held, when it starts to lead.
func (a *Autoscaler) load(ctx context.Context) (gone []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	started, err := a.cfg.State.Load(ctx)
	if err != nil {
		return nil, err
	}
	adopter, _ := a.prov.(Adopter)
	for _, s := range started {
		a.past[s.Name] = true
		if a.insts[s.Name] != nil {
			continue
		}
		if adopter == nil || s.Provisioner != a.prov.Kind() {
			gone = append(gone, s.Name)
			a.record(a.now(), Action{Kind: ActStop, Worker: s.Name,
				Reason: "started by an earlier master process (" + s.Provisioner + "), which this one cannot take back"})
			continue
		}
		adopter.Adopt(s.Name, s.StartedAt)
		// Starting: the next observation makes it up if it is connected;
		// one that never comes back fails its join timeout and is stopped.
		a.insts[s.Name] = &inst{name: s.Name, reason: s.Reason, phase: PhaseStarting, startedAt: s.StartedAt}
		a.log.Info("autoscaled worker taken over", "worker", s.Name, "provisioner", s.Provisioner, "started", s.StartedAt)
	}
	return gone, nil
}

// forgetGone drops the remembered workers load found gone: from the
// master's list (their identities revoked, their names free) and from
// State.
func (a *Autoscaler) forgetGone(ctx context.Context, gone []string) {
	for _, name := range gone {
		a.cfg.Cluster.Forget(name)
		a.unsave(name)
	}
}

// save remembers a worker being started.
func (a *Autoscaler) save(ctx context.Context, s Started) {
	if a.cfg.State == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stateTimeout)
	defer cancel()
	if err := a.cfg.State.Save(ctx, s); err != nil {
		a.log.Warn("remember a started worker", "worker", s.Name, "err", err)
	}
}

// unsave forgets a worker that was stopped or failed to start.
func (a *Autoscaler) unsave(name string) {
	if a.cfg.State == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	if err := a.cfg.State.Delete(ctx, name); err != nil {
		a.log.Warn("forget a stopped worker", "worker", name, "err", err)
	}
}
