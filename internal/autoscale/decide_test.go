package autoscale

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func testPolicy() Policy {
	p := Policy{Min: 1, Max: 4, SlotsPerWorker: 1, Wait: 10 * time.Second, Backlog: 3 * time.Second,
		Idle: time.Minute, UpCooldown: 10 * time.Second, DownCooldown: 30 * time.Second,
		MaxStartsPerMinute: 10, JoinTimeout: 2 * time.Minute}
	p.setDefaults()
	return p
}

// jobs returns n queued jobs of lang that have waited for wait.
func jobs(n int, lang string, wait time.Duration) []QueuedJob {
	out := make([]QueuedJob, n)
	for i := range out {
		out[i] = QueuedJob{Language: lang, Since: t0.Add(-wait)}
	}
	return out
}

var bash = map[string][]string{"bash": {"5.2.15"}}

// worker is a connected worker of the master.
func worker(name string, slots, running int, langs map[string][]string) WorkerState {
	return WorkerState{Name: name, Connected: true, Status: api.WorkerUp, Slots: slots, Running: running, Languages: langs}
}

// up is a started worker, connected, idle since idle ago (0: busy).
func up(name string, running int, idle time.Duration) Managed {
	w := worker(name, 1, running, bash)
	m := Managed{Name: name, Phase: PhaseUp, StartedAt: t0.Add(-time.Hour), Worker: &w}
	if running == 0 {
		m.IdleSince = t0.Add(-idle)
	}
	return m
}

func starting(name string, ago time.Duration) Managed {
	return Managed{Name: name, Phase: PhaseStarting, StartedAt: t0.Add(-ago)}
}

func draining(name string, running int) Managed {
	m := up(name, running, 0)
	m.Phase = PhaseDraining
	m.Worker.Status = api.WorkerDraining
	m.Worker.AdminDrain = true
	return m
}

// input builds an Input whose master worker list holds the managed
// workers plus extra ones.
func input(p Policy, q []QueuedJob, managed []Managed, extra ...WorkerState) Input {
	in := Input{Now: t0, Policy: p, Queue: q, Managed: managed, NamePrefix: "auto-", LastUp: t0.Add(-time.Hour), LastDown: t0.Add(-time.Hour)}
	for _, m := range managed {
		if m.Worker != nil {
			in.Workers = append(in.Workers, *m.Worker)
		}
	}
	in.Workers = append(in.Workers, extra...)
	return in
}

// acts renders a plan's actions as "start auto-2, drain auto-3".
func acts(p Plan) string {
	var s []string
	for _, a := range p.Actions {
		s = append(s, a.Kind+" "+a.Worker)
	}
	return strings.Join(s, ", ")
}

func TestDecide(t *testing.T) {
	pol := testPolicy()
	with := func(f func(*Policy)) Policy { p := testPolicy(); f(&p); return p }
	known := []Profile{{Languages: bash}}
	tests := []struct {
		name     string
		in       Input
		want     string // actions
		held     string // substring of Held; "" means none
		desired  int
		actual   int
		failures []bool // Failure flag of each action, when checked
	}{
		{name: "nothing started: start the minimum", in: input(with(func(p *Policy) { p.Min = 2 }), nil, nil),
			want: "start auto-1, start auto-2", desired: 2},
		{name: "at the minimum, no load: nothing", in: input(pol, nil, []Managed{up("auto-1", 0, time.Second)}),
			desired: 1, actual: 1},
		{name: "young queue: wait for the thresholds", in: input(pol, jobs(5, "bash", time.Second), []Managed{up("auto-1", 1, 0)}),
			desired: 1, actual: 1},
		{name: "oldest job waited past the threshold", in: input(pol, jobs(2, "bash", 11*time.Second), []Managed{up("auto-1", 1, 0)}),
			want: "start auto-2, start auto-3", desired: 3, actual: 1},
		{name: "backlog sustained", in: func() Input {
			in := input(pol, jobs(1, "bash", time.Second), []Managed{up("auto-1", 1, 0)})
			in.BacklogSince = t0.Add(-3 * time.Second)
			return in
		}(), want: "start auto-2", desired: 2, actual: 1},
		{name: "several slots a worker: ceil(deficit/slots)", in: func() Input {
			in := input(with(func(p *Policy) { p.SlotsPerWorker = 4 }), jobs(9, "bash", time.Minute), []Managed{up("auto-1", 1, 0)})
			in.Workers[0].Slots = 1
			return in
		}(), want: "start auto-2, start auto-3, start auto-4", desired: 4, actual: 1},
		{name: "free slots absorb the queue", in: input(pol, jobs(2, "bash", time.Minute), []Managed{up("auto-1", 1, 0)},
			worker("manual", 4, 1, bash)), desired: 1, actual: 1},
		{name: "free slots of a worker that cannot run the jobs do not count", in: input(pol, jobs(2, "bash", time.Minute),
			[]Managed{up("auto-1", 1, 0)}, worker("c-only", 8, 0, map[string][]string{"c": {"12"}})),
			want: "start auto-2, start auto-3", desired: 3, actual: 1},
		{name: "slots of starting workers count as coming", in: input(pol, jobs(2, "bash", time.Minute),
			[]Managed{up("auto-1", 1, 0), starting("auto-2", time.Second), starting("auto-3", time.Second)}),
			desired: 3, actual: 1},
		{name: "slots of joined workers still self-testing count as coming", in: func() Input {
			in := input(pol, jobs(2, "bash", time.Minute), []Managed{up("auto-1", 1, 0), up("auto-2", 0, time.Second), up("auto-3", 0, time.Second)})
			for i := 1; i < 3; i++ {
				in.Managed[i].Worker.Languages = nil
				in.Workers[i].Languages = nil
			}
			return in
		}(), desired: 3, actual: 3},
		{name: "free slots of a worker still self-testing the language count", in: func() Input {
			in := input(pol, jobs(2, "go", time.Minute), []Managed{up("auto-1", 1, 0), up("auto-2", 0, time.Second)},
				worker("manual", 1, 0, bash))
			in.Workers[1].Testing = map[string][]string{"go": {"1.26"}}
			in.Workers[2].Testing = map[string][]string{"go": {"1.26"}}
			in.Profiles = []Profile{{Languages: map[string][]string{"go": {"1.26"}}}}
			return in
		}(), want: "", desired: 2, actual: 2},
		{name: "maximum caps the scale-up", in: input(pol, jobs(20, "bash", time.Minute), []Managed{up("auto-1", 1, 0), up("auto-2", 1, 0), up("auto-3", 1, 0)}),
			want: "start auto-4", held: "the load asks for more workers than the maximum of 4", desired: 4, actual: 3},
		{name: "at the maximum: held", in: input(pol, jobs(20, "bash", time.Minute), []Managed{up("auto-1", 1, 0), up("auto-2", 1, 0), up("auto-3", 1, 0), up("auto-4", 1, 0)}),
			held: "maximum", desired: 4, actual: 4},
		{name: "cooldown after a scale-up", in: func() Input {
			in := input(pol, jobs(5, "bash", time.Minute), []Managed{up("auto-1", 1, 0)})
			in.LastUp = t0.Add(-5 * time.Second)
			return in
		}(), held: "cooldown", desired: 4, actual: 1},
		{name: "cooldown does not hold the minimum back", in: func() Input {
			in := input(with(func(p *Policy) { p.Min = 2 }), jobs(5, "bash", time.Minute), []Managed{up("auto-1", 1, 0)})
			in.LastUp = t0.Add(-5 * time.Second)
			return in
		}(), want: "start auto-2", held: "cooldown", desired: 4, actual: 1},
		{name: "start rate: what is left of the minute", in: func() Input {
			in := input(pol, jobs(5, "bash", time.Minute), []Managed{up("auto-1", 1, 0)})
			for i := range 9 {
				in.RecentStarts = append(in.RecentStarts, t0.Add(-time.Duration(i+20)*time.Second))
			}
			in.RecentStarts = append(in.RecentStarts, t0.Add(-2*time.Minute)) // out of the window
			return in
		}(), want: "start auto-2", held: "rate", desired: 4, actual: 1},
		{name: "backoff after failed starts", in: func() Input {
			in := input(pol, jobs(5, "bash", time.Minute), nil)
			in.Failures, in.BackoffUntil = 2, t0.Add(time.Second)
			return in
		}(), held: "backing off after 2", desired: 4},
		{name: "language no started worker runs: held, not started", in: func() Input {
			in := input(pol, jobs(5, "java", time.Minute), []Managed{up("auto-1", 0, time.Second)})
			in.Profiles = known
			return in
		}(), held: "runs the waiting java jobs", desired: 1, actual: 1},
		{name: "languages unknown yet: assume it can", in: input(pol, jobs(1, "java", time.Minute), []Managed{up("auto-1", 1, 0)}),
			want: "start auto-2", desired: 2, actual: 1},
		{name: "configured languages win over what was seen", in: func() Input {
			in := input(with(func(p *Policy) { p.Languages = []string{"java"} }), jobs(1, "java", time.Minute), []Managed{up("auto-1", 1, 0)})
			in.Profiles = known
			return in
		}(), want: "start auto-2", desired: 2, actual: 1},
		{name: "a version started workers lack", in: func() Input {
			q := jobs(1, "bash", time.Minute)
			q[0].Version = "4"
			in := input(pol, q, []Managed{up("auto-1", 1, 0)})
			in.Profiles = known
			return in
		}(), held: "bash 4", desired: 1, actual: 1},
		{name: "labels started workers lack", in: func() Input {
			q := jobs(1, "bash", time.Minute)
			q[0].Labels = map[string]string{"gpu": "yes"}
			in := input(pol, q, []Managed{up("auto-1", 1, 0)})
			in.Profiles = known
			return in
		}(), held: "gpu=yes", desired: 1, actual: 1},
		{name: "idle past the idle time: drain, highest name first", in: input(pol, nil,
			[]Managed{up("auto-1", 0, 2*time.Minute), up("auto-2", 0, 2*time.Minute), up("auto-10", 0, 2*time.Minute)}),
			want: "drain auto-10, drain auto-2", desired: 1, actual: 3},
		{name: "not idle long enough", in: input(pol, nil, []Managed{up("auto-1", 0, 30*time.Second), up("auto-2", 0, 30*time.Second)}),
			desired: 2, actual: 2},
		{name: "the idle worker goes, the busy one stays", in: input(pol, nil, []Managed{up("auto-1", 0, 2*time.Minute), up("auto-2", 1, 0)}),
			want: "drain auto-1", desired: 1, actual: 2},
		{name: "the minimum stays even when idle", in: input(pol, nil, []Managed{up("auto-1", 0, time.Hour)}),
			desired: 1, actual: 1},
		{name: "no scale-down while jobs it could run wait", in: input(pol, jobs(1, "bash", time.Second),
			[]Managed{up("auto-1", 1, 0), up("auto-2", 0, 2*time.Minute)}), desired: 2, actual: 2},
		{name: "no scale-down during the down cooldown", in: func() Input {
			in := input(pol, nil, []Managed{up("auto-1", 0, 2*time.Minute), up("auto-2", 0, 2*time.Minute)})
			in.LastDown = t0.Add(-10 * time.Second)
			return in
		}(), desired: 2, actual: 2},
		{name: "no scale-down right after a scale-up", in: func() Input {
			in := input(pol, nil, []Managed{up("auto-1", 0, 2*time.Minute), up("auto-2", 0, 2*time.Minute)})
			in.LastUp = t0.Add(-10 * time.Second)
			return in
		}(), desired: 2, actual: 2},
		{name: "drained with a job still running: wait", in: input(pol, nil, []Managed{up("auto-1", 0, time.Second), draining("auto-2", 1)}),
			desired: 1, actual: 1},
		{name: "drained and idle: stop", in: input(pol, nil, []Managed{up("auto-1", 0, time.Second), draining("auto-2", 0)}),
			want: "stop auto-2", desired: 1, actual: 1, failures: []bool{false}},
		{name: "load returns while draining: undrain first", in: input(pol, jobs(3, "bash", time.Minute), []Managed{up("auto-1", 1, 0), draining("auto-2", 1)}),
			want: "undrain auto-2, start auto-3, start auto-4", desired: 4, actual: 1},
		{name: "did not join in time: stopped as a failure, not replaced at once", in: input(pol, nil, []Managed{starting("auto-1", 3*time.Minute)}),
			want: "stop auto-1", held: "backing off after 1", desired: 1, failures: []bool{true}},
		{name: "a start in progress is not timed out", in: func() Input {
			m := starting("auto-1", 3*time.Minute)
			m.Busy = true
			return input(pol, nil, []Managed{m})
		}(), desired: 1},
		{name: "provisioner gave up: stopped as a failure", in: func() Input {
			m := up("auto-1", 0, time.Second)
			m.Failed = "exited 5 times"
			in := input(pol, nil, []Managed{m})
			in.Failures, in.BackoffUntil = 5, t0.Add(time.Minute)
			return in
		}(), want: "stop auto-1", held: "backing off after 6", desired: 1, failures: []bool{true}},
		{name: "disconnected too long: stopped and replaced", in: func() Input {
			m := up("auto-1", 0, 0)
			m.Worker.Connected, m.AbsentSince = false, t0.Add(-3*time.Minute)
			return input(pol, nil, []Managed{m})
		}(), want: "stop auto-1, start auto-2", desired: 1, failures: []bool{false, false}},
		{name: "briefly disconnected: still counted", in: func() Input {
			m := up("auto-1", 0, 0)
			m.Worker.Connected, m.AbsentSince = false, t0.Add(-3*time.Second)
			return input(pol, nil, []Managed{m})
		}(), desired: 1},
		{name: "names of others' workers are never taken", in: input(pol, nil, nil, worker("auto-1", 1, 0, bash)),
			want: "start auto-2", desired: 1},
		{name: "its own past names are reused when free", in: func() Input {
			gone := worker("auto-1", 1, 0, bash)
			gone.Connected, gone.Status = false, api.WorkerLost
			in := input(pol, nil, nil, gone)
			in.PastNames = map[string]bool{"auto-1": true}
			return in
		}(), want: "start auto-1", desired: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := decide(tt.in)
			if got := acts(plan); got != tt.want {
				t.Errorf("actions = %q, want %q", got, tt.want)
			}
			switch {
			case tt.held == "" && plan.Held != "":
				t.Errorf("held %q, want none", plan.Held)
			case !strings.Contains(plan.Held, tt.held):
				t.Errorf("held %q, want it to mention %q", plan.Held, tt.held)
			}
			if plan.Desired != tt.desired || plan.Actual != tt.actual {
				t.Errorf("desired/actual = %d/%d, want %d/%d", plan.Desired, plan.Actual, tt.desired, tt.actual)
			}
			for i, f := range tt.failures {
				if i < len(plan.Actions) && plan.Actions[i].Failure != f {
					t.Errorf("action %d (%s) failure = %v, want %v", i, plan.Actions[i].Kind, plan.Actions[i].Failure, f)
				}
			}
			for _, a := range plan.Actions {
				if a.Reason == "" {
					t.Errorf("%s %s without a reason", a.Kind, a.Worker)
				}
			}
		})
	}
}

// TestDecideBacklogClock checks the backlog's clock: set when the queue
// first exceeds the free slots, kept while it does, cleared when not.
func TestDecideBacklogClock(t *testing.T) {
	pol := testPolicy()
	in := input(pol, jobs(3, "bash", 0), []Managed{up("auto-1", 1, 0)})
	if p := decide(in); !p.BacklogSince.Equal(t0) || len(p.Actions) != 0 {
		t.Fatalf("first excess: since %v, actions %q", p.BacklogSince, acts(p))
	}
	in.BacklogSince = t0.Add(-time.Second)
	if p := decide(in); !p.BacklogSince.Equal(t0.Add(-time.Second)) {
		t.Fatalf("kept: since %v", p.BacklogSince)
	}
	in.Queue = nil
	if p := decide(in); !p.BacklogSince.IsZero() {
		t.Fatalf("cleared: since %v", p.BacklogSince)
	}
}

// TestDecideReasons checks that a start for load says what the load was.
func TestDecideReasons(t *testing.T) {
	p := decide(input(testPolicy(), jobs(3, "bash", 12*time.Second), []Managed{up("auto-1", 1, 0)}))
	if len(p.Actions) == 0 {
		t.Fatal("no start")
	}
	want := "3 queued jobs, 0 free slots, oldest waited 12s"
	if r := p.Actions[0].Reason; r != want {
		t.Errorf("reason %q, want %q", r, want)
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 0, 1: 5 * time.Second, 2: 10 * time.Second, 3: 20 * time.Second, 7: 5 * time.Minute, 30: 5 * time.Minute} {
		if got := backoff(n); got != want {
			t.Errorf("backoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, p := range []Policy{{Min: -1}, {Min: 3, Max: 2}, {Max: 2, SlotsPerWorker: -1}, {Max: 1, Idle: -time.Second}} {
		p.setDefaults()
		if err := p.validate(); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	p := Policy{Min: 0, Max: 3}
	p.setDefaults()
	if err := p.validate(); err != nil {
		t.Errorf("scale to zero refused: %v", err)
	}
}

func TestNameLess(t *testing.T) {
	names := []string{"auto-2", "auto-10", "auto-1"}
	for i, w := range []string{"auto-1", "auto-2", "auto-10"} {
		got := names[0]
		for _, n := range names {
			if nameLess(n, got) {
				got = n
			}
		}
		if got != w {
			t.Errorf("%d: smallest %q, want %q", i, got, w)
		}
		names = remove(names, got)
	}
}

func remove(s []string, x string) []string {
	var out []string
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

func ExampleAction() {
	fmt.Println(acts(Plan{Actions: []Action{{Kind: ActStart, Worker: "auto-1"}, {Kind: ActDrain, Worker: "auto-2"}}}))
	// Output: start auto-1, drain auto-2
}
