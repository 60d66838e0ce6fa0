package clustertest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/grappe/grappe/internal/clustertest"
)

// A worker's data directory holds its private key: it is made private,
// and so is a directory it finds open to others.
func TestWorkerDataDirIsPrivate(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	dir := filepath.Join(filepath.Dir(c.DataDir), "workers", "w")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.AddWorker(clustertest.WorkerOptions{Name: "w", Slots: 1, Languages: []string{"bash"}})
	for _, d := range []string{c.DataDir, dir} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o700 {
			t.Errorf("%s: mode %v, want 0700", d, got)
		}
	}
}
