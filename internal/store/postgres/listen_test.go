package postgres

import (
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
