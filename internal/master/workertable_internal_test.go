package master

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/store"
)

// The cluster views show the workers other masters hold, from the workers
// table, and this master's own, which it writes there.
func TestWorkersTableViews(t *testing.T) {
	m, err := New(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := t.Context()
	now := time.Now()
	if err := m.store.UpsertWorkers(ctx, []*store.Worker{
		{Name: "far", Master: "other", Status: api.WorkerUp, Slots: 4, Running: 3, LastHeartbeat: now,
			Languages:  map[string][]string{"python": {"3.11.2"}},
			JobsFailed: 2, FailureRate: 0.5, LastError: "no space left", LastErrorAt: now},
		{Name: "dead-master", Master: "gone", Status: api.WorkerUp, Slots: 2, LastHeartbeat: now.Add(-time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	// One of this master's own, in memory.
	m.mu.Lock()
	m.workers["near"] = &workerEntry{name: "near", identity: "l", status: api.WorkerDraining, attempts: map[string]int{},
		lastBeat: now, connectedAt: now}
	m.workers["near"].sched.Slots = 2
	m.workers["near"].failures.failed("the compiler is gone", now)
	m.markRow("near")
	m.mu.Unlock()

	byName := map[string]api.Worker{}
	for _, w := range m.Workers(ctx) {
		byName[w.Name] = w
	}
	if w := byName["far"]; w.Status != api.WorkerUp || w.Running != 3 || len(w.Languages) != 1 || w.Languages[0].Version != "3.11.2" {
		t.Errorf("far: %+v", w)
	}
	// Another master's worker shows the failures that master saw.
	if w := byName["far"]; w.JobsFailed != 2 || w.FailureRate != 0.5 || w.LastError != "no space left" || w.LastErrorAt == nil {
		t.Errorf("far's failures: %+v", w)
	}
	if w := byName["dead-master"]; w.Status != api.WorkerLost {
		t.Errorf("a row its master stopped writing shows %q, want lost", w.Status)
	}
	if w := byName["near"]; w.Status != api.WorkerDraining {
		t.Errorf("near: %+v", w)
	}
	if ls := m.Languages(ctx); len(ls) != 1 || ls[0].Name != "python" || ls[0].Version != "3.11.2" {
		t.Errorf("languages %+v, want the far worker's python", ls)
	}
	c, err := m.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers[api.WorkerUp] != 1 || c.Workers[api.WorkerLost] != 1 || c.Workers[api.WorkerDraining] != 1 || c.Slots != 6 || c.SlotsInUse != 3 {
		t.Errorf("cluster %+v", c)
	}

	// So do the metrics.
	rec := httptest.NewRecorder()
	m.metrics.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`grappe_worker_slots{worker="far"} 4`, `grappe_workers{status="lost"} 1`, `grappe_workers{status="draining"} 1`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The flush writes this master's rows under its id.
	m.flushWorkerRows(ctx)
	rows, err := m.store.ListWorkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		if r.Name == "near" {
			found = r.Master == m.cfg.MasterID && r.Status == api.WorkerDraining && r.Slots == 2 &&
				r.JobsFailed == 1 && r.LastError == "the compiler is gone"
		}
	}
	if !found {
		t.Errorf("near's row not written as held here: %+v", rows)
	}
	// Forgotten here, deleted there once lost.
	m.mu.Lock()
	m.workers["near"].status = api.WorkerLost
	m.markRow("near")
	m.mu.Unlock()
	m.flushWorkerRows(ctx)
	m.mu.Lock()
	delete(m.workers, "near")
	m.markRow("near")
	m.mu.Unlock()
	m.flushWorkerRows(ctx)
	rows, _ = m.store.ListWorkers(ctx)
	for _, r := range rows {
		if r.Name == "near" {
			t.Errorf("forgotten worker's row kept: %+v", r)
		}
	}
}

// A job this master does not hold in memory (submitted through another
// master on the same database) is cancelled through the store, queued or
// running.
func TestCancelJobOnlyInTheStore(t *testing.T) {
	m, err := New(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := t.Context()
	alice := &auth.Principal{User: "alice", Role: auth.RoleUser}
	for _, running := range []bool{false, true} {
		j := &store.Job{ID: fmt.Sprintf("elsewhere-%v", running), Owner: "alice", Language: "python", MaxAttempts: 3,
			Request: []byte(`{"language":"python","source":"print(1)"}`), CreatedAt: time.Now()}
		if err := m.store.CreateJob(ctx, j, 0); err != nil {
			t.Fatal(err)
		}
		if running {
			if err := m.store.StartAttempt(ctx, j.ID, 1, store.WorkerRef{Name: "far", Identity: "x"}, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		got, err := m.Cancel(ctx, alice, j.ID)
		if err != nil || got.Status != api.StatusCancelled || got.Error != "cancelled by alice" {
			t.Errorf("running %v: Cancel = %+v, %v; want cancelled", running, got, err)
		}
	}
}

// A master that starts again marks lost the rows it wrote for the workers
// of its last run; the other masters' rows stay as they are.
func TestRestartMarksOldRowsLost(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := m.store.UpsertWorkers(t.Context(), []*store.Worker{
		{Name: "mine", Master: m.cfg.MasterID, Status: api.WorkerUp, Slots: 2, Running: 1, LastHeartbeat: now},
		{Name: "theirs", Master: "other", Status: api.WorkerUp, Slots: 2, LastHeartbeat: now},
	}); err != nil {
		t.Fatal(err)
	}
	m.Close()

	m, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rows, err := m.store.ListWorkers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, r := range rows {
		status[r.Name] = r.Status
	}
	if status["mine"] != api.WorkerLost || status["theirs"] != api.WorkerUp {
		t.Errorf("after the restart: %v; want mine lost, theirs up", status)
	}
}
