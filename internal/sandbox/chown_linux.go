//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// maxChownDepth bounds the walk (and so the descriptors it holds open). A
// program can nest directories deeper than this; what lies below stays
// owned by the uid that made it, which no later run shares.
const maxChownDepth = 256

// openDirNoFollow opens a directory of the host for the walks below,
// refusing a symbolic link in its last component.
func openDirNoFollow(path string) (int, error) {
	return unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// chownTree gives the directory open at dirfd and everything under it to
// uid:gid, so that a run's unprivileged uid can write its work directory.
//
// A previous run in this directory was free to plant symbolic links, so
// every step is relative to an open directory descriptor: directories are
// entered with O_NOFOLLOW|O_DIRECTORY and everything else is changed with
// fchownat(AT_SYMLINK_NOFOLLOW), which changes a link itself, never what it
// points to. A link to /etc/shadow stays a link owned by the run; the file
// is not touched (the Judge0 CVE-2024-28189 pattern). Hard links to host
// files cannot exist: link(2) across mounts fails, and inside the sandbox
// every host file is on another mount.
func chownTree(dirfd, uid, gid int) error {
	if err := unix.Fchown(dirfd, uid, gid); err != nil {
		return fmt.Errorf("chown work dir: %w", err)
	}
	return chownEntries(dirfd, uid, gid, 0)
}

func chownEntries(dirfd, uid, gid, depth int) error {
	entries, err := readDirAt(dirfd)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() && depth < maxChownDepth {
			fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err == nil {
				err = unix.Fchown(fd, uid, gid)
				if err == nil {
					err = chownEntries(fd, uid, gid, depth+1)
				}
				unix.Close(fd)
				if err != nil {
					return err
				}
				continue
			}
			if !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.ENOTDIR) {
				return fmt.Errorf("chown work dir: open %s: %w", name, err)
			}
			// Replaced by a non-directory since it was listed: change it
			// as one.
		}
		if err := unix.Fchownat(dirfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("chown work dir: %s: %w", name, err)
		}
	}
	return nil
}

// readDirAt lists the directory open at dirfd without moving dirfd's own
// offset (it reads through a fresh descriptor of the same directory).
func readDirAt(dirfd int) ([]fs.DirEntry, error) {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("chown work dir: %w", err)
	}
	f := os.NewFile(uintptr(fd), ".")
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("chown work dir: %w", err)
	}
	return entries, nil
}
