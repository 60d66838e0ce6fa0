package sandbox

import "log/slog"

// Config configures the Linux sandbox. The zero value of every field but
// Root is a sensible default.
type Config struct {
	// Root is a directory the sandbox owns (created 0700); the sandboxes'
	// roots are built on an empty directory under it.
	Root string
	// StateDir is where the sandbox keeps what must outlive it: its id
	// (which names its cgroups) and the lock that proves it alive to other
	// sandboxes on the host (owner_linux.go). It must be the worker's own,
	// persistent across restarts so that a restarted worker finds and
	// removes what it left; two sandboxes cannot share one. Created 0700;
	// empty means Root.
	StateDir string
	// UIDBase and UIDCount give a range of uids (the same numbers are used
	// as gids) reserved for commands: each running command gets its own,
	// so concurrent commands can neither signal nor read each other. No
	// other user of the machine may have them, and no other sandbox: New
	// leases the range host-wide and fails with ErrInUse if another
	// sandbox holds any of it (uids_linux.go). UIDBase 0, the default,
	// picks a free range derived from the sandbox's id, the same after a
	// restart. UIDCount defaults to 1000.
	UIDBase, UIDCount int
	// ReadOnly are the host paths shown read-only in every sandbox, at the
	// same place; globs are expanded and missing paths skipped. Nil means
	// DefaultReadOnly(). A command adds its own with Cmd.ReadOnlyPaths.
	ReadOnly []string
	// CgroupRoot is where the cgroup file systems are mounted; empty means
	// anywhere (normally /sys/fs/cgroup). The sandbox creates its cgroups
	// under the worker's own cgroup, in every hierarchy it needs.
	CgroupRoot string
	// PoolSize is the number of sandboxes kept ready to run a command;
	// zero means one per CPU, at least 2 and at most 16.
	PoolSize int
	// SingleUse discards each sandbox after one command instead of
	// resetting it for the next (see init_linux.go for what a reset
	// covers). It is stricter and much slower: building a sandbox takes
	// milliseconds of CPU (a Go runtime start, a network namespace).
	SingleUse bool
	// TmpBytes caps each command's /tmp, a tmpfs (also counted in its
	// memory limit); default 256 MiB.
	TmpBytes int64
	// FileSizeBytes is RLIMIT_FSIZE, the largest file a command may
	// write; default 256 MiB.
	FileSizeBytes int64
	Logger        *slog.Logger

	// forceBinds makes the sandbox behave as on kernels without open_tree
	// (tests only).
	forceBinds bool
	// forceClone3 sets the inits up as for cgroup v2 (clone3 allowed to
	// the init, denied by a filter each command stacks), on v1 (tests).
	forceClone3 bool
}
