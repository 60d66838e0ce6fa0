package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// A role's lease: taken when free, renewed by its holder, refused to
// another while it runs, taken by another once expired, freed by Resign
// (and only by its holder's).
func testLead(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := t0()
	lead := func(role, holder string, at, until time.Time) bool {
		t.Helper()
		ok, err := s.Lead(ctx, role, holder, at, until)
		if err != nil {
			t.Fatalf("Lead(%s, %s): %v", role, holder, err)
		}
		return ok
	}
	steps := []struct {
		what, role, holder string
		at, until          time.Duration // from now
		want               bool
	}{
		{"free role taken", "sweeper", "m1", 0, 10 * time.Second, true},
		{"another refused while it runs", "sweeper", "m2", 5 * time.Second, 15 * time.Second, false},
		{"renewed by its holder", "sweeper", "m1", 6 * time.Second, 16 * time.Second, true},
		{"the renewal counts: still refused past the first expiry", "sweeper", "m2", 12 * time.Second, 22 * time.Second, false},
		{"roles are apart", "autoscaler", "m2", 12 * time.Second, 22 * time.Second, true},
		{"taken once expired", "sweeper", "m2", 16 * time.Second, 26 * time.Second, true},
		{"the old holder refused now", "sweeper", "m1", 17 * time.Second, 27 * time.Second, false},
	}
	for _, st := range steps {
		if got := lead(st.role, st.holder, now.Add(st.at), now.Add(st.until)); got != st.want {
			t.Fatalf("%s: Lead(%s, %s) = %v, want %v", st.what, st.role, st.holder, got, st.want)
		}
	}
	if err := s.Resign(ctx, "sweeper", "m1"); err != nil { // not its holder: no effect
		t.Fatal(err)
	}
	if lead("sweeper", "m3", now.Add(18*time.Second), now.Add(28*time.Second)) {
		t.Fatal("a resign by a master that does not hold the role freed it")
	}
	if err := s.Resign(ctx, "sweeper", "m2"); err != nil {
		t.Fatal(err)
	}
	if !lead("sweeper", "m3", now.Add(18*time.Second), now.Add(28*time.Second)) {
		t.Fatal("the role was not free after its holder resigned")
	}
}

// The autoscaler's workers round-trip and are deleted by name.
func testAutoscaled(t *testing.T, s store.Store) {
	ctx := t.Context()
	if got, err := s.ListAutoscaled(ctx); err != nil || len(got) != 0 {
		t.Fatalf("ListAutoscaled of nothing: %v, %v", got, err)
	}
	for i, name := range []string{"auto-2", "auto-10", "auto-1"} {
		a := &store.Autoscaled{Name: name, Provisioner: "exec", Master: fmt.Sprint("m", i),
			Reason: "3 jobs waited", StartedAt: t0().Add(time.Duration(i) * time.Second)}
		if err := s.PutAutoscaled(ctx, a); err != nil {
			t.Fatalf("PutAutoscaled: %v", err)
		}
	}
	// Replaced by name.
	if err := s.PutAutoscaled(ctx, &store.Autoscaled{Name: "auto-1", Provisioner: "local", Master: "m9", StartedAt: t0()}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAutoscaled(ctx, "auto-2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAutoscaled(ctx, "never-started"); err != nil {
		t.Fatalf("DeleteAutoscaled of a missing name: %v, want nil", err)
	}
	got, err := s.ListAutoscaled(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "auto-1" || got[1].Name != "auto-10" {
		t.Fatalf("ListAutoscaled = %+v, want auto-1 and auto-10 by name", got)
	}
	if a := got[0]; a.Provisioner != "local" || a.Master != "m9" || a.Reason != "" || !a.StartedAt.Equal(t0()) || a.StartedAt.Location() != time.UTC {
		t.Fatalf("auto-1 = %+v, want the replacement, its time in UTC", a)
	}
	if a := got[1]; a.Provisioner != "exec" || a.Master != "m1" || a.Reason != "3 jobs waited" || !a.StartedAt.Equal(t0().Add(time.Second)) {
		t.Fatalf("auto-10 = %+v", a)
	}
}

// Masters racing for a free or expired role: exactly one leads, each
// round.
func testSharedOneLeader(t *testing.T, s [2]store.Store) {
	now := t0()
	for round := range 30 {
		at := now.Add(time.Duration(round) * time.Minute) // the last round's lease has expired
		var wins [2]bool
		var wg sync.WaitGroup
		for h := range 2 {
			wg.Go(func() {
				ok, err := s[h].Lead(t.Context(), "sweeper", fmt.Sprint("m", h), at, at.Add(30*time.Second))
				if err != nil && !errors.Is(err, store.ErrConflict) {
					t.Errorf("Lead through handle %d: %v", h, err)
				}
				wins[h] = ok
			})
		}
		wg.Wait()
		if wins[0] == wins[1] {
			t.Fatalf("round %d: leads %v, want exactly one", round, wins)
		}
	}
}
