package runner

import (
	"errors"
	"syscall"
)

func isNotEmpty(err error) bool { return errors.Is(err, syscall.ENOTEMPTY) }

// replaceEmptyDir renames dir over target, an empty directory, at once.
// (os.Rename refuses any existing directory.)
func replaceEmptyDir(dir, target string) error { return syscall.Rename(dir, target) }
