package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// TestUpgradeGivesRunningAttemptsTheirWorkersLineage: a database from
// before attempts were held by an identity (schema 3) is upgraded so that
// the attempts running then still take their worker's result.
func TestUpgradeGivesRunningAttemptsTheirWorkersLineage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", dsn(path, nil, "immediate"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations()[:3] {
		if err := applyMigration(t.Context(), db, i+1, m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	for _, q := range []string{
		`INSERT INTO worker_identities (name, serial) VALUES ('w1', 'abc')`,
		`INSERT INTO jobs (id, owner, language, status, attempts, max_attempts, worker) VALUES ('run', 'u', 'c', 'running', 1, 3, 'w1')`,
		`INSERT INTO jobs (id, owner, language, status, attempts, max_attempts, worker) VALUES ('gone', 'u', 'c', 'running', 1, 3, 'w0')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTest(t, path, "")
	defer s.Close()
	id, err := s.GetWorkerIdentity(t.Context(), "w1")
	if err != nil || len(id.ID) != 32 {
		t.Fatalf("upgraded identity: %+v %v, want a 32-digit lineage", id, err)
	}
	w1 := store.WorkerRef{Name: "w1", Identity: id.ID}
	j, err := s.FinishAttempt(t.Context(), "run", 1, w1, store.Finish{Status: store.StatusDone, At: time.Now()})
	if err != nil || j.WorkerIdentity != id.ID {
		t.Fatalf("the running attempt's result after the upgrade: %+v %v", j, err)
	}
	// A job whose worker has no identity is held by "none", which no
	// worker has: the master requeues it when its worker does not return.
	gone := store.WorkerRef{Name: "w0", Identity: "none"}
	if err := s.RequeueAttempt(t.Context(), "gone", 1, gone, store.Requeue{Reason: "lost"}); err != nil {
		t.Fatalf("requeue of the job of a worker without identity: %v", err)
	}
}
