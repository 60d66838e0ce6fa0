// Package autoscale lets the master start and stop workers with the load.
//
// Three parts, kept apart so each can be reasoned about and tested alone:
//
//   - a Provisioner starts one worker by name, stops one, and lists those
//     it started: Local runs `grappe worker` processes on the master's
//     machine and supervises them, Exec runs an operator's commands that
//     start and stop a worker elsewhere (ssh, a cloud CLI, kubectl…);
//   - decide (decide.go) is the policy as a pure function of the queue, the
//     workers and what the autoscaler remembers;
//   - the Autoscaler is the loop: it observes the master every Interval,
//     asks decide, carries out the plan (starts and stops run in their own
//     goroutines, since a cloud start takes a minute), and keeps every
//     decision for the API and the dashboard.
//
// The autoscaler counts and stops only the workers it started. It removes
// a worker by draining it through the master first, and stops it only once
// the master says it runs no job: a scale-down never kills a job.
package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/grappe/grappe/api"
)

// Provisioner starts and stops workers. Implementations are safe for
// concurrent use.
type Provisioner interface {
	// Kind names it in decisions and the API: "local", "exec".
	Kind() string
	// Start starts a worker that joins the master as name. It returns once
	// the worker is launched, not once it has joined.
	Start(ctx context.Context, name string) error
	// Stop stops a worker it started: asks it to drain and exit, and
	// forces it when ctx ends. Stopping an unknown name is not an error.
	Stop(ctx context.Context, name string) error
	// List returns the workers it started and has not stopped.
	List() []Instance
}

// Instance states.
const (
	InstanceRunning    = "running"
	InstanceRestarting = "restarting" // it died; restarted after a backoff
	InstanceFailed     = "failed"     // it failed to start too often; given up
)

// Instance is a worker as its provisioner sees it.
type Instance struct {
	Name      string
	State     string
	StartedAt time.Time
	Restarts  int
	PID       int    // local only
	Log       string // where its output is kept
	Err       string // why it is restarting or failed
}

// Cluster is what the autoscaler needs from the master.
type Cluster interface {
	// Snapshot returns the queued jobs and the workers now.
	Snapshot() ([]QueuedJob, []WorkerState)
	// Drain stops (drain false: resumes) placing jobs on a worker; its
	// running jobs finish.
	Drain(ctx context.Context, name string, drain bool) error
	// Forget drops a worker that was stopped on purpose from the master's
	// list, rather than keeping it listed as lost. It reports false while
	// the worker is still connected.
	Forget(name string) bool
}

// Config configures an Autoscaler.
type Config struct {
	Policy      Policy
	Provisioner Provisioner
	Cluster     Cluster
	// NamePrefix names the workers it starts (default "auto-": auto-1…).
	NamePrefix string
	// Interval between two observations (default 1s).
	Interval time.Duration
	// ShutdownTimeout bounds stopping the started workers when Run ends
	// (default 30s); those still running then are killed.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// State remembers the started workers across restarts and masters;
	// nil remembers nothing (remember.go).
	State State
	// Leader gates every round: nil always leads.
	Leader Leader
}

// Autoscaler is the policy loop. Create it with New, run it with Run.
type Autoscaler struct {
	cfg  Config
	log  *slog.Logger
	prov Provisioner
	wg   sync.WaitGroup   // starts and stops in progress
	now  func() time.Time // the clock; a fake one in tests

	mu        sync.Mutex
	startCtx  context.Context // of starts; cancelled when Run ends
	stopCtx   context.Context // of stops; ShutdownTimeout after Run ends
	insts     map[string]*inst
	profiles  map[string]Profile // by worker name, kept after it left
	past      map[string]bool
	lastUp    time.Time
	lastDown  time.Time
	backlog   time.Time
	recent    []time.Time
	failures  int
	backoffTo time.Time
	held      string
	leading   bool // it led at the last round, and loaded State then
	desired   int
	actual    int
	decisions ring
}

// inst is a worker the autoscaler started.
type inst struct {
	name, reason string
	phase        Phase
	busy         bool
	startedAt    time.Time
	idleSince    time.Time
	absentSince  time.Time
	failed       string
	prov         Instance
}

// New checks the configuration and returns an Autoscaler.
func New(cfg Config) (*Autoscaler, error) {
	if cfg.Provisioner == nil || cfg.Cluster == nil {
		return nil, errors.New("autoscale: a Provisioner and a Cluster are required")
	}
	cfg.Policy.setDefaults()
	if err := cfg.Policy.validate(); err != nil {
		return nil, err
	}
	if cfg.NamePrefix == "" {
		cfg.NamePrefix = "auto-"
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Autoscaler{
		cfg: cfg, log: cfg.Logger.With("component", "autoscale"), prov: cfg.Provisioner,
		startCtx: context.Background(), stopCtx: context.Background(),
		insts: map[string]*inst{}, profiles: map[string]Profile{}, past: map[string]bool{},
		decisions: ring{max: 200}, now: time.Now,
	}, nil
}

// Run observes and acts every Interval until ctx ends, then stops the
// workers it started (they drain) within ShutdownTimeout.
func (a *Autoscaler) Run(ctx context.Context) error {
	startCtx, cancelStarts := context.WithCancel(context.Background())
	stopCtx, cancelStops := context.WithCancel(context.Background())
	defer cancelStops()
	a.mu.Lock()
	a.startCtx, a.stopCtx = startCtx, stopCtx
	a.mu.Unlock()
	p := a.cfg.Policy
	a.log.Info("autoscaler running", "provisioner", a.prov.Kind(), "min", p.Min, "max", p.Max,
		"slots", p.SlotsPerWorker, "wait", p.Wait, "backlog", p.Backlog, "idle", p.Idle)
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		if ctx.Err() == nil {
			a.tick(ctx, a.now())
		}
		select {
		case <-ctx.Done():
			// Starts in progress are abandoned; stops in progress (of
			// drained workers) get the shutdown time to finish.
			cancelStarts()
			timer := time.AfterFunc(a.cfg.ShutdownTimeout, cancelStops)
			a.wg.Wait()
			timer.Stop()
			a.stopAll()
			return nil
		case <-t.C:
		}
	}
}

// tick is one round: observe, decide, act.
func (a *Autoscaler) tick(ctx context.Context, now time.Time) {
	if !a.lead(ctx) {
		return
	}
	queue, workers := a.cfg.Cluster.Snapshot()
	a.mu.Lock()
	// Listed under a.mu, after any start that a.mu says has returned: a
	// worker just started is then in the list. (Provisioners never call
	// back into the autoscaler, so this cannot deadlock.)
	listed := a.prov.List()
	in, undrain := a.observe(now, queue, workers, listed)
	plan := decide(in)
	a.backlog = plan.BacklogSince
	a.desired, a.actual = plan.Desired, plan.Actual
	a.mu.Unlock()
	for _, name := range undrain {
		// A worker of ours that joins drained inherited the drain of an
		// earlier worker of that name, which the master still listed.
		if err := a.cfg.Cluster.Drain(ctx, name, false); err != nil {
			a.log.Warn("undrain a new worker", "worker", name, "err", err)
		}
	}
	for _, act := range plan.Actions {
		a.apply(ctx, now, act)
	}
	// A hold is recorded when its reason changes, not at every round.
	a.mu.Lock()
	if plan.Held != a.held {
		a.held = plan.Held
		if plan.Held != "" {
			a.record(now, Action{Kind: ActHold, Reason: plan.Held})
		}
	}
	a.mu.Unlock()
}

// lead reports whether this round runs, loading what State remembers when
// the autoscaler starts to lead: another master may have started and
// stopped workers meanwhile. A master that stops leading keeps its
// workers; their next leader takes them over.
func (a *Autoscaler) lead(ctx context.Context) bool {
	leads := a.cfg.Leader == nil || a.cfg.Leader.Leads(ctx)
	a.mu.Lock()
	switch {
	case !leads:
		if a.leading {
			a.log.Info("autoscaler paused: another master leads it")
		}
		a.leading = false
		a.mu.Unlock()
		return false
	case a.leading || a.cfg.State == nil:
		a.leading = true
		a.mu.Unlock()
		return true
	}
	gone, err := a.load(ctx)
	a.leading = err == nil
	a.mu.Unlock()
	if err != nil {
		a.log.Warn("autoscaler: load the workers it started", "err", err)
		return false
	}
	a.forgetGone(ctx, gone)
	return true
}

// observe updates what the autoscaler knows of its workers from the
// master's and the provisioner's views, and builds decide's input. Called
// with a.mu held.
func (a *Autoscaler) observe(now time.Time, queue []QueuedJob, workers []WorkerState, listed []Instance) (Input, []string) {
	byName := make(map[string]*WorkerState, len(workers))
	for i := range workers {
		byName[workers[i].Name] = &workers[i]
	}
	provByName := make(map[string]Instance, len(listed))
	for _, p := range listed {
		provByName[p.Name] = p
	}
	var undrain []string
	in := Input{
		Now: now, Policy: a.cfg.Policy, Queue: queue, Workers: workers,
		NamePrefix: a.cfg.NamePrefix, PastNames: a.past,
		LastUp: a.lastUp, LastDown: a.lastDown, BacklogSince: a.backlog,
		RecentStarts: a.recent, Failures: a.failures, BackoffUntil: a.backoffTo,
	}
	for _, i := range a.sorted() {
		w := byName[i.name]
		connected := w != nil && w.Connected
		p, ok := provByName[i.name]
		i.prov = p
		switch {
		case ok && p.State == InstanceFailed:
			i.failed = p.Err
		case !ok && !i.busy && i.phase != PhaseStopping:
			i.failed = "its provisioner no longer lists it"
		}
		if i.phase == PhaseStarting && !i.busy && connected {
			i.phase = PhaseUp
			a.failures, a.backoffTo = 0, time.Time{}
			a.log.Info("started worker joined", "worker", i.name, "after", now.Sub(i.startedAt).Round(time.Millisecond))
			if w.AdminDrain {
				undrain = append(undrain, i.name)
			}
		}
		switch {
		case !connected || w.Running > 0:
			i.idleSince = time.Time{}
		case i.idleSince.IsZero():
			i.idleSince = now
		}
		switch {
		case i.phase != PhaseUp && i.phase != PhaseDraining, connected:
			i.absentSince = time.Time{}
		case i.absentSince.IsZero():
			i.absentSince = now
		}
		// A worker that announces nothing yet (its self-tests run)
		// teaches nothing: an empty profile would say "runs nothing".
		if connected && len(w.Languages) > 0 {
			a.profiles[i.name] = Profile{Languages: w.Languages, Labels: w.Labels}
		}
		m := Managed{Name: i.name, Phase: i.phase, StartedAt: i.startedAt, Busy: i.busy,
			IdleSince: i.idleSince, AbsentSince: i.absentSince, Failed: i.failed}
		if w != nil {
			cp := *w
			m.Worker = &cp
		}
		in.Managed = append(in.Managed, m)
	}
	for _, p := range a.profiles {
		in.Profiles = append(in.Profiles, p)
	}
	// Forget starts older than the rate's window.
	keep := a.recent[:0]
	for _, t := range a.recent {
		if now.Sub(t) < time.Minute {
			keep = append(keep, t)
		}
	}
	a.recent = keep
	in.RecentStarts = keep
	return in, undrain
}

// apply carries out one action of a plan.
func (a *Autoscaler) apply(ctx context.Context, now time.Time, act Action) {
	switch act.Kind {
	case ActStart:
		a.mu.Lock()
		a.insts[act.Worker] = &inst{name: act.Worker, reason: act.Reason, phase: PhaseStarting, busy: true, startedAt: now}
		a.past[act.Worker] = true
		if act.Load {
			a.lastUp = now
		}
		a.recent = append(a.recent, now)
		a.record(now, act)
		startCtx := a.startCtx
		a.mu.Unlock()
		// Remembered before it starts: a master that dies during a
		// start leaves a name its successor knows.
		a.save(ctx, Started{Name: act.Worker, Provisioner: a.prov.Kind(), Reason: act.Reason, StartedAt: now})
		a.wg.Go(func() {
			err := a.prov.Start(startCtx, act.Worker)
			a.mu.Lock()
			defer a.mu.Unlock()
			if err == nil {
				if i := a.insts[act.Worker]; i != nil {
					i.busy = false
				}
				return
			}
			delete(a.insts, act.Worker)
			a.unsave(act.Worker)
			a.failed(a.now(), Action{Kind: ActFail, Worker: act.Worker, Reason: fmt.Sprintf("start failed: %v", err)})
		})
	case ActDrain, ActUndrain:
		drain := act.Kind == ActDrain
		err := a.cfg.Cluster.Drain(ctx, act.Worker, drain)
		a.mu.Lock()
		defer a.mu.Unlock()
		i := a.insts[act.Worker]
		if err != nil || i == nil {
			a.log.Warn("autoscale "+act.Kind+" failed", "worker", act.Worker, "err", err)
			return
		}
		if drain {
			i.phase = PhaseDraining
			a.lastDown = now
		} else {
			i.phase = PhaseUp
			i.idleSince = now // a fresh idle period before it can go again
		}
		a.record(now, act)
	case ActStop:
		a.mu.Lock()
		i := a.insts[act.Worker]
		if i == nil {
			a.mu.Unlock()
			return
		}
		i.phase, i.busy = PhaseStopping, true
		if act.Failure {
			a.failed(now, act)
		} else {
			a.record(now, act)
		}
		startCtx, stopCtx := a.startCtx, a.stopCtx
		a.mu.Unlock()
		a.wg.Go(func() {
			err := a.prov.Stop(stopCtx, act.Worker)
			if err == nil {
				a.forget(startCtx, act.Worker)
			}
			a.unsave(act.Worker)
			a.mu.Lock()
			delete(a.insts, act.Worker)
			if err != nil {
				// Reported, not retried: the worker may be left running,
				// listed by the master as a worker nobody started.
				a.record(a.now(), Action{Kind: ActFail, Worker: act.Worker, Reason: fmt.Sprintf("stop failed: %v", err)})
			}
			a.mu.Unlock()
		})
	}
}

// failed records a failed start and lengthens the backoff. Called with
// a.mu held.
func (a *Autoscaler) failed(now time.Time, act Action) {
	a.failures++
	a.backoffTo = now.Add(backoff(a.failures))
	act.Reason += fmt.Sprintf(" (%d failed in a row; next start not before %s)", a.failures, a.backoffTo.Format(time.TimeOnly))
	a.record(now, act)
}

// forget asks the master to drop a stopped worker; the worker's goodbye
// may take a moment to reach it.
func (a *Autoscaler) forget(ctx context.Context, name string) {
	for range 50 {
		if a.cfg.Cluster.Forget(name) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopAll stops every worker the provisioner started, at once, when the
// master stops.
func (a *Autoscaler) stopAll() {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, in := range a.prov.List() {
		a.mu.Lock()
		a.record(a.now(), Action{Kind: ActStop, Worker: in.Name, Reason: "the master is stopping"})
		a.mu.Unlock()
		wg.Go(func() {
			if err := a.prov.Stop(ctx, in.Name); err != nil {
				a.log.Warn("stop worker", "worker", in.Name, "err", err)
				return
			}
			a.unsave(in.Name)
		})
	}
	wg.Wait()
}

// record keeps and logs a decision. Called with a.mu held.
func (a *Autoscaler) record(now time.Time, act Action) {
	a.decisions.add(api.AutoscaleDecision{Time: now.UTC(), Action: act.Kind, Worker: act.Worker, Reason: act.Reason})
	level := slog.LevelInfo
	if act.Kind == ActFail || act.Failure {
		level = slog.LevelWarn
	}
	a.log.Log(context.Background(), level, "autoscale decision", "action", act.Kind, "worker", act.Worker, "reason", act.Reason)
}

// sorted returns the instances by name. Called with a.mu held.
func (a *Autoscaler) sorted() []*inst {
	out := make([]*inst, 0, len(a.insts))
	for _, i := range a.insts {
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return nameLess(out[i].name, out[j].name) })
	return out
}

// ring keeps the last max decisions.
type ring struct {
	max  int
	next int
	buf  []api.AutoscaleDecision
}

func (r *ring) add(d api.AutoscaleDecision) {
	if len(r.buf) < r.max {
		r.buf = append(r.buf, d)
		return
	}
	r.buf[r.next] = d
	r.next = (r.next + 1) % r.max
}

// newestFirst returns the decisions, the latest first.
func (r *ring) newestFirst() []api.AutoscaleDecision {
	out := make([]api.AutoscaleDecision, 0, len(r.buf))
	for i := range r.buf {
		out = append(out, r.buf[(r.next+len(r.buf)-1-i)%len(r.buf)])
	}
	return out
}
