package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/store"
)

// The core must stay free of transports: the adapters own them.
func TestNoTransportDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/grappe/grappe/internal/jobs").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "net/http" || strings.HasPrefix(dep, "google.golang.org/grpc") {
			t.Errorf("internal/jobs depends on %s", dep)
		}
	}
}

func TestSubmitDispatchFinish(t *testing.T) {
	h := newHarness(t)
	w1 := h.connect("w1", 2)
	j := h.submit("alice")
	if j.Status != store.StatusQueued || j.MaxAttempts != 3 || j.Seq == 0 {
		t.Fatalf("submitted: %+v", j)
	}
	if n := h.dispatch(); n != 1 {
		t.Fatalf("dispatch started %d jobs, want 1", n)
	}
	started := h.want(j.ID, store.StatusRunning, 1, "w1")
	if started.Master != "m1" || !started.LeaseUntil.Equal(h.clock.Now().Add(leaseTTL)) {
		t.Errorf("running job: master %q lease %v", started.Master, started.LeaseUntil)
	}
	if got := runningOn(w1); !slices.Equal(got, []string{j.ID}) {
		t.Errorf("w1 runs %v", got)
	}
	done, err := h.finish(w1, j.ID, 1)
	if err != nil || done.Status != store.StatusDone || done.Version != "3.11.2" {
		t.Fatalf("Finish: %+v, %v", done, err)
	}
	// The same result again (a retried send) is stale, and dropped.
	if _, err := h.finish(w1, j.ID, 1); !errors.Is(err, jobs.ErrStale) {
		t.Errorf("second result: %v, want ErrStale", err)
	}
	if got := h.events.statuses(j.ID); !slices.Equal(got, []string{"queued", "running", "done"}) {
		t.Errorf("events %v", got)
	}
}

func TestIdempotentSubmit(t *testing.T) {
	h := newHarness(t)
	key := func(s *jobs.Submission) { s.IdempotencyKey = "k1" }
	first := h.submit("alice", key)
	again := h.submit("alice", key)
	if again.ID != first.ID {
		t.Errorf("retried submission made job %s, want %s", again.ID, first.ID)
	}
	if other := h.submit("bob", key); other.ID == first.ID {
		t.Error("another owner's key found alice's job")
	}
}

func TestSubmitRefusals(t *testing.T) {
	h := newHarness(t, func(c *jobs.Config) { c.MaxQueuedPerUser = 2 })
	for _, tc := range []struct {
		name  string
		s     jobs.Submission
		code  string
		field string
	}{
		{"no owner", jobs.Submission{Language: "python"}, jobs.CodeInvalid, "owner"},
		{"no language", jobs.Submission{Owner: "alice"}, jobs.CodeInvalid, "language"},
		{"negative attempts", jobs.Submission{Owner: "alice", Language: "c", MaxAttempts: -1}, jobs.CodeInvalid, "max_attempts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.core.Submit(t.Context(), tc.s)
			var e *jobs.Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Field != tc.field {
				t.Errorf("Submit: %v, want %s on %s", err, tc.code, tc.field)
			}
		})
	}
	t.Run("quota", func(t *testing.T) {
		h.submit("alice")
		h.submit("alice")
		_, err := h.core.Submit(t.Context(), jobs.Submission{Owner: "alice", Language: "python"})
		if !errors.Is(err, jobs.ErrRateLimited) {
			t.Fatalf("third job: %v, want rate_limited", err)
		}
		h.submit("bob") // another owner is not affected
		// A job leaving the queue frees a place.
		h.connect("w1", 1)
		h.dispatch()
		h.submit("alice")
	})
}

// A worker that goes silent loses its attempts when their lease expires;
// they run elsewhere, and its late result is dropped.
func TestLostWorkerRescue(t *testing.T) {
	h := newHarness(t)
	w1 := h.connect("w1", 1)
	j := h.submit("alice")
	h.dispatch()
	h.disconnect("w1")
	w2 := h.connect("w2", 1)

	h.live(leaseTTL - time.Second) // w2 beats, w1 is silent: not yet
	h.want(j.ID, store.StatusRunning, 1, "w1")
	h.live(2 * time.Second)
	rescued := h.want(j.ID, store.StatusQueued, 1, "w1")
	if rescued.Error != jobs.ReasonLost {
		t.Errorf("rescued job error %q", rescued.Error)
	}

	h.dispatch()
	h.want(j.ID, store.StatusRunning, 2, "w2")
	if _, err := h.finish(w1, j.ID, 1); !errors.Is(err, jobs.ErrStale) {
		t.Errorf("w1's late result: %v, want ErrStale", err)
	}
	if _, err := h.finish(w2, j.ID, 2); err != nil {
		t.Fatal(err)
	}
	h.want(j.ID, store.StatusDone, 2, "w2")
}

// Heartbeats keep the lease however long the job runs.
func TestHeartbeatsKeepLeases(t *testing.T) {
	h := newHarness(t)
	h.connect("w1", 1)
	j := h.submit("alice")
	h.dispatch()
	h.live(10 * leaseTTL)
	h.want(j.ID, store.StatusRunning, 1, "w1")
}

// A worker whose master died reconnects to another master in time: it
// keeps its attempts (no rerun), the new master holds them, and its result
// is taken there. Too late, its attempt was rescued: it must drop it.
func TestReconnectReadoption(t *testing.T) {
	a := newHarness(t)
	w1 := a.connect("w1", 2)
	kept := a.submit("alice")
	a.dispatch()

	b := a.another("m2")
	b.adopt(w1)
	drop, err := b.core.Reattach(t.Context(), w1.ref, []jobs.AttemptRef{{JobID: kept.ID, Attempt: 1}, {JobID: "unknown", Attempt: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(drop) != 1 || drop[0].JobID != "unknown" {
		t.Errorf("Reattach dropped %v, want only the unknown job", drop)
	}
	// Master a is gone; b's heartbeats keep the attempt.
	b.live(3 * leaseTTL)
	held := b.want(kept.ID, store.StatusRunning, 1, "w1")
	if held.Master != "m2" {
		t.Errorf("attempt held by %q, want m2", held.Master)
	}
	w1b := b.links.workers["w1"]
	if _, err := b.finish(w1b, kept.ID, 1); err != nil {
		t.Fatalf("result through m2: %v", err)
	}
	if n := a.links.assigned[kept.ID] + b.links.assigned[kept.ID]; n != 1 {
		t.Errorf("job sent %d times, want once", n)
	}

	// Another job; w1 comes back only after its lease expired and the
	// job ran elsewhere.
	late := b.submit("alice")
	b.dispatch()
	b.disconnect("w1")
	b.connect("w2", 1)
	b.live(leaseTTL + time.Second)
	b.dispatch()
	b.want(late.ID, store.StatusRunning, 2, "w2")
	b.connect("w1", 2)
	drop, err = b.core.Reattach(t.Context(), w1.ref, []jobs.AttemptRef{{JobID: late.ID, Attempt: 1}})
	if err != nil || len(drop) != 1 {
		t.Errorf("late Reattach: drop %v, %v; want the rescued attempt", drop, err)
	}
	b.want(late.ID, store.StatusRunning, 2, "w2")
}

func TestCancel(t *testing.T) {
	h := newHarness(t)
	w1 := h.connect("w1", 1)

	queued := h.submit("alice")
	running := h.submit("alice")
	h.links.mu.Lock()
	w1.slots = 0 // so that only the second is dispatched, below
	h.links.mu.Unlock()
	got, err := h.core.Cancel(t.Context(), queued.ID, "alice")
	if err != nil || got.Status != store.StatusCancelled || got.Error != "cancelled by alice" {
		t.Fatalf("cancel queued: %+v, %v", got, err)
	}

	h.links.mu.Lock()
	w1.slots = 1
	h.links.mu.Unlock()
	h.dispatch()
	h.want(running.ID, store.StatusRunning, 1, "w1")
	got, err = h.core.Cancel(t.Context(), running.ID, "admin")
	if err != nil || got.Status != store.StatusCancelled {
		t.Fatalf("cancel running: %+v, %v", got, err)
	}
	if !slices.Equal(w1.cancelled, []string{running.ID}) {
		t.Errorf("worker told to cancel %v", w1.cancelled)
	}
	if _, err := h.finish(w1, running.ID, 1); !errors.Is(err, jobs.ErrStale) {
		t.Errorf("result after the cancel: %v, want ErrStale", err)
	}
	// Cancelling a finished job changes nothing.
	again, err := h.core.Cancel(t.Context(), running.ID, "bob")
	if err != nil || again.Error != "cancelled by admin" {
		t.Errorf("second cancel: %+v, %v", again, err)
	}
	if _, err := h.core.Cancel(t.Context(), "nope", "alice"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("cancel unknown: %v, want not_found", err)
	}
}

// A result and a cancel at the same moment, through two masters: one of
// them is the outcome, and the job says which.
func TestCancelRacingResult(t *testing.T) {
	a := newHarness(t)
	b := a.another("m2")
	w1 := a.connect("w1", 50)
	var ids []string
	for range 50 {
		ids = append(ids, a.submit("alice").ID)
	}
	a.dispatch()
	var wg sync.WaitGroup
	results := make([]error, len(ids))
	cancels := make([]*store.Job, len(ids))
	for i, id := range ids {
		wg.Go(func() { _, results[i] = a.finish(w1, id, 1) })
		wg.Go(func() {
			var err error
			if cancels[i], err = b.core.Cancel(t.Context(), id, "bob"); err != nil {
				t.Errorf("cancel %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	for i, id := range ids {
		j := a.job(id)
		switch {
		case results[i] == nil && j.Status != store.StatusDone:
			t.Errorf("%s: the result was taken but the job is %s", id, j.Status)
		case results[i] != nil && (j.Status != store.StatusCancelled || !errors.Is(results[i], jobs.ErrStale)):
			t.Errorf("%s: result refused (%v) but the job is %s", id, results[i], j.Status)
		case cancels[i] != nil && cancels[i].Status != j.Status:
			t.Errorf("%s: Cancel returned %s, stored %s", id, cancels[i].Status, j.Status)
		}
	}
}

func TestPlacementTimeout(t *testing.T) {
	h := newHarness(t)
	h.connect("w1", 1)
	cobol := h.submit("alice", withLanguage("cobol"))
	versioned := h.submit("alice", func(s *jobs.Submission) { s.Version = "3.12" })
	labelled := h.submit("alice", func(s *jobs.Submission) { s.Labels = map[string]string{"gpu": "1"} })
	blocker := h.submit("alice")
	waiting := h.submit("alice") // w1 runs python, but is busy with blocker
	h.dispatch()
	h.want(blocker.ID, store.StatusRunning, 1, "w1")

	h.live(59 * time.Second)
	h.want(cobol.ID, store.StatusQueued, 0, "")
	h.live(2 * time.Second)
	for id, want := range map[string]string{
		cobol.ID:     "no connected worker runs cobol (waited 1m0s)",
		versioned.ID: "no connected worker runs python 3.12 (waited 1m0s)",
		labelled.ID:  "no connected worker runs python with labels gpu=1 (waited 1m0s)",
	} {
		if j := h.want(id, store.StatusFailed, 0, ""); j.Error != want {
			t.Errorf("error %q, want %q", j.Error, want)
		}
	}
	h.want(waiting.ID, store.StatusQueued, 0, "")
}

func TestMaxAttempts(t *testing.T) {
	t.Run("lost workers", func(t *testing.T) {
		h := newHarness(t)
		j := h.submit("alice", withMaxAttempts(2))
		for n := 1; n <= 2; n++ {
			name := fmt.Sprintf("w%d", n)
			h.connect(name, 1)
			h.dispatch()
			h.want(j.ID, store.StatusRunning, n, name)
			h.disconnect(name)
			h.live(leaseTTL + time.Second)
		}
		if got := h.want(j.ID, store.StatusFailed, 2, "w2"); got.Error != "worker lost; gave up after 2 attempts" {
			t.Errorf("error %q", got.Error)
		}
	})
	t.Run("releases do not count, up to five", func(t *testing.T) {
		h := newHarness(t)
		w1 := h.connect("w1", 1)
		j := h.submit("alice", withMaxAttempts(1))
		for n := 1; ; n++ {
			h.dispatch()
			h.want(j.ID, store.StatusRunning, n, "w1")
			delete(w1.running, j.ID)
			if err := h.core.Release(t.Context(), w1.ref, j.ID, n, jobs.Release{Reason: "worker shutting down"}); err != nil {
				t.Fatal(err)
			}
			if got := h.job(j.ID); got.Status == store.StatusFailed {
				if n != jobs.MaxReleasedAttempts+1 || got.Error != "worker shutting down; gave up after 6 attempts" {
					t.Errorf("failed at attempt %d: %q", n, got.Error)
				}
				break
			}
			if n > 10 {
				t.Fatal("releases never ended the job")
			}
		}
		if err := h.core.Release(t.Context(), w1.ref, j.ID, 6, jobs.Release{Reason: "again"}); !errors.Is(err, jobs.ErrStale) {
			t.Errorf("release of a finished job: %v, want ErrStale", err)
		}
	})
	t.Run("broken sandboxes", func(t *testing.T) {
		h := newHarness(t)
		w1 := h.connect("w1", 1)
		j := h.submit("alice", withMaxAttempts(2))
		for n := 1; n <= 2; n++ {
			h.dispatch()
			delete(w1.running, j.ID)
			if err := h.core.Release(t.Context(), w1.ref, j.ID, n, jobs.Release{Reason: "sandbox failed", Infrastructure: true}); err != nil {
				t.Fatal(err)
			}
		}
		if got := h.want(j.ID, store.StatusFailed, 2, "w1"); got.Error != jobs.InfrastructureGaveUp(2) {
			t.Errorf("error %q", got.Error)
		}
	})
	t.Run("forged release", func(t *testing.T) {
		h := newHarness(t)
		h.connect("w1", 1)
		j := h.submit("alice")
		h.dispatch()
		rogue := store.WorkerRef{Name: "w1", Identity: "stolen"}
		if err := h.core.Release(t.Context(), rogue, j.ID, 1, jobs.Release{Reason: "x"}); !errors.Is(err, jobs.ErrStale) {
			t.Errorf("release by another identity: %v, want ErrStale", err)
		}
		h.want(j.ID, store.StatusRunning, 1, "w1")
	})
}

// One owner's many jobs do not starve another's one.
func TestFairShare(t *testing.T) {
	h := newHarness(t)
	var alice []string
	for range 20 {
		alice = append(alice, h.submit("alice").ID)
	}
	bob := h.submit("bob")
	w1 := h.connect("w1", 2)
	h.dispatch()
	if got, want := runningOn(w1), []string{alice[0], bob.ID}; !slices.Equal(sorted(got), sorted(want)) {
		t.Errorf("first two placed: %v, want alice's first and bob's", got)
	}
	// Priorities order an owner's own jobs.
	urgent := h.submit("alice", func(s *jobs.Submission) { s.Priority = 9 })
	if _, err := h.finish(w1, alice[0], 1); err != nil {
		t.Fatal(err)
	}
	h.dispatch()
	h.want(urgent.ID, store.StatusRunning, 1, "w1")
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// A draining worker takes nothing new; what it runs finishes there.
func TestDrain(t *testing.T) {
	h := newHarness(t)
	w1 := h.connect("w1", 2)
	first := h.submit("alice")
	h.dispatch()
	h.links.mu.Lock()
	w1.status = store.WorkerDraining
	h.links.mu.Unlock()
	second := h.submit("alice")
	h.dispatch()
	h.want(second.ID, store.StatusQueued, 0, "")
	h.live(2 * leaseTTL) // a draining worker's attempts are still renewed
	if _, err := h.finish(w1, first.ID, 1); err != nil {
		t.Fatal(err)
	}
	h.connect("w2", 1)
	h.dispatch()
	h.want(second.ID, store.StatusRunning, 1, "w2")
	ws, err := h.store.ListWorkers(t.Context())
	if err != nil || len(ws) != 2 || ws[0].Status != store.WorkerDraining || ws[0].Master != "m1" {
		t.Errorf("workers table: %v, %v", ws, err)
	}
}

// Two masters on one database, each dispatching for its own workers at
// once: every job runs once.
func TestTwoMastersRunEachJobOnce(t *testing.T) {
	a := newHarness(t)
	b := a.another("m2")
	for i := range 3 {
		a.connect(fmt.Sprintf("a%d", i), 4)
		b.connect(fmt.Sprintf("b%d", i), 4)
	}
	const total = 120
	var ids []string
	for i := range total {
		h := []*harness{a, b}[i%2]
		ids = append(ids, h.submit(fmt.Sprintf("user%d", i%3)).ID)
	}
	for range 20 {
		var wg sync.WaitGroup
		for _, h := range []*harness{a, b} {
			wg.Go(func() {
				if _, err := h.core.Dispatch(t.Context()); err != nil {
					t.Error(err)
				}
				// Every worker finishes what it runs.
				h.links.mu.Lock()
				type att struct {
					w  *fakeWorker
					id string
					n  int
				}
				var done []att
				for _, w := range h.links.workers {
					for id, n := range w.running {
						done = append(done, att{w, id, n})
					}
				}
				h.links.mu.Unlock()
				for _, d := range done {
					if _, err := h.finish(d.w, d.id, d.n); err != nil {
						t.Errorf("finish %s: %v", d.id, err)
					}
				}
			})
		}
		wg.Wait()
	}
	for _, id := range ids {
		if n := a.links.assigned[id] + b.links.assigned[id]; n != 1 {
			t.Errorf("job %s sent %d times", id, n)
		}
		if j := a.job(id); j.Status != store.StatusDone {
			t.Errorf("job %s: %s", id, j.Status)
		}
	}
}

// The give-back rule, as the master's worker links and the core apply it.
func TestGiveBack(t *testing.T) {
	plain := "grappe could not run this job: the workers' sandbox failed on 3 attempts"
	for _, tc := range []struct {
		name             string
		n, released, max int
		r                jobs.Release
		wantUncounted    bool
		wantFail         string
	}{
		{"release, first", 1, 0, 3, jobs.Release{Reason: "shutting down"}, true, ""},
		{"release, past five", 6, 5, 1, jobs.Release{Reason: "shutting down"}, false, "shutting down; gave up after 6 attempts"},
		{"lost, attempts left", 2, 0, 3, jobs.Release{Reason: "worker lost", Counted: true}, false, ""},
		{"lost, last", 3, 0, 3, jobs.Release{Reason: "worker lost", Counted: true}, false, "worker lost; gave up after 3 attempts"},
		{"lost after releases", 4, 2, 2, jobs.Release{Reason: "worker lost", Counted: true}, false, "worker lost; gave up after 4 attempts"},
		{"broken sandbox, last", 3, 0, 3, jobs.Release{Reason: "sandbox", Infrastructure: true}, false, plain},
		{"broken sandbox, left", 2, 0, 3, jobs.Release{Reason: "sandbox", Infrastructure: true}, false, ""},
	} {
		uncounted, fail := jobs.GiveBack(tc.n, tc.released, tc.max, tc.r)
		if uncounted != tc.wantUncounted || fail != tc.wantFail {
			t.Errorf("%s: %v %q, want %v %q", tc.name, uncounted, fail, tc.wantUncounted, tc.wantFail)
		}
	}
}

// Run drives the core on its own: a submitted job is dispatched without a
// call to Dispatch, and Run ends with its context.
func TestRun(t *testing.T) {
	h := newHarness(t, func(c *jobs.Config) { c.Tick = 10 * time.Millisecond })
	w1 := h.connect("w1", 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.core.Run(ctx) }()
	j := h.submit("alice")
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.links.mu.Lock()
		n := len(w1.running)
		h.links.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run never dispatched the job")
		}
		time.Sleep(time.Millisecond)
	}
	h.want(j.ID, store.StatusRunning, 1, "w1")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
}
