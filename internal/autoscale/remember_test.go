package autoscale

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// memState is State in memory, shared by the autoscalers of a test as
// masters share their store.
type memState struct {
	mu      sync.Mutex
	started map[string]Started
}

func (s *memState) Load(context.Context) ([]Started, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.started)), nil
}

func (s *memState) Save(_ context.Context, st Started) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started[st.Name] = st
	return nil
}

func (s *memState) Delete(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.started, name)
	return nil
}

func (s *memState) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.started))
}

// flag is a Leader the test switches.
type flag struct{ on bool }

func (f *flag) Leads(context.Context) bool { return f.on }

// adoptingProv is fakeProv that can take back workers, as Exec does.
type adoptingProv struct{ *fakeProv }

func (p adoptingProv) Adopt(name string, _ time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[name] = true
}

func newRemembering(t *testing.T, pol Policy, c *fakeCluster, prov Provisioner, st State, l Leader) *Autoscaler {
	t.Helper()
	a, err := New(Config{Policy: pol, Provisioner: prov, Cluster: c, State: st, Leader: l,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The autoscaler of a master that stops leading (it died, or lost its
// lease) is taken over by another master's, which knows the workers the
// first started: it counts them, adopts them and stops them when the load
// falls, and never reuses their names.
func TestAutoscalerTakenOverRemembers(t *testing.T) {
	pol := Policy{Min: 2, Max: 4, Idle: 5 * time.Second, Wait: 5 * time.Second, UpCooldown: time.Second, DownCooldown: time.Second}
	c := newFakeCluster()
	st := &memState{started: map[string]Started{}}
	lead1, lead2 := &flag{on: true}, &flag{on: false}
	p1 := &fakeProv{cluster: c, running: map[string]bool{}}
	a1 := newRemembering(t, pol, c, p1, st, lead1)
	step(a1, 0)
	if got := p1.takeLog(); got != "start auto-1, start auto-2" {
		t.Fatalf("first master: %q", got)
	}
	if got := st.names(); !slices.Equal(got, []string{"auto-1", "auto-2"}) {
		t.Fatalf("remembered %v, want auto-1 and auto-2", got)
	}
	c.join("auto-1", 1)
	c.join("auto-2", 1)
	step(a1, time.Second)

	// The first master no longer leads: it does nothing, and a second
	// master's autoscaler takes the role.
	lead1.on, lead2.on = false, true
	step(a1, 2*time.Second)
	p2 := adoptingProv{&fakeProv{cluster: c, running: map[string]bool{}}}
	a2 := newRemembering(t, pol, c, p2, st, lead2)
	step(a2, 2*time.Second)
	if got := p1.takeLog() + p2.takeLog(); got != "" {
		t.Fatalf("starts or stops after the takeover: %q, want none (the minimum is running)", got)
	}
	if s := a2.Status(); s.Actual != 2 || len(s.Workers) != 2 {
		t.Fatalf("second master's autoscaler: actual %d, workers %+v; want the two it took over", s.Actual, s.Workers)
	}

	// More load: the new worker gets a new name.
	c.mu.Lock()
	c.queue = jobs(3, "bash", 0)
	for i := range c.queue {
		c.queue[i].Since = t0
	}
	c.mu.Unlock()
	step(a2, 10*time.Second)
	if got := p2.takeLog(); got != "start auto-3, start auto-4" {
		t.Fatalf("scale-up after the takeover: %q", got)
	}
	c.join("auto-3", 1)
	c.join("auto-4", 1)
	c.mu.Lock()
	c.queue = nil
	c.mu.Unlock()
	for _, n := range []string{"auto-1", "auto-2", "auto-3", "auto-4"} {
		c.set(n, 0)
	}
	step(a2, 11*time.Second)
	step(a2, 17*time.Second) // idle long enough: two are drained
	step(a2, 18*time.Second) // and stopped
	if got := p2.takeLog(); got != "stop auto-3, stop auto-4" && got != "stop auto-1, stop auto-2" {
		t.Fatalf("scale-down: %q", got)
	}
	if got := st.names(); len(got) != 2 {
		t.Fatalf("remembered after the scale-down: %v, want the two left", got)
	}
}

// A provisioner that cannot adopt (local workers died with their
// master): the remembered workers are forgotten (their names free
// again) and replaced at once, with no failure backoff.
func TestAutoscalerRestartReplacesWhatItCannotAdopt(t *testing.T) {
	pol := Policy{Min: 1, Max: 2, Idle: time.Minute, Wait: 5 * time.Second, UpCooldown: time.Second, DownCooldown: time.Second}
	c := newFakeCluster()
	st := &memState{started: map[string]Started{"auto-1": {Name: "auto-1", Provisioner: "fake", StartedAt: t0.Add(-time.Hour)}}}
	p := &fakeProv{cluster: c, running: map[string]bool{}}
	a := newRemembering(t, pol, c, p, st, nil)
	step(a, 0)
	got := p.takeLog()
	if got != "start auto-1" {
		t.Fatalf("after the restart: %q, want a worker started at once under the freed name", got)
	}
	if s := st.started["auto-1"]; s.Provisioner != "fake" || !s.StartedAt.Equal(t0) || s.Reason == "" {
		t.Fatalf("remembered %+v, want the new auto-1 with its reason", s)
	}
	if d := a.Status().Decisions; len(d) < 2 || !strings.Contains(d[len(d)-1].Reason, "cannot take back") {
		t.Fatalf("decisions %+v, want the forgotten worker explained first", d)
	}
}
