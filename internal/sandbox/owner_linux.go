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
//
// A state directory can be copied with its id (a cloned virtual machine
// image, `cp -a` of a data directory, a container image with one baked
// in): two live sandboxes then share one base cgroup name, and each would
// take the other's for its own leftover and remove it. So a sandbox also
// holds an flock on each of its base cgroup directories: the lock lives on
// the cgroup's inode, which every sandbox on the host sees whatever its
// mount namespace and paths (the lock file may be at the same path in two
// containers and still be two files). Before it reuses or removes the
// base cgroup of its id, a sandbox takes that lock, and checks the marker:
// one pointing to a live lock file other than its own is a copy's too
// (one running a grappe from before these locks). Either way the id is
// someone else's as well, and the sandbox takes a fresh one (see
// renewID).

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

// errIDInUse is returned when the base cgroup named after the sandbox's id
// is held by another live sandbox: a copy of this state directory.
var errIDInUse = errors.New("sandbox id in use by another live sandbox (a copied state directory?)")

// owner is a sandbox's claim on its base cgroups.
type owner struct {
	prefix   string // of every sandbox's base cgroup
	id       string
	dir      string // the state directory
	lockPath string
	lock     *os.File // holds the flock; nil once released
	log      *slog.Logger
	// cgLocks holds an flock on each base cgroup directory, by path: the
	// proof, visible from every mount namespace, that the cgroup is ours.
	// Only the goroutine that creates or repairs the cgroups uses it.
	cgLocks map[string]*os.File
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
	o := &owner{prefix: prefix, dir: dir, lockPath: filepath.Join(dir, lockFile), log: log, cgLocks: map[string]*os.File{}}
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
		tmp, _, err := writeNewID(dir)
		if err == nil {
			// Link fails if the id appeared meanwhile: then that one is
			// read.
			if err = os.Link(tmp, path); errors.Is(err, os.ErrExist) {
				err = nil
			}
			os.Remove(tmp)
		}
		if err != nil {
			return "", fmt.Errorf("sandbox id: %w", err)
		}
	}
}

// writeNewID writes a fresh random id to a new file in dir (0600, made by
// CreateTemp), for the caller to put in place and then remove.
func writeNewID(dir string) (tmpPath, id string, err error) {
	tmp, err := os.CreateTemp(dir, idFile+".*")
	if err != nil {
		return "", "", err
	}
	b := make([]byte, idBytes)
	rand.Read(b) // never fails (crypto/rand)
	id = hex.EncodeToString(b)
	_, err = tmp.WriteString(id + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", "", err
	}
	return tmp.Name(), id, nil
}

// renewID gives the sandbox a fresh id, replacing the state directory's
// atomically, after claimOwnBases found the current one in use by a copy.
//
// A fresh id is safer than refusing to start: the copy's cgroups are left
// alone either way, but refusing would keep a legitimately cloned machine
// from running jobs until an operator understood why, while a fresh id
// makes this sandbox a stranger to the copy in every respect (base
// cgroups, and the automatic uid range derived from the id, which is all
// that keeps uids apart between containers that do not share /run). The
// old id stays the copy's; nothing else names it. It needs the state
// directory's lock, which the owner holds.
func (o *owner) renewID() error {
	// The locks taken so far are on cgroups of the old name: some may be
	// the copy's, which must be able to lock them again.
	o.unlockCgroups()
	tmp, id, err := writeNewID(o.dir)
	if err != nil {
		return fmt.Errorf("new sandbox id: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(o.dir, idFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("new sandbox id: %w", err)
	}
	o.log.Warn("sandbox: another live sandbox uses this state directory's id (was the data directory copied?); "+
		"leaving its cgroups alone and taking a new id", "old", o.id, "new", id, "state", o.dir)
	o.id = id
	return nil
}

func validID(id string) bool {
	b, err := hex.DecodeString(id)
	return err == nil && len(b) == idBytes
}

// name is the base cgroup's name.
func (o *owner) name() string { return o.prefix + o.id }

// release unlocks: from then on the base cgroups may be removed by anyone.
func (o *owner) release() {
	o.unlockCgroups()
	if o.lock != nil {
		o.lock.Close()
		o.lock = nil
	}
}

// lockCgroup takes (or keeps) the flock on the base cgroup directory dir.
// A directory re-created since it was locked (Repair) is locked again: the
// lock belongs to the inode. errIDInUse means another sandbox holds it.
func (o *owner) lockCgroup(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lock cgroup %s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), dir)
	if held := o.cgLocks[dir]; held != nil && sameFile(held, f) {
		f.Close()
		return nil
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("cgroup %s: %w", dir, errIDInUse)
		}
		return fmt.Errorf("lock cgroup %s: %w", dir, err)
	}
	if held := o.cgLocks[dir]; held != nil {
		held.Close()
	}
	o.cgLocks[dir] = f
	return nil
}

// holdsCgroup reports whether dir is the base cgroup directory this owner
// locked (and not one made since by someone else): only such a one may be
// removed.
func (o *owner) holdsCgroup(dir string) bool {
	held := o.cgLocks[dir]
	if held == nil {
		return false
	}
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	return sameFile(held, f)
}

func (o *owner) unlockCgroups() {
	for dir, f := range o.cgLocks {
		f.Close()
		delete(o.cgLocks, dir)
	}
}

func sameFile(a, b *os.File) bool {
	var sa, sb unix.Stat_t
	return unix.Fstat(int(a.Fd()), &sa) == nil && unix.Fstat(int(b.Fd()), &sb) == nil &&
		sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// claimOwnBases is called at start with the base cgroup directories named
// after the sandbox's id (one per hierarchy), before sweep: it makes sure
// that they are not a live copy's (errIDInUse; then nothing was touched
// and no lock is kept), and removes what an earlier run of this sandbox
// left in them, killing it. They are created again by the driver's
// ensure.
func (o *owner) claimOwnBases(dirs []string, procsFile string) error {
	var present []string
	for _, dir := range dirs {
		if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
			continue
		}
		err := o.lockCgroup(dir)
		if err == nil && o.markedByLiveOther(dir) {
			err = fmt.Errorf("cgroup %s marked by another live sandbox: %w", dir, errIDInUse)
		}
		if err != nil {
			// Nothing removed yet, and none of the copy's cgroups left
			// locked: its Repair must be able to lock them.
			o.unlockCgroups()
			return err
		}
		present = append(present, dir)
	}
	for _, dir := range present {
		// Ours from an earlier run (the lock proves no live sandbox
		// uses them), or a stopped copy's: nothing live is lost.
		removeTree(dir, procsFile)
	}
	return nil
}

// markedByLiveOther reports whether dir's marker names a lock file other
// than ours that is held: a live copy of this state directory elsewhere,
// perhaps running a grappe from before cgroup locks. A marker that cannot
// be read, or names a lock file that cannot be opened from here (another
// mount namespace, a data directory moved or removed), proves nothing;
// the cgroup's own lock, taken before, covers a live copy of this version.
func (o *owner) markedByLiveOther(dir string) bool {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Getxattr(dir, ownerXattr, buf)
	if err != nil {
		return false
	}
	path := string(buf[:n])
	if path == o.lockPath || !filepath.IsAbs(path) {
		return false
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return errors.Is(unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK)
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
// them. procsFile names the file that lists a cgroup's processes.
func (o *owner) sweep(parent, procsFile string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		// Our own base cgroup was dealt with by claimOwnBases.
		if !e.IsDir() || !strings.HasPrefix(name, o.prefix) || name == o.prefix+workerLeaf || name == o.name() {
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
	unlockOwner, ok := lockDeadOwner(path, id)
	if !ok {
		return keep, nil
	}
	// The lock file at that path is free, but it may not be the owner's:
	// a copy of a state directory can sit at the same path in another
	// mount namespace. The cgroup's own lock is the owner's wherever it
	// runs.
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		unlockOwner()
		return keep, nil
	}
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		unix.Close(fd)
		unlockOwner()
		return keep, nil
	}
	return abandoned, func() { unix.Close(fd); unlockOwner() }
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
