package datadir

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestEnsureCreatesPrivateDirs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := Ensure(dir, nil); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, dir); got != DirMode {
		t.Fatalf("new data dir mode %v, want %v", got, DirMode)
	}
}

func TestEnsureTightensAnExistingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	var log bytes.Buffer
	if err := Ensure(dir, slog.New(slog.NewTextHandler(&log, nil))); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, dir); got != DirMode {
		t.Fatalf("existing 0755 data dir is now %v, want %v", got, DirMode)
	}
	if !strings.Contains(log.String(), "made private") || !strings.Contains(log.String(), dir) {
		t.Fatalf("no log line about the change: %q", log.String())
	}
	log.Reset()
	if err := Ensure(dir, slog.New(slog.NewTextHandler(&log, nil))); err != nil || log.Len() != 0 {
		t.Fatalf("a private dir: %v, log %q; want nothing done", err, log.String())
	}
}

func TestPrivateFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "grappe.db-wal")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(f, 0o644)
	if err := PrivateFile(f); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, f); got != FileMode {
		t.Fatalf("mode %v, want %v", got, FileMode)
	}
	ro := filepath.Join(dir, "ro")
	if err := os.WriteFile(ro, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := PrivateFile(ro); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, ro); got != 0o400 {
		t.Fatalf("read-only file: mode %v, want 0400 (never more than it had)", got)
	}
	if err := PrivateFile(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("missing file: %v", err)
	}
}
