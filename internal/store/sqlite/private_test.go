package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// The database holds every user's sources and password hashes: its files
// are 0600 whatever the umask, and an existing 0644 file is tightened.
func TestFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022) // the usual one, under which SQLite makes 0644 files
	defer syscall.Umask(old)
	t.Run("new", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "grappe.db")
		s := openTest(t, path, "")
		defer s.Close()
		if err := s.PutUser(context.Background(), &store.User{Name: "alice", Role: "user"}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			if got := perm(t, f); got != 0o600 {
				t.Errorf("%s: mode %v, want 0600", filepath.Base(f), got)
			}
		}
	})
	t.Run("existing", func(t *testing.T) {
		// Files an older version left 0644, the WAL in use by another
		// process: a new open tightens them all.
		path := filepath.Join(t.TempDir(), "grappe.db")
		other := openTest(t, path, "")
		defer other.Close()
		if err := other.PutUser(context.Background(), &store.User{Name: "alice", Role: "user"}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			if err := os.Chmod(f, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s := openTest(t, path, "")
		defer s.Close()
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			if got := perm(t, f); got != 0o600 {
				t.Errorf("%s: mode %v after opening, want 0600", filepath.Base(f), got)
			}
		}
	})
}

// Login tokens made before token kinds existed (named "login") become
// login tokens that expire 30 days after their creation; others stay API
// tokens that never expire.
func TestMigrationGivesOldLoginTokensAnExpiry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grappe.db")
	db, err := sql.Open("sqlite", dsn(path, []string{"journal_mode(WAL)"}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations()[:3] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations VALUES (?, 0)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO users (name, role) VALUES ('alice', 'user')`,
		`INSERT INTO tokens (id, hash, user, name, created_at) VALUES ('l', 'hl', 'alice', 'login', ?)`,
		`INSERT INTO tokens (id, hash, user, name, created_at) VALUES ('a', 'ha', 'alice', 'ci', ?)`,
	} {
		if _, err := db.Exec(q, created.UnixNano()); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s := openTest(t, path, "")
	defer s.Close()
	ctx := context.Background()
	login, err := s.TokenByHash(ctx, "hl")
	if err != nil {
		t.Fatal(err)
	}
	if login.Kind != store.TokenLogin || !login.ExpiresAt.Equal(created.Add(30*24*time.Hour)) {
		t.Errorf("old login token: kind %q expires %v, want login, %v", login.Kind, login.ExpiresAt, created.Add(30*24*time.Hour))
	}
	apiTok, err := s.TokenByHash(ctx, "ha")
	if err != nil {
		t.Fatal(err)
	}
	if apiTok.Kind != store.TokenAPI || !apiTok.ExpiresAt.IsZero() {
		t.Errorf("old API token: kind %q expires %v, want api, never", apiTok.Kind, apiTok.ExpiresAt)
	}
}
