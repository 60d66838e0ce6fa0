//go:build unix

package worker

import (
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// statIdentity is a file's device, inode and (on Linux) change time: a
// binary replaced or rewritten with the same size and modification time
// still changes them.
func statIdentity(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(uint64(st.Ino), 10) + ":" + changeTime(st)
}

// checkPrivate refuses a cache directory or entry that another user could
// have written: it must be this user's own, of the right type, and closed
// to group and others.
func checkPrivate(fi fs.FileInfo, dir bool) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%w: no owner information", ErrUnsafeCache)
	}
	switch {
	case dir && !fi.IsDir(), !dir && !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is a %s", ErrUnsafeCache, fi.Name(), fi.Mode().Type())
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%w: %s is owned by uid %d", ErrUnsafeCache, fi.Name(), st.Uid)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%w: %s has mode %s", ErrUnsafeCache, fi.Name(), fi.Mode().Perm())
	}
	return nil
}

// openNoFollow opens a file for reading, refusing a symbolic link.
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}
