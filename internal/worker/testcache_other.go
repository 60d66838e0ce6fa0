//go:build !unix

package worker

import (
	"fmt"
	"io/fs"
	"os"
)

func statIdentity(fs.FileInfo) string { return "" }

// checkPrivate cannot tell the owner of a file here: the cache is off.
func checkPrivate(fs.FileInfo, bool) error {
	return fmt.Errorf("%w: owners cannot be checked on this system", ErrUnsafeCache)
}

func openNoFollow(path string) (*os.File, error) { return os.Open(path) }
