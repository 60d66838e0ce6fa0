package master_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/grappe/grappe/internal/master"
)

// A master's data directory holds every user's sources, the password
// hashes, the CA key and the tokens: nobody but the master's user may
// read it, even when it existed before with looser modes.
func TestDataDirIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := master.New(master.Config{DataDir: dir, Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for name, want := range map[string]fs.FileMode{
		".":                   0o700,
		"grappe.db":           0o600,
		"grappe.db-wal":       0o600,
		"grappe.db-shm":       0o600,
		master.AdminTokenFile: 0o600,
		master.JoinTokenFile:  0o600,
		"ca-key.pem":          0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
}
