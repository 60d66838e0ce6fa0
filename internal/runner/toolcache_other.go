//go:build !linux

package runner

import "os"

func isNotEmpty(error) bool { return false }

// replaceEmptyDir renames dir to target, removing target first when it
// is an empty directory (not at once, as on Linux).
func replaceEmptyDir(dir, target string) error {
	os.Remove(target)
	return os.Rename(dir, target)
}
