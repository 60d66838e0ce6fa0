package master

import (
	"log/slog"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

func TestAssignedElsewhere(t *testing.T) {
	w1 := store.WorkerRef{Name: "w1", Identity: "lin-1"}
	m := &Master{jobs: map[string]*liveJob{
		"running-on-w1": {id: "running-on-w1", attempt: 2, worker: "w1", identity: "lin-1"},
		"running-on-w2": {id: "running-on-w2", attempt: 2, worker: "w2", identity: "lin-2"},
		"queued":        {id: "queued", attempt: 1},
	}}
	for _, tc := range []struct {
		name string
		w    store.WorkerRef
		job  string
		n    int
		want bool
	}{
		{"its own attempt", w1, "running-on-w1", 2, false},
		{"its earlier attempt (late, not forged)", w1, "running-on-w2", 1, false},
		{"the attempt another worker runs", w1, "running-on-w2", 2, true},
		{"its name under another identity", store.WorkerRef{Name: "w1", Identity: "lin-9"}, "running-on-w1", 2, true},
		{"an attempt never given", w1, "running-on-w1", 3, true},
		{"attempt zero", w1, "queued", 0, true},
		{"a queued job's last attempt", w1, "queued", 1, false},
		{"a job no longer live", w1, "finished", 1, false},
	} {
		if got := m.assignedElsewhereLocked(tc.w, tc.job, tc.n); got != tc.want {
			t.Errorf("%s: assignedElsewhere = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestAuditLimiter(t *testing.T) {
	var l auditLimiter
	now := time.Unix(1000, 0)
	for i := range auditBurst {
		if ok, _ := l.allow("rogue", now); !ok {
			t.Fatalf("line %d of the burst refused", i)
		}
	}
	for range 100 {
		if ok, _ := l.allow("rogue", now); ok {
			t.Fatal("a line past the burst was allowed")
		}
	}
	// Another worker has its own budget.
	if ok, _ := l.allow("other", now); !ok {
		t.Fatal("another worker's line refused")
	}
	// One line per auditEvery, saying how many were skipped.
	ok, skipped := l.allow("rogue", now.Add(auditEvery))
	if !ok || skipped != 100 {
		t.Fatalf("after %s: allowed %v, skipped %d; want true, 100", auditEvery, ok, skipped)
	}
	if ok, _ := l.allow("rogue", now.Add(auditEvery)); ok {
		t.Fatal("a second line in the same period was allowed")
	}
}

// TestForgetRevokesTheIdentity: the autoscaler retires a stopped worker's
// name, and a new machine started under it joins with the join token.
func TestForgetRevokesTheIdentity(t *testing.T) {
	m, err := New(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := t.Context()
	id := &store.WorkerIdentity{Name: "auto-2", ID: newLineageID(), Serial: "1", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := m.store.CreateWorkerIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	if !(autoscaleCluster{m}).Forget("auto-2") {
		t.Fatal("Forget of a worker the master does not hold refused")
	}
	got, err := m.store.GetWorkerIdentity(ctx, "auto-2")
	if err != nil || got.Live(time.Now()) {
		t.Fatalf("identity after Forget: %+v %v, want revoked", got, err)
	}
	if !(autoscaleCluster{m}).Forget("never-joined") {
		t.Fatal("Forget of a name without identity refused")
	}
}
