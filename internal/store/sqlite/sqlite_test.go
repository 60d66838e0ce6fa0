package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/storetest"
)

func openTest(t testing.TB, path, sync string) *Store {
	t.Helper()
	s, err := New(Config{Path: path, Synchronous: sync})
	if err != nil {
		t.Fatalf("New(%q, %q): %v", path, sync, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, filepath.Join(t.TempDir(), "grappe.db"), "")
	})
}

func TestPersistent(t *testing.T) {
	for _, sync := range []string{SyncNormal, SyncFull} {
		t.Run(sync, func(t *testing.T) {
			storetest.RunPersistent(t, func(t *testing.T, path string) store.Store {
				return openTest(t, path, sync)
			})
		})
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []Config{
		{},
		{Path: ":memory:"},
		{Path: "file:" + filepath.Join(dir, "x.db")},
		{Path: filepath.Join(dir, "x.db"), Synchronous: "off"},
		{Path: filepath.Join(dir, "no-such-dir", "x.db")},
	} {
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

// A path with URI metacharacters must still name that file, not be parsed
// as DSN parameters.
func TestPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "we?ird #dir%20", "grappe.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path, "")
	defer s.Close()
	var file string
	if err := s.r.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		t.Fatal(err)
	}
	if file != path {
		t.Errorf("database file = %q, want %q", file, path)
	}
}

func TestMigrationsAppliedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grappe.db")
	for range 3 {
		s := openTest(t, path, "")
		var n, maxV int
		if err := s.r.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &maxV); err != nil {
			t.Fatal(err)
		}
		if want := len(migrations()); n != want || maxV != want {
			t.Errorf("schema_migrations has %d rows up to version %d, want %d and %d", n, maxV, want, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Several processes (here, stores) opening the same new file at once must
// all succeed, each migration applied once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grappe.db")
	const n = 8
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = New(Config{Path: path}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("New #%d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	var count int
	if err := stores[0].r.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != len(migrations()) {
		t.Errorf("schema_migrations has %d rows, want %d", count, len(migrations()))
	}
}

func TestMigrationsRefuseNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grappe.db")
	s := openTest(t, path, "")
	if _, err := s.w.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, len(migrations())+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := New(Config{Path: path}); err == nil || !strings.Contains(err.Error(), "newer") {
		if err == nil {
			s.Close()
		}
		t.Errorf("New on a database from a newer version: %v, want an error about it", err)
	}
}

// The pragmas are on every connection of both pools, as configured.
func TestPragmas(t *testing.T) {
	for _, tc := range []struct {
		sync     string
		wantSync int
	}{{"", 1}, {"normal", 1}, {"FULL", 2}} {
		t.Run(tc.sync, func(t *testing.T) {
			s := openTest(t, filepath.Join(t.TempDir(), "grappe.db"), tc.sync)
			defer s.Close()
			for _, p := range []struct {
				pool string
				name string
				want string
			}{
				{"w", "journal_mode", "wal"},
				{"r", "journal_mode", "wal"},
				{"w", "foreign_keys", "1"},
				{"r", "foreign_keys", "1"},
				{"w", "busy_timeout", "5000"},
				{"r", "busy_timeout", "5000"},
				{"w", "synchronous", strconv.Itoa(tc.wantSync)},
				{"w", "query_only", "0"},
				{"r", "query_only", "1"},
			} {
				db := s.w
				if p.pool == "r" {
					db = s.r
				}
				var got string
				if err := db.QueryRow("PRAGMA " + p.name).Scan(&got); err != nil {
					t.Fatalf("PRAGMA %s on %s: %v", p.name, p.pool, err)
				}
				if !strings.EqualFold(got, p.want) {
					t.Errorf("PRAGMA %s on pool %s = %q, want %q", p.name, p.pool, got, p.want)
				}
			}
		})
	}
}

// In WAL mode a reader must not wait for an open write transaction; it
// sees the last committed state.
func TestReadsDoNotBlockOnWrites(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "grappe.db"), "")
	defer s.Close()
	ctx := t.Context()
	if err := s.CreateJob(ctx, &store.Job{ID: "j", Owner: "alice", Language: "c"}, 0); err != nil {
		t.Fatal(err)
	}
	tx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE jobs SET owner = 'mallory' WHERE id = 'j'`); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	j, err := s.GetJob(rctx, "j")
	if err != nil {
		t.Fatalf("GetJob during a write transaction: %v", err)
	}
	if j.Owner != "alice" {
		t.Errorf("GetJob during a write transaction sees owner %q, want the committed %q", j.Owner, "alice")
	}
}

func TestReadPoolIsReadOnly(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "grappe.db"), "")
	defer s.Close()
	if _, err := s.r.Exec(`INSERT INTO users (name, role) VALUES ('x', 'user')`); err == nil {
		t.Error("write through the read pool succeeded; want it refused")
	}
}

func TestTimesStoredAsUTCNanos(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "grappe.db"), "")
	defer s.Close()
	created := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", -7*3600))
	if err := s.CreateJob(t.Context(), &store.Job{ID: "j", Owner: "a", Language: "c", CreatedAt: created}, 0); err != nil {
		t.Fatal(err)
	}
	var createdN, startedN int64
	if err := s.r.QueryRow(`SELECT created_at, started_at FROM jobs WHERE id = 'j'`).Scan(&createdN, &startedN); err != nil {
		t.Fatal(err)
	}
	if createdN != created.UnixNano() || startedN != 0 {
		t.Errorf("stored created_at %d started_at %d, want %d and 0", createdN, startedN, created.UnixNano())
	}
	j, err := s.GetJob(t.Context(), "j")
	if err != nil {
		t.Fatal(err)
	}
	if !j.CreatedAt.Equal(created) || j.CreatedAt.Nanosecond() != 123456789 || j.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v in UTC to the nanosecond", j.CreatedAt, created.UTC())
	}
}

// TestIdempotencyLookupUsesIndex guards the query plan: a submission's
// key lookup must be an index search, not a scan of the owner's jobs.
func TestIdempotencyLookupUsesIndex(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "db"), "")
	var detail string
	rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+sqlJobByKey, "alice", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	joined := strings.Join(plan, "; ")
	if !strings.Contains(joined, "jobs_owner_idem") {
		t.Fatalf("the key lookup does not use the idempotency index: %s", joined)
	}
}

// Two handles on one file, as two masters (or a master and a restarted
// one) would share it.
func TestConformanceShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		path := filepath.Join(t.TempDir(), "grappe.db")
		return openTest(t, path, ""), openTest(t, path, "")
	})
}
