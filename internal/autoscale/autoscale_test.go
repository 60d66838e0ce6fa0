package autoscale

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
)

// fakeCluster is a master's queue and workers, set by the test.
type fakeCluster struct {
	mu      sync.Mutex
	queue   []QueuedJob
	workers map[string]*WorkerState
	drains  []string
}

func newFakeCluster() *fakeCluster { return &fakeCluster{workers: map[string]*WorkerState{}} }

func (c *fakeCluster) Snapshot() ([]QueuedJob, []WorkerState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ws []WorkerState
	for _, w := range c.workers {
		ws = append(ws, *w)
	}
	return slices.Clone(c.queue), ws
}

func (c *fakeCluster) Drain(ctx context.Context, name string, drain bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.workers[name]
	if w == nil {
		return errors.New("no such worker")
	}
	w.AdminDrain = drain
	w.Status = map[bool]string{true: api.WorkerDraining, false: api.WorkerUp}[drain]
	c.drains = append(c.drains, map[bool]string{true: "drain ", false: "undrain "}[drain]+name)
	return nil
}

func (c *fakeCluster) Forget(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.workers[name]; w != nil && w.Connected {
		return false
	}
	delete(c.workers, name)
	return true
}

// join connects a worker of one slot.
func (c *fakeCluster) join(name string, running int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := worker(name, 1, running, bash)
	if old := c.workers[name]; old != nil && old.AdminDrain {
		w.AdminDrain, w.Status = true, api.WorkerDraining
	}
	c.workers[name] = &w
}

func (c *fakeCluster) set(name string, running int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.workers[name].Running = running
}

// fakeProv records starts and stops; a stop disconnects the worker.
type fakeProv struct {
	mu       sync.Mutex
	cluster  *fakeCluster
	running  map[string]bool
	log      []string
	startErr error
}

func (p *fakeProv) Kind() string { return "fake" }

func (p *fakeProv) Start(ctx context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, "start "+name)
	if p.startErr != nil {
		return p.startErr
	}
	p.running[name] = true
	return nil
}

func (p *fakeProv) Stop(ctx context.Context, name string) error {
	p.mu.Lock()
	p.log = append(p.log, "stop "+name)
	delete(p.running, name)
	p.mu.Unlock()
	p.cluster.mu.Lock()
	if w := p.cluster.workers[name]; w != nil {
		w.Connected = false
	}
	p.cluster.mu.Unlock()
	return nil
}

func (p *fakeProv) List() []Instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Instance
	for n := range p.running {
		out = append(out, Instance{Name: n, State: InstanceRunning})
	}
	return out
}

// takeLog returns the starts and stops so far, sorted: those of one
// round run concurrently.
func (p *fakeProv) takeLog() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	slices.Sort(p.log)
	s := strings.Join(p.log, ", ")
	p.log = nil
	return s
}

func newTestAutoscaler(t *testing.T, pol Policy) (*Autoscaler, *fakeCluster, *fakeProv) {
	t.Helper()
	c := newFakeCluster()
	p := &fakeProv{cluster: c, running: map[string]bool{}}
	a, err := New(Config{Policy: pol, Provisioner: p, Cluster: c, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return a, c, p
}

// step runs one round at t0+at and waits for its starts and stops.
func step(a *Autoscaler, at time.Duration) {
	a.now = func() time.Time { return t0.Add(at) }
	a.tick(context.Background(), t0.Add(at))
	a.wg.Wait()
}

func TestAutoscalerLifecycle(t *testing.T) {
	pol := Policy{Min: 1, Max: 3, Idle: 10 * time.Second, Wait: 5 * time.Second, UpCooldown: time.Second, DownCooldown: time.Second}
	a, c, p := newTestAutoscaler(t, pol)

	step(a, 0)
	if got := p.takeLog(); got != "start auto-1" {
		t.Fatalf("first round: %q", got)
	}
	c.join("auto-1", 1)
	step(a, time.Second)
	if st := a.Status(); st.Actual != 1 || st.Desired != 1 || st.Workers[0].Phase != string(PhaseUp) {
		t.Fatalf("after join: %+v", st)
	}

	// Load: five jobs waiting past the threshold.
	c.mu.Lock()
	c.queue = jobs(5, "bash", 0)
	for i := range c.queue {
		c.queue[i].Since = t0
	}
	c.mu.Unlock()
	step(a, 10*time.Second)
	if got := p.takeLog(); got != "start auto-2, start auto-3" {
		t.Fatalf("scale-up: %q", got)
	}
	o := a.Origins()
	if o["auto-2"].Provisioner != "fake" || !strings.Contains(o["auto-2"].Reason, "5 queued jobs") {
		t.Fatalf("origin of auto-2: %+v", o["auto-2"])
	}
	if st := a.Status(); st.Desired != 3 || st.Actual != 1 || !strings.Contains(st.Held, "maximum") {
		t.Fatalf("while starting: desired %d actual %d held %q", st.Desired, st.Actual, st.Held)
	}
	c.join("auto-2", 1)
	c.join("auto-3", 1)
	step(a, 11*time.Second)

	// The load is gone; the workers go idle, then two are drained and
	// stopped, the minimum stays.
	c.mu.Lock()
	c.queue = nil
	c.mu.Unlock()
	for _, n := range []string{"auto-1", "auto-2", "auto-3"} {
		c.set(n, 0)
	}
	step(a, 12*time.Second)
	step(a, 20*time.Second)
	if got := p.takeLog(); got != "" {
		t.Fatalf("stopped before the idle time: %q", got)
	}
	step(a, 23*time.Second)
	if got := strings.Join(c.drains, ", "); got != "drain auto-3, drain auto-2" {
		t.Fatalf("drains: %q", got)
	}
	step(a, 24*time.Second)
	if got := p.takeLog(); got != "stop auto-2, stop auto-3" {
		t.Fatalf("stops: %q", got)
	}
	st := a.Status()
	if len(st.Workers) != 1 || st.Workers[0].Name != "auto-1" || st.Desired != 1 || st.Actual != 1 {
		t.Fatalf("after scale-down: %+v", st)
	}
	c.mu.Lock()
	_, still := c.workers["auto-3"]
	c.mu.Unlock()
	if still {
		t.Error("a stopped worker was not forgotten by the master")
	}
	var kinds []string
	for _, d := range st.Decisions {
		kinds = append(kinds, d.Action+" "+d.Worker)
	}
	want := []string{"stop auto-3", "stop auto-2", "drain auto-2", "drain auto-3", "hold ", "start auto-3", "start auto-2", "start auto-1"}
	if !slices.Equal(sortedTail(kinds), sortedTail(want)) {
		t.Errorf("decisions (newest first): %q, want %q", kinds, want)
	}
}

// sortedTail sorts the first two entries (two stops made in parallel).
func sortedTail(s []string) []string {
	s = slices.Clone(s)
	if len(s) >= 2 {
		slices.Sort(s[:2])
	}
	return s
}

func TestAutoscalerFailedStartsBackOff(t *testing.T) {
	a, _, p := newTestAutoscaler(t, Policy{Min: 1, Max: 2})
	p.startErr = errors.New("no such binary")
	step(a, 0)
	st := a.Status()
	if st.StartFailures != 1 || st.Decisions[0].Action != ActFail || !strings.Contains(st.Decisions[0].Reason, "no such binary") {
		t.Fatalf("after a failed start: %+v", st)
	}
	a.mu.Lock()
	until := a.backoffTo
	a.mu.Unlock()
	if until.Sub(t0) < 4*time.Second {
		t.Fatalf("backoff until %v", until)
	}
	p.takeLog()
	step(a, time.Second) // within the backoff
	if got := p.takeLog(); got != "" {
		t.Fatalf("started during the backoff: %q", got)
	}
	if st := a.Status(); !strings.Contains(st.Held, "backing off") {
		t.Fatalf("held %q", st.Held)
	}
	p.startErr = nil
	step(a, time.Minute)
	if got := p.takeLog(); got != "start auto-1" {
		t.Fatalf("after the backoff: %q", got)
	}
}

func TestAutoscalerJoinTimeout(t *testing.T) {
	a, c, p := newTestAutoscaler(t, Policy{Min: 1, Max: 2, JoinTimeout: 30 * time.Second})
	step(a, 0)
	step(a, 31*time.Second) // never joined
	if got := p.takeLog(); got != "start auto-1, stop auto-1" {
		t.Fatalf("%q", got)
	}
	if st := a.Status(); st.StartFailures != 1 {
		t.Fatalf("failures %d", st.StartFailures)
	}
	// After the backoff it tries again under the same name, and a join
	// resets the count.
	step(a, 40*time.Second)
	c.join("auto-1", 0)
	step(a, 41*time.Second)
	if got := p.takeLog(); got != "start auto-1" {
		t.Fatalf("%q", got)
	}
	if st := a.Status(); st.StartFailures != 0 || st.Actual != 1 {
		t.Fatalf("after join: %+v", st)
	}
}

// TestAutoscalerUndrainsInheritedDrain: a worker restarted under a name
// the master still lists as drained is undrained when it joins.
func TestAutoscalerUndrainsInheritedDrain(t *testing.T) {
	a, c, _ := newTestAutoscaler(t, Policy{Min: 1, Max: 1})
	c.join("auto-1", 0)
	c.mu.Lock()
	c.workers["auto-1"].AdminDrain = true
	c.workers["auto-1"].Connected = false
	c.mu.Unlock()
	a.mu.Lock()
	a.past["auto-1"] = true
	a.mu.Unlock()
	step(a, 0)
	c.join("auto-1", 0)
	step(a, time.Second)
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.workers["auto-1"]; w.AdminDrain || !slices.Contains(c.drains, "undrain auto-1") {
		t.Fatalf("inherited drain kept: %+v, %q", w, c.drains)
	}
}

func TestAutoscalerRunStopsItsWorkers(t *testing.T) {
	a, _, p := newTestAutoscaler(t, Policy{Min: 2, Max: 2})
	a.cfg.Interval = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(p.List()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the minimum was not started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(p.List()); n != 0 {
		t.Fatalf("%d workers left running after Run", n)
	}
}

func TestRing(t *testing.T) {
	r := ring{max: 3}
	for i := range 5 {
		r.add(api.AutoscaleDecision{Worker: string(rune('a' + i))})
	}
	var got string
	for _, d := range r.newestFirst() {
		got += d.Worker
	}
	if got != "edc" {
		t.Fatalf("newest first: %q", got)
	}
}
