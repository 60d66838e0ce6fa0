//go:build linux

package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestScratch(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "work")
	s, err := MountScratch(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !isTmpfsMount(dir) {
		t.Fatalf("%s is not a tmpfs mount", dir)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode: %v %v", fi, err)
	}
	// The size is a bound: a 2 MiB file does not fit in 1 MiB.
	err = os.WriteFile(filepath.Join(dir, "big"), make([]byte, 2<<20), 0o600)
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("writing past the size: %v, want ENOSPC", err)
	}
	os.WriteFile(filepath.Join(dir, "left"), []byte("x"), 0o600)

	// A second mount, as after a crash, replaces the stale one: nothing
	// left over, and one mount only.
	s2, err := MountScratch(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "left")); !os.IsNotExist(err) {
		t.Errorf("stale file still there: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if isTmpfsMount(dir) {
		t.Errorf("%s still a tmpfs mount after Close: the stale mount was stacked, not detached", dir)
	}
	if err := s.Close(); err != nil {
		t.Errorf("closing the detached stale mount: %v", err)
	}
	if _, err := MountScratch(dir, 0); err == nil {
		t.Error("size 0 accepted")
	}
}
