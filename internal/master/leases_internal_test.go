package master

import (
	"log/slog"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/workerlink"
)

// The attempts a connected worker holds are leased in the store, renewed
// by the flush; an attempt nobody renews is rescued once by the sweep,
// and the master's memory follows: the job is queued again, or ends when
// it has used its attempts.
func TestLeasesRenewedAndRescued(t *testing.T) {
	m, err := New(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0",
		WorkerTimeout: 2 * time.Second, HeartbeatInterval: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := t.Context()
	near := store.WorkerRef{Name: "near", Identity: "l"}

	// Two running attempts on near: one job with attempts to spare, one on
	// its last.
	for _, spec := range []struct {
		id  string
		max int
	}{{"spare", 3}, {"last", 1}} {
		sj := &store.Job{ID: spec.id, Owner: "alice", Language: "python", MaxAttempts: spec.max,
			Request: []byte(`{"language":"python","source":"print(1)"}`), CreatedAt: time.Now()}
		if err := m.store.CreateJob(ctx, sj, 0); err != nil {
			t.Fatal(err)
		}
		if err := m.store.StartAttempt(ctx, sj.ID, 1, near, time.Now()); err != nil {
			t.Fatal(err)
		}
		lj, err := m.liveFromStore(sj)
		if err != nil {
			t.Fatal(err)
		}
		lj.attempt, lj.worker, lj.identity = 1, near.Name, near.Identity
		m.jobs[sj.ID] = lj
	}
	m.mu.Lock()
	m.workers["near"] = &workerEntry{name: "near", identity: "l", status: api.WorkerUp,
		attempts: map[string]int{"spare": 1, "last": 1}, session: &workerlink.Link{}, lastBeat: time.Now()}
	m.mu.Unlock()

	before := time.Now()
	m.renewLeases(ctx)
	sj, err := m.store.GetJob(ctx, "spare")
	if err != nil {
		t.Fatal(err)
	}
	if sj.Master != m.cfg.MasterID || sj.LeaseUntil.Before(before.Add(m.leaseFor())) {
		t.Fatalf("after renewal: master %q lease %v, want %q and at least %v", sj.Master, sj.LeaseUntil, m.cfg.MasterID, before.Add(m.leaseFor()))
	}

	// Within the lease nothing is rescued.
	m.rescueExpired(ctx, time.Now())
	if sj, _ := m.store.GetJob(ctx, "spare"); sj.Status != store.StatusRunning {
		t.Fatalf("rescued within its lease: %s", sj.Status)
	}

	// Past it (the worker went silent and nobody renewed), both are given
	// back once.
	later := time.Now().Add(m.leaseFor() + time.Second)
	m.rescueExpired(ctx, later)
	m.rescueExpired(ctx, later) // nothing left to rescue

	spare, _ := m.store.GetJob(ctx, "spare")
	if spare.Status != store.StatusQueued || spare.Error != rescueReason {
		t.Errorf("spare: %s %q, want queued with %q", spare.Status, spare.Error, rescueReason)
	}
	last, _ := m.store.GetJob(ctx, "last")
	if last.Status != store.StatusFailed || last.Error != rescueReason+"; gave up after 1 attempts" {
		t.Errorf("last: %s %q, want failed", last.Status, last.Error)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.workers["near"].attempts); n != 0 {
		t.Errorf("near still holds %d attempts in memory", n)
	}
	if _, ok := m.jobs["last"]; ok {
		t.Error("the failed job is still held in memory")
	}
	if lj := m.jobs["spare"]; lj == nil || lj.worker != "" {
		t.Errorf("spare in memory: %+v", lj)
	}
}

// TestNoRescueRightAfterAStoreOutage: leases that ran out while the
// master could not reach the store (a database restart: no master renews
// anything) are not rescued until a lease period after the store is back,
// which gives the masters of live workers the time to renew them; after
// that, an attempt still expired is rescued. Found by TestChaosMasters:
// the first sweep after PostgreSQL came back gave back the attempts of
// live workers, whose results were then refused and the jobs run again.
func TestNoRescueRightAfterAStoreOutage(t *testing.T) {
	m, err := New(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0",
		WorkerTimeout: 2 * time.Second, HeartbeatInterval: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := t.Context()
	w := store.WorkerRef{Name: "alive", Identity: "l"}
	sj := &store.Job{ID: "j", Owner: "alice", Language: "python", MaxAttempts: 3,
		Request: []byte(`{"language":"python","source":"print(1)"}`), CreatedAt: time.Now()}
	if err := m.store.CreateJob(ctx, sj, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.store.StartAttempt(ctx, sj.ID, 1, w, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The store fails for a while, longer than a lease: the attempt's
	// lease runs out meanwhile, nothing can renew it.
	outage := time.Now()
	m.leaseStoreFailed(outage)
	if _, err := m.store.RenewLeases(ctx, m.cfg.MasterID, []store.WorkerRef{w}, outage.Add(time.Second).UTC()); err != nil {
		t.Fatal(err)
	}
	back := outage.Add(3 * time.Second)

	for _, at := range []time.Time{back, back.Add(m.leaseFor() / 2)} {
		m.rescueExpired(ctx, at) // the first sees the store back
		if got, _ := m.store.GetJob(ctx, "j"); got.Status != store.StatusRunning {
			t.Fatalf("rescued %v after the store came back: %s", at.Sub(back), got.Status)
		}
	}
	m.rescueExpired(ctx, back.Add(m.leaseFor()+time.Millisecond))
	if got, _ := m.store.GetJob(ctx, "j"); got.Status != store.StatusQueued || got.Error != rescueReason {
		t.Fatalf("a lease period after the store came back: %s %q, want queued with %q", got.Status, got.Error, rescueReason)
	}
}
