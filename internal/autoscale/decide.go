package autoscale

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/scheduler"
)

// This file is the policy as a pure function: decide looks at the queue,
// the workers and what the autoscaler remembers, and returns what to do.
// No clock, no I/O, no locks, so every rule is a row of a table test; the
// loop in autoscale.go gathers the input and carries out the plan.

// Phase is where a started worker is in its life.
type Phase string

const (
	// PhaseStarting: started (or being started), not yet connected.
	PhaseStarting Phase = "starting"
	// PhaseUp: connected to the master and counted.
	PhaseUp Phase = "up"
	// PhaseDraining: the autoscaler drained it to remove it; it is
	// stopped once it runs no job.
	PhaseDraining Phase = "draining"
	// PhaseStopping: its provisioner is stopping it.
	PhaseStopping Phase = "stopping"
)

// Action kinds.
const (
	ActStart   = "start"
	ActDrain   = "drain"
	ActUndrain = "undrain"
	ActStop    = "stop"
	// ActHold is recorded, not carried out: a scale-up the load asks for
	// and the policy holds back (maximum, rate, cooldown, backoff), or
	// jobs that no started worker could run.
	ActHold = "hold"
	// ActFail is recorded by the loop when a start fails.
	ActFail = "fail"
)

// QueuedJob is a waiting job as the autoscaler needs it.
type QueuedJob struct {
	Language string
	Version  string
	Labels   map[string]string
	// Since is when it (re)entered the queue.
	Since time.Time
}

// WorkerState is a worker as the master sees it. Maps are shared with the
// master and must not be modified.
type WorkerState struct {
	Name string
	// Connected: a live session and not lost.
	Connected bool
	Status    string // api.WorkerUp, WorkerDraining or WorkerLost
	// AdminDrain: drained through the master (by an admin or by us), as
	// opposed to draining because it is shutting down.
	AdminDrain bool
	Slots      int
	Running    int
	Languages  map[string][]string
	Labels     map[string]string
	// Testing are the languages whose self-test it still runs: its free
	// slots count for their jobs as capacity on its way.
	Testing map[string][]string
}

// Managed is a worker the autoscaler started, with what it has observed
// of it.
type Managed struct {
	Name      string
	Phase     Phase
	StartedAt time.Time
	// Busy: a start or stop of it is in progress.
	Busy bool
	// Worker is the master's view; nil when the master does not know it.
	Worker *WorkerState
	// IdleSince is when it last had no job (zero while it has one or has
	// not joined).
	IdleSince time.Time
	// AbsentSince is when it was last seen disconnected after joining
	// (zero while connected).
	AbsentSince time.Time
	// Failed says why its provisioner gave up on it; empty if it has not.
	Failed string
}

// Profile is what one started worker offered: its languages (and
// versions) and labels.
type Profile struct {
	Languages map[string][]string
	Labels    map[string]string
}

// Input is everything decide looks at.
type Input struct {
	Now     time.Time
	Policy  Policy
	Queue   []QueuedJob
	Workers []WorkerState
	Managed []Managed
	// Profiles are the started workers seen so far; none means the
	// autoscaler does not know yet what they run and assumes anything.
	Profiles []Profile
	// NamePrefix names new workers: prefix1, prefix2…
	NamePrefix string
	// PastNames are names the autoscaler used before: it may use them
	// again even if the master still lists them, as long as they are not
	// connected (the master keeps a stopped worker listed a while).
	PastNames map[string]bool

	// What the loop remembers between rounds. LastUp is the last start
	// for load, LastDown the last drain.
	LastUp, LastDown time.Time
	BacklogSince     time.Time
	RecentStarts     []time.Time
	Failures         int
	BackoffUntil     time.Time
}

// Action is one thing to do.
type Action struct {
	Kind   string
	Worker string
	Reason string
	// Failure marks a stop of a worker that failed to start or join; it
	// counts towards the start backoff.
	Failure bool
	// Load marks a start for load (not for the minimum): it starts the
	// scale-up cooldown.
	Load bool
}

// Plan is decide's answer.
type Plan struct {
	Actions []Action
	// Desired is how many started workers the policy wants; Actual how
	// many are connected and taking jobs.
	Desired, Actual int
	// BacklogSince is the new value of Input.BacklogSince.
	BacklogSince time.Time
	// Held says why a scale-up the load asks for is not happening; empty
	// when none is held back.
	Held string
}

// decide applies the policy to one observation.
func decide(in Input) Plan {
	p, now := in.Policy, in.Now
	var plan Plan
	// A failure found in this round starts the backoff now: no
	// replacement is started in the same breath.
	newFailures := 0
	stop := func(m *Managed, failure bool, format string, args ...any) {
		plan.Actions = append(plan.Actions, Action{Kind: ActStop, Worker: m.Name, Reason: fmt.Sprintf(format, args...), Failure: failure})
		if failure {
			newFailures++
		}
	}

	// 1. Failures, and drained workers that are done. What is left is
	// counted: starting workers as capacity on its way.
	counted, starting := 0, 0
	var up, draining []*Managed
	for i := range in.Managed {
		m := &in.Managed[i]
		connected := m.Worker != nil && m.Worker.Connected
		switch {
		case m.Phase == PhaseStopping:
		case m.Failed != "" && !m.Busy:
			stop(m, true, "its provisioner gave up: %s", m.Failed)
		case m.Phase == PhaseStarting && !m.Busy && now.Sub(m.StartedAt) > p.JoinTimeout:
			stop(m, true, "did not join the master within %s", p.JoinTimeout)
		case m.Phase == PhaseStarting:
			counted++
			starting++
		case !m.AbsentSince.IsZero() && now.Sub(m.AbsentSince) > p.JoinTimeout:
			stop(m, false, "disconnected from the master for over %s", p.JoinTimeout)
		case m.Phase == PhaseDraining:
			// Only a connected worker's count of running jobs is known;
			// a disconnected one is waited for (it may come back with
			// its jobs) until the absence above gives up on it.
			if connected && m.Worker.Running == 0 {
				stop(m, false, "drained, no job left")
			} else {
				draining = append(draining, m)
			}
		default: // PhaseUp
			counted++
			up = append(up, m)
			// Connected but announcing nothing yet (its first self-tests
			// run): its slots are on their way, as a starting worker's.
			// From its first announcement on, its free slots count for
			// the languages it announced.
			if connected && len(m.Worker.Languages) == 0 {
				starting++
			}
		}
	}

	// 2. The load: queued jobs a started worker could run, against the
	// free slots of the workers that could run them and the slots of
	// those starting.
	groups := groupQueue(in.Queue)
	capableQueued, oldest := 0, time.Duration(0)
	var incapable []string
	for _, g := range groups {
		if !canRun(in.Policy, in.Profiles, g.req) {
			if now.Sub(g.oldest) >= p.Wait {
				incapable = append(incapable, describe(g.req))
			}
			continue
		}
		capableQueued += g.n
		oldest = max(oldest, now.Sub(g.oldest))
	}
	free := freeSlots(in.Workers, groups)
	deficit := capableQueued - free - starting*p.SlotsPerWorker
	if deficit > 0 {
		plan.BacklogSince = in.BacklogSince
		if plan.BacklogSince.IsZero() {
			plan.BacklogSince = now
		}
	}
	loadNeed, why := 0, ""
	if deficit > 0 && (oldest >= p.Wait || now.Sub(plan.BacklogSince) >= p.Backlog) {
		loadNeed = (deficit + p.SlotsPerWorker - 1) / p.SlotsPerWorker
		why = fmt.Sprintf("%d queued jobs, %d free slots, oldest waited %s", capableQueued, free, oldest.Round(100*time.Millisecond))
	}

	// 3. Scale up: first take back workers being drained, then start.
	for _, m := range draining {
		if loadNeed == 0 || counted >= p.Max {
			break
		}
		if m.Worker != nil && m.Worker.Connected {
			plan.Actions = append(plan.Actions, Action{Kind: ActUndrain, Worker: m.Name, Reason: "load returned: " + why})
			loadNeed--
			counted++
		}
	}
	minNeed := max(0, p.Min-counted)
	wanted := min(p.Max, max(p.Min, counted+loadNeed))
	allowance := p.MaxStartsPerMinute
	for _, t := range in.RecentStarts {
		if now.Sub(t) < time.Minute {
			allowance--
		}
	}
	var held []string
	hold := func(s string) { held = append(held, s) }
	n, want := 0, wanted-counted
	if want > 0 {
		n = want
		if loadNeed > 0 && now.Sub(in.LastUp) < p.UpCooldown && minNeed < want {
			n = minNeed
			hold(fmt.Sprintf("cooldown of %s after a scale-up", p.UpCooldown))
		}
		if now.Before(in.BackoffUntil) || newFailures > 0 {
			n = 0
			hold(fmt.Sprintf("backing off after %d failed starts", in.Failures+newFailures))
		}
		if n > allowance {
			n = max(allowance, 0)
			hold(fmt.Sprintf("start rate limit: %d a minute", p.MaxStartsPerMinute))
		}
	}
	if loadNeed > 0 && counted+loadNeed > p.Max {
		// No counts in the text: a hold is recorded when its text
		// changes, and the queue changes every round.
		hold(fmt.Sprintf("the load asks for more workers than the maximum of %d", p.Max))
	}
	if len(incapable) > 0 {
		hold("no started worker runs the waiting " + strings.Join(incapable, ", ") + " jobs")
	}
	names := freeNames(in, n)
	for i := range n {
		act := Action{Kind: ActStart, Worker: names[i], Reason: why, Load: true}
		if i < minNeed {
			act.Reason, act.Load = fmt.Sprintf("below the minimum of %d workers", p.Min), false
		}
		plan.Actions = append(plan.Actions, act)
	}
	counted += n
	plan.Held = strings.Join(held, "; ")
	plan.Desired = counted + max(0, want-n) // held back, still wanted

	// 4. Scale down: workers idle for the idle time, while no job a
	// started worker could run is waiting and after the cooldowns.
	drained := 0
	if loadNeed == 0 && capableQueued == 0 && now.Sub(in.LastUp) >= p.DownCooldown && now.Sub(in.LastDown) >= p.DownCooldown {
		var idle []*Managed
		for _, m := range up {
			w := m.Worker
			if w != nil && w.Connected && w.Status == api.WorkerUp && w.Running == 0 &&
				!m.IdleSince.IsZero() && now.Sub(m.IdleSince) >= p.Idle {
				idle = append(idle, m)
			}
		}
		// Highest numbers first: the names in use stay small and stable.
		sort.Slice(idle, func(i, j int) bool { return nameLess(idle[j].Name, idle[i].Name) })
		for _, m := range idle {
			if counted <= p.Min {
				break
			}
			plan.Actions = append(plan.Actions, Action{Kind: ActDrain, Worker: m.Name,
				Reason: fmt.Sprintf("idle for %s (no job)", now.Sub(m.IdleSince).Round(time.Second))})
			counted--
			drained++
		}
	}

	plan.Desired -= drained
	for _, m := range up {
		if m.Worker != nil && m.Worker.Connected {
			plan.Actual++
		}
	}
	return plan
}

// queueGroup is queued jobs with the same requirements.
type queueGroup struct {
	req    scheduler.Requirements
	n      int
	oldest time.Time
}

func groupQueue(q []QueuedJob) []*queueGroup {
	byKey := map[string]*queueGroup{}
	var out []*queueGroup
	for _, j := range q {
		r := scheduler.Requirements{Language: j.Language, Version: j.Version, Labels: j.Labels}
		k := describe(r)
		g := byKey[k]
		if g == nil {
			g = &queueGroup{req: r, oldest: j.Since}
			byKey[k] = g
			out = append(out, g)
		}
		g.n++
		if j.Since.Before(g.oldest) {
			g.oldest = j.Since
		}
	}
	return out
}

// describe names requirements for humans: "python", "python 3.11 zone=a".
func describe(r scheduler.Requirements) string {
	s := r.Language
	if r.Version != "" {
		s += " " + r.Version
	}
	keys := make([]string, 0, len(r.Labels))
	for k := range r.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s += " " + k + "=" + r.Labels[k]
	}
	return s
}

// canRun says whether a worker the autoscaler starts could run jobs with
// these requirements: as a configured language list says, or as some
// started worker seen so far did; anything while none has been seen.
func canRun(p Policy, profiles []Profile, r scheduler.Requirements) bool {
	if len(p.Languages) > 0 {
		found := false
		for _, l := range p.Languages {
			if l == r.Language {
				found = true
			}
		}
		if !found {
			return false
		}
		r.Version = "" // a configured list says nothing of versions
	}
	if len(profiles) == 0 {
		return true
	}
	for _, pr := range profiles {
		w := scheduler.Worker{Languages: pr.Languages, Labels: pr.Labels}
		if len(p.Languages) > 0 {
			w.Languages = map[string][]string{r.Language: nil}
		}
		if w.Capable(r) {
			return true
		}
	}
	return false
}

// freeSlots counts the free slots of the workers taking jobs, each worker
// counting only up to the queued jobs it could run: a C worker's free slots
// do not absorb a Python backlog. A worker counts from its first
// announcement: the languages it still self-tests count as its own.
func freeSlots(ws []WorkerState, groups []*queueGroup) int {
	free := 0
	for i := range ws {
		w := &ws[i]
		if !w.Connected || w.Status != api.WorkerUp || w.Running >= w.Slots {
			continue
		}
		sw := scheduler.Worker{Languages: w.Languages, Labels: w.Labels}
		soon := scheduler.Worker{Languages: w.Testing, Labels: w.Labels}
		runnable := 0
		for _, g := range groups {
			if sw.Capable(g.req) || soon.Capable(g.req) {
				runnable += g.n
			}
		}
		free += min(w.Slots-w.Running, runnable)
	}
	return free
}

// freeNames picks n names prefix1, prefix2… not in use by a started worker
// nor by any worker the master knows: reusing a name of someone else's
// worker would take over its identity.
func freeNames(in Input, n int) []string {
	used := map[string]bool{}
	for _, m := range in.Managed {
		used[m.Name] = true
	}
	for _, w := range in.Workers {
		if w.Connected || !in.PastNames[w.Name] {
			used[w.Name] = true
		}
	}
	var out []string
	for i := 1; len(out) < n; i++ {
		name := in.NamePrefix + strconv.Itoa(i)
		if !used[name] {
			out = append(out, name)
		}
	}
	return out
}

// nameLess orders auto-2 before auto-10.
func nameLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}
