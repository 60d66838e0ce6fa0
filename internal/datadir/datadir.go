// Package datadir makes grappe's data directories private. A master's
// directory holds the database (every user's sources, password hashes and
// token hashes), the CA key and the tokens; a worker's holds its key and
// the jobs' files. Whatever the umask, and whatever mode an older version
// or an operator left, only the user grappe runs as may enter them.
package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
)

// Modes grappe gives its directories and private files.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// Ensure creates dir (and its missing parents) with DirMode, and tightens
// an existing dir that others may enter, saying so in the log: an operator
// who finds their directory changed should know why.
func Ensure(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("datadir: %w", err)
	}
	// MkdirAll's mode is filtered by the umask and ignored for a
	// directory that exists, so the mode is checked and set explicitly.
	changed, old, err := tighten(dir, DirMode)
	if err != nil {
		return fmt.Errorf("datadir: %w", err)
	}
	if changed && log != nil {
		log.Warn("data directory was open to other users; made private", "dir", dir, "old_mode", old.String(), "new_mode", DirMode.String())
	}
	return nil
}

// PrivateFile gives an existing file FileMode when others could read it;
// a missing file is not an error (a database's -wal appears on demand).
func PrivateFile(path string) error {
	_, _, err := tighten(path, FileMode)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("datadir: %w", err)
	}
	return nil
}

// tighten removes the group and other bits beyond mode: a mode that is
// already stricter (a read-only file) is kept.
func tighten(path string, mode fs.FileMode) (changed bool, old fs.FileMode, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, 0, err
	}
	old = fi.Mode().Perm()
	if old&^mode == 0 {
		return false, old, nil
	}
	if err := os.Chmod(path, old&mode); err != nil {
		return false, old, err
	}
	return true, old, nil
}
