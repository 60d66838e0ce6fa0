package autoscale

import (
	"sort"
	"time"

	"github.com/grappe/grappe/api"
)

// Status is the autoscaler as GET /api/v1/autoscaler shows it.
func (a *Autoscaler) Status() *api.Autoscaler {
	p := a.cfg.Policy
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	out := &api.Autoscaler{
		Enabled: true, Provisioner: a.prov.Kind(),
		Policy: &api.AutoscalePolicy{
			Min: p.Min, Max: p.Max, MaxJobs: p.SlotsPerWorker,
			WaitMs: ms(p.Wait), BacklogMs: ms(p.Backlog), IdleMs: ms(p.Idle),
			UpCooldownMs: ms(p.UpCooldown), DownCooldownMs: ms(p.DownCooldown),
			MaxStartsPerMinute: p.MaxStartsPerMinute, JoinTimeoutMs: ms(p.JoinTimeout),
			Languages: p.Languages,
		},
		Workers: []api.AutoscaledWorker{},
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out.Desired, out.Actual = a.desired, a.actual
	out.Held, out.StartFailures = a.held, a.failures
	if !a.backoffTo.IsZero() && time.Now().Before(a.backoffTo) {
		t := a.backoffTo.UTC()
		out.BackoffUntil = &t
	}
	out.Languages = a.languages()
	for _, i := range a.sorted() {
		w := api.AutoscaledWorker{
			Name: i.name, Phase: string(i.phase), State: i.prov.State, Reason: i.reason,
			StartedAt: i.startedAt.UTC(), Restarts: i.prov.Restarts, PID: i.prov.PID, Log: i.prov.Log,
			Error: i.prov.Err,
		}
		if i.failed != "" {
			w.Error = i.failed
		}
		if !i.idleSince.IsZero() {
			t := i.idleSince.UTC()
			w.IdleSince = &t
		}
		out.Workers = append(out.Workers, w)
	}
	out.Decisions = a.decisions.newestFirst()
	return out
}

// languages is what started workers run, as configured or learned.
// Called with a.mu held.
func (a *Autoscaler) languages() []string {
	if len(a.cfg.Policy.Languages) > 0 {
		return a.cfg.Policy.Languages
	}
	set := map[string]bool{}
	for _, p := range a.profiles {
		for l := range p.Languages {
			set[l] = true
		}
	}
	out := make([]string, 0, len(set))
	for l := range set {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// Origins says, for each worker the autoscaler started and still has,
// which provisioner started it and why.
func (a *Autoscaler) Origins() map[string]api.WorkerOrigin {
	kind := a.prov.Kind()
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]api.WorkerOrigin, len(a.insts))
	for _, i := range a.insts {
		out[i.name] = api.WorkerOrigin{Provisioner: kind, Reason: i.reason, StartedAt: i.startedAt.UTC()}
	}
	return out
}

// Counts returns the desired and actual numbers of started workers, for
// the metrics.
func (a *Autoscaler) Counts() (desired, actual int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.desired, a.actual
}
