//go:build linux

package sandbox

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Two sandboxes on one host must never run commands as the same uid: what
// the kernel limits or allows per uid is host-wide, not per sandbox. The
// process limit (RLIMIT_NPROC counts every process of the uid) would let
// one worker's fork bomb make the other's jobs fail with EAGAIN, and a
// shared uid could signal, ptrace-check, or fill the quotas of the other's
// programs. So each sandbox takes a range of uids of its own:
//
//   - by default, a range derived from its persistent id (owner_linux.go):
//     the same after a restart, and spread over a space large enough that
//     two workers rarely even try the same one;
//   - and in every case, leased: the sandbox holds a write lock on the
//     range's bytes of one host-wide file, uidLeaseFile, for as long as it
//     lives. A range that overlaps a held lease is refused (an explicit
//     --uid-base) or skipped for the next candidate (the automatic one).
//
// The lease is an open file description lock (F_OFD_SETLK): it is released
// when the sandbox's descriptor closes, including when its process dies,
// and two sandboxes of one process conflict (process-associated locks would
// not). It covers exactly the range, so ranges that merely overlap conflict
// too. It guards only sandboxes that see the same /run: workers in
// containers with a /run of their own are kept apart by their ids' ranges
// only (or by explicit, distinct --uid-base).

const (
	// uidLeaseFile holds the leases, one lock per range, at the range's
	// offsets. Root only: anyone who could open it could lock ranges and
	// keep workers from starting.
	uidLeaseFile = "/run/grappe/uids.lock"
	// autoUIDFirst and autoUIDEnd bound the space of automatic ranges:
	// 0x70000000 to 0x7F000000, about 251 million uids. It is above
	// everything the common allocators hand out (system and regular
	// users, nobody at 65534, systemd's dynamic users, /etc/subuid blocks
	// from 100000 (shadow's default limit 600,100,000), LXD's 1,000,000 +
	// 10⁹, systemd-nspawn's container ranges up to 0x6FFFFFFF), and below
	// 2³¹ with room to spare, where signed 32-bit uids begin to break
	// programs and systemd keeps its "foreign" range (0x7FFE0000).
	autoUIDFirst = 0x7000_0000
	autoUIDEnd   = 0x7F00_0000
	// uidBlock is the granularity of automatic ranges: a range is a whole
	// number of blocks, at a multiple of a block.
	uidBlock = 1000
	// maxUIDProbes bounds the candidates tried after the id's own range is
	// taken (by a neighbour whose id hashed near ours).
	maxUIDProbes = 1000
)

// uidLease is a sandbox's hold on its uids; release ends it.
type uidLease struct {
	f           *os.File
	base, count int
}

// leaseUIDs takes the lease on [base, base+count) in the lease file at
// path, or fails with ErrInUse if any of it is held.
func leaseUIDs(path string, base, count int) (*uidLease, error) {
	f, err := openLeaseFile(path)
	if err != nil {
		return nil, err
	}
	l, err := lockRange(f, base, count)
	if err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// leaseAutoUIDs takes the first free range of count uids among the
// candidates of id (autoUIDBase), trying at most maxUIDProbes.
func leaseAutoUIDs(path, id string, count int) (*uidLease, error) {
	f, err := openLeaseFile(path)
	if err != nil {
		return nil, err
	}
	for probe := 0; probe < maxUIDProbes; probe++ {
		base, ok := autoUIDBase(id, count, probe)
		if !ok {
			break
		}
		if !uidsMapped(base, count) {
			// Mapping is the same for every candidate in practice (a
			// user namespace maps 0–65535 or everything): no point
			// looking further.
			f.Close()
			return nil, fmt.Errorf("uids %d–%d are not mapped in this user namespace (/proc/self/uid_map); give the worker a range it maps (--uid-base)", base, base+count-1)
		}
		l, err := lockRange(f, base, count)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, ErrInUse) {
			f.Close()
			return nil, err
		}
	}
	f.Close()
	return nil, fmt.Errorf("no free range of %d uids after %d tries (%s)", count, maxUIDProbes, path)
}

// autoUIDBase is the first uid of id's candidate range number probe, for
// ranges of count uids: the id's hash picks a slot in the automatic space,
// and further probes take the following slots, wrapping around. ok is false
// when count does not fit in the space.
func autoUIDBase(id string, count, probe int) (base int, ok bool) {
	stride := (count + uidBlock - 1) / uidBlock * uidBlock
	slots := (autoUIDEnd - autoUIDFirst) / stride
	if count <= 0 || slots == 0 {
		return 0, false
	}
	sum := sha256.Sum256([]byte(id))
	h := binary.BigEndian.Uint64(sum[:8])
	slot := (h%uint64(slots) + uint64(probe)) % uint64(slots)
	return autoUIDFirst + int(slot)*stride, true
}

// openLeaseFile opens (creates) the lease file, root's alone.
func openLeaseFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("uid lease: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("uid lease: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("uid lease: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != 0 {
		// Anybody else's file could be locked by them at will.
		f.Close()
		return nil, fmt.Errorf("uid lease: %s is not a regular file of root's", path)
	}
	return f, nil
}

// lockRange write-locks bytes [base, base+count) of f, which the returned
// lease then owns; on failure f stays the caller's.
func lockRange(f *os.File, base, count int) (*uidLease, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: int64(base), Len: int64(count)}
	err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	switch {
	case err == nil:
		return &uidLease{f: f, base: base, count: count}, nil
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES):
		return nil, fmt.Errorf("uids %d–%d: %w", base, base+count-1, ErrInUse)
	default:
		return nil, fmt.Errorf("uid lease: lock %s: %w", f.Name(), err)
	}
}

// release gives the range back.
func (l *uidLease) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// uidsMapped reports whether every uid and gid of [base, base+count)
// exists in this process's user namespace: in a container that maps only
// 0–65535, setuid to anything else fails.
func uidsMapped(base, count int) bool {
	for _, file := range []string{"/proc/self/uid_map", "/proc/self/gid_map"} {
		ext, err := readIDMap(file)
		if err != nil {
			return true // no user namespaces: every id exists
		}
		if !covered(ext, base, base+count) {
			return false
		}
	}
	return true
}

// idExtent is a range [first, end) of ids inside the namespace.
type idExtent struct{ first, end int }

func readIDMap(file string) ([]idExtent, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ext []idExtent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text()) // inside outside count
		if len(fields) != 3 {
			continue
		}
		first, err1 := strconv.ParseInt(fields[0], 10, 64)
		n, err2 := strconv.ParseInt(fields[2], 10, 64)
		if err1 == nil && err2 == nil {
			ext = append(ext, idExtent{int(first), int(first + n)})
		}
	}
	return ext, sc.Err()
}

// covered reports whether the extents cover [first, end).
func covered(ext []idExtent, first, end int) bool {
	sort.Slice(ext, func(i, j int) bool { return ext[i].first < ext[j].first })
	next := first
	for _, e := range ext {
		if e.first > next {
			break
		}
		next = max(next, e.end)
		if next >= end {
			return true
		}
	}
	return next >= end
}
