//go:build unix

package runner

import "syscall"

// oNoFollow makes an open fail on a symbolic link, so a name the program
// could have planted never redirects the worker.
const oNoFollow = syscall.O_NOFOLLOW
