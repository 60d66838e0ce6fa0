package jobs_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/store"
)

func interactive(s *jobs.Submission) { s.Interactive = true }

// An interactive job is never claimed: only StartAttached starts it, on
// the master that holds its client, and only once.
func TestInteractiveStartsOnlyAttached(t *testing.T) {
	a := newHarness(t)
	b := a.another("m2")
	a.connect("wa", 2)
	wb := b.connect("wb", 2)
	j := a.submit("alice", interactive, withMaxAttempts(3))
	if !jobs.IsInteractive(j) || j.MaxAttempts != 1 {
		t.Fatalf("submitted %+v: want interactive with one attempt", j)
	}
	plain := a.submit("alice")
	if n := a.dispatch() + b.dispatch(); n != 1 {
		t.Fatalf("dispatch started %d jobs, want the plain one only", n)
	}
	a.want(j.ID, store.StatusQueued, 0, "")

	// Its client attached to m2: m2 starts it on its own worker, under
	// its own lease.
	started, err := b.core.StartAttached(t.Context(), j.ID)
	if err != nil || started == nil {
		t.Fatalf("StartAttached: %+v, %v", started, err)
	}
	got := b.want(j.ID, store.StatusRunning, 1, "wb")
	if got.Master != "m2" || got.LeaseUntil.IsZero() || !slices.Contains(runningOn(wb), j.ID) {
		t.Fatalf("started job: master %q lease %v, wb runs %v", got.Master, got.LeaseUntil, runningOn(wb))
	}
	// A second attach (another master) finds it taken.
	if _, err := a.core.StartAttached(t.Context(), j.ID); !errors.Is(err, jobs.ErrNotWaiting) {
		t.Fatalf("second start: %v, want ErrNotWaiting", err)
	}
	if _, err := a.core.StartAttached(t.Context(), plain.ID); !errors.Is(err, jobs.ErrNotWaiting) {
		t.Fatalf("start of a plain job: %v, want ErrNotWaiting", err)
	}
}

// No free worker: StartAttached waits (nil, nil) without touching the job.
func TestInteractiveWaitsForASlot(t *testing.T) {
	h := newHarness(t)
	h.connect("w1", 1)
	h.submit("bob")
	h.dispatch() // the only slot is taken
	j := h.submit("alice", interactive)
	if got, err := h.core.StartAttached(t.Context(), j.ID); got != nil || err != nil {
		t.Fatalf("StartAttached with no free slot: %+v, %v", got, err)
	}
	h.want(j.ID, store.StatusQueued, 0, "")
	// Its client leaves before it starts: it fails, saying so.
	if err := h.core.Abandon(t.Context(), j.ID, "its client detached"); err != nil {
		t.Fatal(err)
	}
	if got := h.want(j.ID, store.StatusFailed, 0, ""); !strings.Contains(got.Error, "detached") {
		t.Fatalf("error %q", got.Error)
	}
}

// Its input cannot be replayed: an interrupted attempt fails the job,
// whether its worker gives it back or goes silent.
func TestInteractiveNeverReruns(t *testing.T) {
	h := newHarness(t)
	w1 := h.connect("w1", 2)
	given := h.submit("alice", interactive)
	lost := h.submit("alice", interactive)
	for _, j := range []*store.Job{given, lost} {
		if _, err := h.core.StartAttached(t.Context(), j.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.core.Release(t.Context(), w1.ref, given.ID, 1, jobs.Release{Reason: "worker w1 is shutting down"}); err != nil {
		t.Fatal(err)
	}
	if got := h.want(given.ID, store.StatusFailed, 1, "w1"); !strings.Contains(got.Error, "not run again") {
		t.Errorf("given back: error %q", got.Error)
	}
	h.disconnect("w1")
	h.live(leaseTTL + 2*time.Second)
	if got := h.want(lost.ID, store.StatusFailed, 1, "w1"); !strings.Contains(got.Error, jobs.ReasonLost) {
		t.Errorf("lost: error %q", got.Error)
	}
}
