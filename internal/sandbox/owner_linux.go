//go:build linux

package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Several workers may share a host and a cgroup parent: two `grappe
// worker`s, or workers in containers or other pid namespaces, where pids
// say nothing (every one of them may be pid 1, and none sees the others).
// So a sandbox's base cgroup is named after an id of its own, kept in its
// state directory, and proven live by a lock: the sandbox holds an
// exclusive flock on a file of that directory for as long as it lives,
// and marks each base cgroup with the lock file's path (an extended
// attribute that only root can write). At start a sandbox removes another
// base cgroup only when it can take that lock itself: its owner is gone.
// Whatever it cannot prove abandoned it leaves: a leaked cgroup costs a
// little kernel memory, removing a live one kills a neighbour's jobs.

const (
	// idFile holds the sandbox's id (hex), lockFile is the file whose lock
	// proves the sandbox alive; both in Config.StateDir.
	idFile   = "sandbox-id"
	lockFile = "sandbox.lock"
	idBytes  = 16
	// ownerXattr, on a base cgroup, is the absolute path of its owner's
	// lock file.
	ownerXattr = "trusted.grappe.owner"
	// lockWait is how long New waits for its own lock, which a starting
	// neighbour may hold for a moment while it checks whether this state
	// directory's cgroups are abandoned.
	lockWait = 3 * time.Second
	// unmarkedAge is how long a base cgroup without a marker (one of a
	// worker from before markers, or one being created this instant) must
	// have been left unchanged before an empty one is removed.
	unmarkedAge = 10 * time.Minute
)

// owner is a sandbox's claim on its base cgroups.
type owner struct {
	prefix   string // of every sandbox's base cgroup
	id       string
	lockPath string
	lock     *os.File // holds the flock; nil once released
	log      *slog.Logger
}

// claimOwner locks dir's lock file and reads (on first use creates) the
// id in it. dir is created 0700 if missing.
func claimOwner(dir, prefix string, log *slog.Logger) (*owner, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("state directory %q is not an absolute path", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	o := &owner{prefix: prefix, lockPath: filepath.Join(dir, lockFile), log: log}
	f, err := os.OpenFile(o.lockPath, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	for deadline := time.Now().Add(lockWait); ; {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %s: %w (give each worker its own data directory)", dir, ErrInUse)
		}
		return nil, fmt.Errorf("lock %s: %w", o.lockPath, err)
	}
	o.lock = f
	if o.id, err = loadID(dir); err != nil {
		o.release()
		return nil, err
	}
	return o, nil
}

// loadID reads the id in dir, or creates it. The file appears complete or
// not at all (written aside, then linked), so that a crash cannot leave a
// sandbox without its id.
func loadID(dir string) (string, error) {
	path := filepath.Join(dir, idFile)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			id := strings.TrimSpace(string(b))
			if !validID(id) {
				return "", fmt.Errorf("%s: not a sandbox id; remove it to make a new one", path)
			}
			return id, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("sandbox id: %w", err)
		}
		tmp, err := os.CreateTemp(dir, idFile+".*")
		if err != nil {
			return "", fmt.Errorf("sandbox id: %w", err)
		}
		id := make([]byte, idBytes)
		rand.Read(id) // never fails (crypto/rand)
		_, err = tmp.WriteString(hex.EncodeToString(id) + "\n")
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			// CreateTemp made it 0600. Link fails if the id appeared
			// meanwhile: then that one is read.
			if err = os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
				err = nil
			}
		}
		os.Remove(tmp.Name())
		if err != nil {
			return "", fmt.Errorf("sandbox id: %w", err)
		}
	}
}

func validID(id string) bool {
	b, err := hex.DecodeString(id)
	return err == nil && len(b) == idBytes
}

// name is the base cgroup's name.
func (o *owner) name() string { return o.prefix + o.id }

// release unlocks: from then on the base cgroups may be removed by anyone.
func (o *owner) release() {
	if o.lock != nil {
		o.lock.Close()
		o.lock = nil
	}
}

// mark records the owner in a base cgroup. A kernel without extended
// attributes on cgroups is no reason not to run: the cgroup then cannot be
// proven abandoned by a neighbour (a leak if this worker dies and never
// starts again), but this worker still finds it by its name.
func (o *owner) mark(dir string) error {
	err := unix.Setxattr(dir, ownerXattr, []byte(o.lockPath), 0)
	if errors.Is(err, unix.EOPNOTSUPP) {
		o.log.Warn("sandbox: cannot mark the cgroup with its owner (no extended attributes)", "cgroup", dir)
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark cgroup %s: %w", dir, err)
	}
	return nil
}

// sweep removes the base cgroups under parent that are provably
// abandoned (see the comment at the top), killing what still runs in
// them, and this sandbox's own from an earlier run (it holds the lock
// now). procsFile names the file that lists a cgroup's processes.
func (o *owner) sweep(parent, procsFile string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, o.prefix) || name == o.prefix+workerLeaf {
			continue
		}
		dir := filepath.Join(parent, name)
		v, unlock := o.verdict(dir, procsFile)
		switch v {
		case abandoned:
			// Holding the owner's lock (verdict took it): the owner
			// cannot start again while its cgroups go.
			removeTree(dir, procsFile)
			unlock()
			o.log.Info("sandbox: removed an abandoned cgroup", "cgroup", dir)
		case unmarkedEmpty:
			// Never killed into, never recursive: the kernel refuses
			// to remove a cgroup that has processes or children.
			if unix.Rmdir(dir) == nil {
				o.log.Info("sandbox: removed an empty unmarked cgroup", "cgroup", dir)
			}
		default:
			o.log.Debug("sandbox: leaving a cgroup that may be in use", "cgroup", dir)
		}
	}
}

// verdict is what sweep may do with a base cgroup.
type verdict int

const (
	keep          verdict = iota // live, or not provably abandoned
	abandoned                    // its owner is gone: kill and remove
	unmarkedEmpty                // no marker, and empty for long: rmdir only
)

// verdict judges the base cgroup dir. For abandoned, unlock releases the
// dead owner's lock, which verdict holds until the removal is done.
func (o *owner) verdict(dir, procsFile string) (v verdict, unlock func()) {
	if filepath.Base(dir) == o.name() {
		// Ours, from an earlier run: the id is ours alone, and we hold
		// its lock.
		return abandoned, func() {}
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Getxattr(dir, ownerXattr, buf)
	if err != nil {
		return unmarkedVerdict(dir, procsFile), nil
	}
	path := string(buf[:n])
	id := strings.TrimPrefix(filepath.Base(dir), o.prefix)
	if path == o.lockPath {
		return keep, nil // our lock, another id: not ours to judge
	}
	if unlock, ok := lockDeadOwner(path, id); ok {
		return abandoned, unlock
	}
	return keep, nil
}

// lockDeadOwner takes the lock of the owner whose lock file is path, with
// id, if it provably is not running: the file is there, beside that id,
// and its lock can be taken now.
func lockDeadOwner(path, id string) (unlock func(), ok bool) {
	if !filepath.IsAbs(path) || !validID(id) {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(path), idFile))
	if err != nil || strings.TrimSpace(string(b)) != id {
		// Not visible from here (another mount namespace, a data
		// directory since removed), or reused by another sandbox.
		return nil, false
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG ||
		unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		unix.Close(fd)
		return nil, false
	}
	return func() { unix.Close(fd) }, true
}

// unmarkedVerdict judges a base cgroup without a marker: one of a worker
// from before markers (named after its pid, which proves nothing across
// pid namespaces), or one a sandbox is creating this instant. It may only
// go when nothing can be lost: no process, no child cgroup (a live old
// worker always keeps run cgroups prepared), and unchanged for
// unmarkedAge.
func unmarkedVerdict(dir, procsFile string) verdict {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil || time.Since(time.Unix(st.Mtim.Unix())) < unmarkedAge {
		return keep
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return keep
	}
	for _, e := range entries {
		if e.IsDir() {
			return keep
		}
	}
	if pids, err := cgPids(filepath.Join(dir, procsFile)); err != nil || len(pids) > 0 {
		return keep
	}
	return unmarkedEmpty
}
