package postgres

import (
	"slices"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// Listen tells of each kind of change a master commits, as it commits;
// of a job submitted, only while some master is hungry.
func TestListenTellsOfChanges(t *testing.T) {
	url := newDatabase(t)
	s, other := openTest(t, url), openTest(t, url) // another master's handle makes the changes
	defer s.Close()
	defer other.Close()
	ctx := t.Context()

	got := make(chan string, 64)
	go s.Listen(ctx, store.Changes{
		Queued: func() { got <- "queued" },
		Ended:  func(id string) { got <- "ended " + id },
		Worker: func(name string) { got <- "worker " + name },
		Access: func() { got <- "access" },
	})
	want := func(what string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case g := <-got:
				if g == what {
					return
				}
			case <-deadline:
				t.Fatalf("no %q notification", what)
			}
		}
	}
	want("queued") // at the start: anything may have been queued before
	want("access")

	// none: nothing is notified in the time a notification takes.
	none := func(what string) {
		t.Helper()
		deadline := time.After(300 * time.Millisecond)
		for {
			select {
			case g := <-got:
				if g == what {
					t.Fatalf("%q notified", what)
				}
			case <-deadline:
				return
			}
		}
	}

	// A job submitted wakes the masters only while one is hungry.
	now := time.Now().UTC()
	submit := func(id string) {
		t.Helper()
		if err := other.CreateJob(ctx, &store.Job{ID: id, Owner: "ann", Language: "bash", CreatedAt: now}, 0); err != nil {
			t.Fatal(err)
		}
	}
	submit("j0")
	none("queued")
	if err := other.Hungry(ctx, "m2", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	submit("j00")
	none("queued") // its hunger is over
	if err := other.Hungry(ctx, "m2", time.Minute); err != nil {
		t.Fatal(err)
	}
	submit("j1")
	want("queued")
	if err := other.FinishQueued(ctx, "j1", store.Finish{Status: store.StatusCancelled, At: now}); err != nil {
		t.Fatal(err)
	}
	want("ended j1")

	// A job back in the queue wakes them, hungry or not.
	if err := other.Hungry(ctx, "m2", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	submit("j2")
	w := store.WorkerRef{Name: "w9", Identity: "id9"}
	if err := other.StartAttempt(ctx, "j2", 1, w, now); err != nil {
		t.Fatal(err)
	}
	none("queued")
	if err := other.RequeueAttempt(ctx, "j2", 1, w, store.Requeue{Reason: "test", At: now}); err != nil {
		t.Fatal(err)
	}
	want("queued")

	if err := other.UpsertWorkers(ctx, []*store.Worker{{Name: "w1", Identity: "id1", Master: "m1", Status: "up", LastHeartbeat: now}}); err != nil {
		t.Fatal(err)
	}
	if err := other.SetWorkerDrain(ctx, "w1", true); err != nil {
		t.Fatal(err)
	}
	want("worker w1")
	if err := other.CreateWorkerIdentity(ctx, &store.WorkerIdentity{Name: "w2", ID: "id2", Serial: "s2", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := other.RevokeWorkerIdentity(ctx, "w2", now); err != nil {
		t.Fatal(err)
	}
	want("worker w2")
	if err := other.SetSecret(ctx, "join-token", []byte("rotated")); err != nil {
		t.Fatal(err)
	}
	want("access")
}

// A job's end is told to the masters it concerns: the one that accepted
// it and the one holding its worker, not the one that ended it nor a
// bystander; to all once a master that is neither watches it.
func TestEndsReachTheMastersConcerned(t *testing.T) {
	url := newDatabase(t)
	ctx := t.Context()
	names := []string{"ma", "mb", "mc"}
	stores := map[string]*Store{}
	heard := map[string]chan string{}
	for _, name := range names {
		s, err := New(ctx, Config{URL: url, MasterID: name})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[name] = s
		ch := make(chan string, 64)
		resumed := make(chan struct{}, 1)
		heard[name] = ch
		go s.Listen(ctx, store.Changes{
			Ended: func(id string) { ch <- id },
			Resumed: func() {
				select {
				case resumed <- struct{}{}:
				default:
				}
			},
		})
		<-resumed
	}
	// expect: within a notification's time, exactly these masters hear
	// of id.
	expect := func(id string, want ...string) {
		t.Helper()
		deadline := time.After(400 * time.Millisecond)
		got := map[string]bool{}
	wait:
		for {
			select {
			case <-deadline:
				break wait
			default:
			}
			for _, name := range names {
				select {
				case e := <-heard[name]:
					if e == id {
						got[name] = true
					}
				default:
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		for _, name := range names {
			if got[name] != slices.Contains(want, name) {
				t.Errorf("end of %s: %s heard %v, want the masters %v to", id, name, got[name], want)
			}
		}
	}
	now := time.Now().UTC()
	submit := func(via, id string) {
		t.Helper()
		if err := stores[via].CreateJob(ctx, &store.Job{ID: id, Owner: "ann", Language: "bash", CreatedAt: now}, 0); err != nil {
			t.Fatal(err)
		}
	}
	cancel := store.Finish{Status: store.StatusCancelled, At: now}

	submit("ma", "j1") // accepted by ma, cancelled through mb
	if err := stores["mb"].FinishQueued(ctx, "j1", cancel); err != nil {
		t.Fatal(err)
	}
	expect("j1", "ma")

	submit("ma", "j2") // accepted and ended by ma: nobody else
	if err := stores["ma"].FinishQueued(ctx, "j2", cancel); err != nil {
		t.Fatal(err)
	}
	expect("j2")

	// Held by mb, cancelled through mc: ma (accepted) and mb (holds).
	submit("ma", "j3")
	w := store.WorkerRef{Name: "w1", Identity: "id1"}
	if _, err := stores["mb"].ClaimJob(ctx, "j3", "mb", w, now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := stores["mc"].FinishAttempt(ctx, "j3", 1, w, cancel); err != nil {
		t.Fatal(err)
	}
	expect("j3", "ma", "mb")

	// Held by mb, finished by mb: ma only.
	submit("ma", "j4")
	if _, err := stores["mb"].ClaimJob(ctx, "j4", "mb", w, now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := stores["mb"].FinishAttempt(ctx, "j4", 1, w, store.Finish{Status: store.StatusDone, At: now}); err != nil {
		t.Fatal(err)
	}
	expect("j4", "ma")

	// Watched by mc: everyone.
	submit("ma", "j5")
	if err := stores["mc"].Watch(ctx, "j5"); err != nil {
		t.Fatal(err)
	}
	if err := stores["mb"].FinishQueued(ctx, "j5", cancel); err != nil {
		t.Fatal(err)
	}
	expect("j5", "ma", "mb", "mc")

	// A master that does not say who it is: everyone.
	anon := openTest(t, url)
	defer anon.Close()
	submit("ma", "j6")
	if err := anon.FinishQueued(ctx, "j6", cancel); err != nil {
		t.Fatal(err)
	}
	expect("j6", "ma", "mb", "mc")
}
