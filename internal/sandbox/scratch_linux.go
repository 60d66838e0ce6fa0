//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Scratch is a private tmpfs for the jobs' work directories.
//
// Work directories live a few milliseconds each, and on a disk file system
// their creation and removal cost more than the sandboxed run: ext4 spends
// most of a create searching its inode bitmaps for a slot not recently
// freed. On tmpfs the same files cost a tenth. It also bounds the disk a
// job can fill: a tmpfs page is charged to the memory cgroup of the
// process that writes it, so what a command writes counts against its
// memory limit, and the mount's size bounds all jobs together.
type Scratch struct {
	dir string
}

// MountScratch mounts a tmpfs of at most sizeBytes on dir (created if
// needed), readable by root only. A tmpfs already mounted exactly on dir,
// left by a run that crashed, is detached first: its work directories are
// garbage. It needs CAP_SYS_ADMIN.
func MountScratch(dir string, sizeBytes int64) (*Scratch, error) {
	if sizeBytes <= 0 {
		return nil, fmt.Errorf("sandbox: scratch: size %d", sizeBytes)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sandbox: scratch: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox: scratch: %w", err)
	}
	for isTmpfsMount(dir) {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return nil, fmt.Errorf("sandbox: scratch: detach a stale %s: %w", dir, err)
		}
	}
	opts := "mode=0700,size=" + strconv.FormatInt(sizeBytes, 10)
	// Not noexec: compiled programs run from their work directory.
	if err := unix.Mount("grappe-scratch", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return nil, fmt.Errorf("sandbox: scratch: mount tmpfs on %s: %w", dir, err)
	}
	// A host whose root is a shared mount would copy every job's mounts
	// into its peers; this one propagates nothing.
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
		return nil, fmt.Errorf("sandbox: scratch: make %s private: %w", dir, err)
	}
	return &Scratch{dir: dir}, nil
}

// Dir is where the tmpfs is mounted.
func (s *Scratch) Dir() string { return s.dir }

// Close detaches the tmpfs; its contents go with it.
func (s *Scratch) Close() error {
	if err := unix.Unmount(s.dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("sandbox: scratch: unmount %s: %w", s.dir, err)
	}
	return nil
}

// isTmpfsMount reports whether a tmpfs is mounted exactly on dir: dir is
// on a tmpfs and on another device than its parent.
func isTmpfsMount(dir string) bool {
	var fs unix.Statfs_t
	if unix.Statfs(dir, &fs) != nil || fs.Type != unix.TMPFS_MAGIC {
		return false
	}
	var self, parent unix.Stat_t
	if unix.Stat(dir, &self) != nil || unix.Stat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return self.Dev != parent.Dev
}
