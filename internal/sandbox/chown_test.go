//go:build linux

package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestChownTree plants symbolic links to a host file and a host directory
// (Judge0's CVE-2024-28189): the walk changes the links, never their
// targets.
func TestChownTree(t *testing.T) {
	needRoot(t)
	host := t.TempDir()
	victim := filepath.Join(host, "victim")
	os.WriteFile(victim, []byte("x"), 0o600)
	os.WriteFile(filepath.Join(host, "inner"), []byte("x"), 0o600)
	work := t.TempDir()
	os.MkdirAll(filepath.Join(work, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(work, "a", "b", "f"), []byte("x"), 0o644)
	os.Symlink(victim, filepath.Join(work, "link"))
	os.Symlink(host, filepath.Join(work, "a", "dirlink"))
	os.Symlink("../../..", filepath.Join(work, "a", "b", "up"))
	before := ownerships(t, victim, host, filepath.Join(host, "inner"), "/")

	fd, err := openDirNoFollow(work)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	const id = 60999
	if err := chownTree(fd, id, id); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "a", "a/b", "a/b/f", "link", "a/dirlink", "a/b/up"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(work, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != id || st.Gid != id {
			t.Errorf("%q owned by %d:%d", p, st.Uid, st.Gid)
		}
	}
	if after := ownerships(t, victim, host, filepath.Join(host, "inner"), "/"); !slices.Equal(before, after) {
		t.Errorf("followed a link: %v → %v", before, after)
	}
	// The work directory itself must not be a link either.
	os.Symlink(work, filepath.Join(host, "worklink"))
	if _, err := openDirNoFollow(filepath.Join(host, "worklink")); err == nil {
		t.Error("opened a work directory through a link")
	}
}

func TestSeccompFilter(t *testing.T) {
	t.Parallel()
	for _, clone3 := range []bool{false, true} {
		f, err := seccompFilter(clone3)
		if err != nil {
			t.Fatal(err)
		}
		// Short enough for the per-call cost to stay small.
		if len(f) > 120 {
			t.Errorf("filter of %d instructions", len(f))
		}
	}
	if _, err := cloneThreeFilter(); err != nil {
		t.Fatal(err)
	}
}
