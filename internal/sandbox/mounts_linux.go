//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The sandbox's file system: a small tmpfs root holding read-only binds of
// the host's toolchain directories at their usual places, a made-up /etc
// core (passwd, group, hosts), a minimal /dev, a fresh /proc, a private
// size-capped /tmp and the command's work directory at /box. Nothing else
// of the host is reachable: not /root, /home, the worker's data directory
// or other jobs' directories.

// boxDir is where the command's work directory appears, and its cwd.
const boxDir = "/box"

// rootTmpfsOpts sizes the root tmpfs: only mount points, /dev nodes and
// the generated /etc files live there.
const rootTmpfsOpts = "size=16m,nr_inodes=16384,mode=755"

// DefaultReadOnly is what Config.ReadOnly defaults to: the system's
// binaries and libraries, and the parts of /etc that toolchains read.
// Globs are expanded; missing paths are skipped. /etc/passwd, /etc/group
// and /etc/hosts are generated, not taken from the host.
func DefaultReadOnly() []string {
	return []string{
		"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
		"/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
		"/etc/localtime", "/etc/timezone", "/etc/nsswitch.conf", "/etc/protocols", "/etc/services",
		"/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/crypto-policies", "/etc/mime.types",
		"/etc/java-*", "/etc/python3*", "/etc/perl", "/etc/ruby*",
	}
}

// generatedEtc are the /etc files the sandbox makes up.
var generatedEtc = []string{"/etc/passwd", "/etc/group", "/etc/hosts"}

// rootLayout turns the configured read-only paths into root entries:
// globs expanded, missing paths and paths under another entry dropped,
// symbolic links kept as links (/bin → usr/bin on merged-/usr systems).
func rootLayout(paths []string) ([]rootEntry, error) {
	var all []string
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("read-only path %q is not absolute", p)
		}
		matches, err := filepath.Glob(filepath.Clean(p))
		if err != nil {
			return nil, fmt.Errorf("read-only path %q: %w", p, err)
		}
		all = append(all, matches...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	var out []rootEntry
	for _, p := range all {
		if p == "/" || slices.Contains(generatedEtc, p) || slices.ContainsFunc(out, func(e rootEntry) bool {
			return e.Kind == "dir" && within(p, e.Path)
		}) {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		e := rootEntry{Path: p}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			e.Kind = "link"
			if e.Target, err = os.Readlink(p); err != nil {
				return nil, fmt.Errorf("read-only path %q: %w", p, err)
			}
		case fi.IsDir():
			e.Kind = "dir"
		case fi.Mode().IsRegular():
			e.Kind = "file"
		default:
			continue // devices, sockets: never
		}
		out = append(out, e)
	}
	return out, nil
}

// visible reports whether host path p is already shown read-only by the
// root layout, so a command's extra read-only path needs no mount.
func visible(root []rootEntry, p string) bool {
	for _, e := range root {
		if e.Kind == "dir" && within(p, e.Path) {
			return true
		}
	}
	return false
}

// Init side.

// buildRoot assembles the root under stage (a directory of the host) and
// pivots into it. It runs in the init, in its fresh mount namespace.
func buildRoot(s *setupMsg, stage string) error {
	// Nothing mounted here may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount("tmpfs", stage, "tmpfs", unix.MS_NOSUID, rootTmpfsOpts); err != nil {
		return fmt.Errorf("mount root tmpfs: %w", err)
	}
	in := func(p string) string { return filepath.Join(stage, p) }
	for _, e := range s.Root {
		if err := mkdirAll(filepath.Dir(in(e.Path))); err != nil {
			return err
		}
		var err error
		switch e.Kind {
		case "link":
			err = unix.Symlink(e.Target, in(e.Path))
		case "dir":
			if err = unix.Mkdir(in(e.Path), 0o755); err == nil {
				err = bindReadOnly(e.Path, in(e.Path), true)
			}
		case "file":
			if err = touch(in(e.Path)); err == nil {
				err = bindReadOnly(e.Path, in(e.Path), false)
			}
		}
		if err != nil {
			return fmt.Errorf("root: %s: %w", e.Path, err)
		}
	}
	for _, f := range s.Files {
		if err := mkdirAll(filepath.Dir(in(f.Path))); err != nil {
			return err
		}
		if err := os.WriteFile(in(f.Path), f.Data, 0o644); err != nil {
			return fmt.Errorf("root: %w", err)
		}
	}
	if err := makeDev(in("/dev")); err != nil {
		return err
	}
	for _, d := range []string{"/proc", "/tmp", boxDir} {
		if err := unix.Mkdir(in(d), 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("root: %s: %w", d, err)
		}
	}
	// hidepid=2: a command sees only its own uid's processes, not the init.
	if err := unix.Mount("proc", in("/proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "hidepid=2"); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := mountTmp(in("/tmp"), s.TmpBytes, s.TmpInodes); err != nil {
		return err
	}
	for _, b := range s.Binds {
		if err := mkdirAll(in(b.Target)); err != nil {
			return err
		}
		if err := unix.Mount(b.Source, in(b.Target), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", b.Source, err)
		}
		if err := remountBind(in(b.Target), b.Writable); err != nil {
			return err
		}
	}
	// pivot_root(".", ".") stacks the old root on the new one; detaching
	// it leaves no way back to the host's tree.
	if err := unix.Chdir(stage); err != nil {
		return fmt.Errorf("chdir root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// bindReadOnly binds src at dst read-only, nosuid, nodev. Directories are
// bound with their submounts, all made read-only at once with
// mount_setattr (Linux 5.12); without it only the directory itself is
// bound, so no submount stays writable.
func bindReadOnly(src, dst string, dir bool) error {
	if dir {
		if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
		if err := unix.MountSetattr(unix.AT_FDCWD, dst, unix.AT_RECURSIVE, &attr); err == nil {
			return nil
		} else if !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("make read-only: %w", err)
		}
		if err := unix.Unmount(dst, unix.MNT_DETACH); err != nil {
			return err
		}
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	return remountBind(dst, false)
}

// remountBind sets a bind mount's flags: nosuid, nodev, and read-only
// unless writable.
func remountBind(dst string, writable bool) error {
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_NOSUID | unix.MS_NODEV)
	if !writable {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s: %w", dst, err)
	}
	return nil
}

// mountTmp mounts a fresh tmpfs for /tmp. Its pages are charged to the
// memory cgroup of the process that writes them, so a command's /tmp also
// counts against its memory limit.
func mountTmp(dst string, size, inodes int64) error {
	opts := fmt.Sprintf("size=%d,nr_inodes=%d,mode=1777", size, inodes)
	if err := unix.Mount("tmpfs", dst, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount /tmp: %w", err)
	}
	return nil
}

// makeDev makes the minimal /dev: the harmless character devices and the
// usual links to /proc/self/fd. /dev/shm is /tmp, so POSIX shared memory
// is private to the command and size-capped.
func makeDev(dev string) error {
	if err := unix.Mkdir(dev, 0o755); err != nil {
		return fmt.Errorf("root: /dev: %w", err)
	}
	if err := unix.Mkdir(filepath.Join(dev, "mqueue"), 0o755); err != nil {
		return fmt.Errorf("root: /dev/mqueue: %w", err)
	}
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}} {
		if err := unix.Mknod(filepath.Join(dev, d.name), unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("root: /dev/%s: %w", d.name, err)
		}
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2", "shm": "/tmp",
	} {
		if err := unix.Symlink(target, filepath.Join(dev, name)); err != nil {
			return fmt.Errorf("root: /dev/%s: %w", name, err)
		}
	}
	return nil
}

// mkdirAll makes a directory and its parents, root-owned, mode 0755.
func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("root: %w", err)
	}
	return nil
}

func touch(path string) error {
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// attachMount attaches a detached mount (open_tree descriptor) at target
// inside the sandbox for one command.
func attachMount(fd int, m mountSpec) error {
	if !filepath.IsAbs(m.Target) || strings.Contains(m.Target, "\x00") {
		return fmt.Errorf("bad mount target %q", m.Target)
	}
	if err := mkdirAll(m.Target); err != nil {
		return err
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, m.Target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach %s: %w", m.Target, err)
	}
	return remountBind(m.Target, m.Writable)
}

// Worker side.

// openTree makes a detached copy of the mount of a host directory (only
// that directory's subtree, no submounts), to be attached inside a
// sandbox by attachMount. The last component must not be a symbolic link.
func openTree(dirfd int) (*os.File, error) {
	fd, err := unix.OpenTree(dirfd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return nil, fmt.Errorf("open_tree: %w", err)
	}
	return os.NewFile(uintptr(fd), "tree"), nil
}

// overlay makes a detached overlay mount of a layer: the seed read-only
// below, the command's writes in ly.Upper. It is attached by attachMount.
//
// The overlay's options name its directories by descriptor
// (/proc/self/fd/N, resolved when the overlay is created): they are shown
// as given in the command's /proc/self/mountinfo, and the worker's own
// paths are not the job's to see. Opening them O_NOFOLLOW also keeps a
// symbolic link from redirecting the overlay.
func overlay(ly Layer) (*os.File, error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	for _, o := range [][2]string{{"lowerdir", ly.Seed}, {"upperdir", ly.Upper}, {"workdir", ly.Work}} {
		dfd, err := unix.Open(o[1], unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("overlay %s: %w", o[0], err)
		}
		err = unix.FsconfigSetString(fsfd, o[0], "/proc/self/fd/"+strconv.Itoa(dfd))
		unix.Close(dfd)
		if err != nil {
			return nil, fmt.Errorf("overlay %s: %w", o[0], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, fmt.Errorf("create overlay: %w", err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return nil, fmt.Errorf("fsmount overlay: %w", err)
	}
	return os.NewFile(uintptr(fd), "overlay"), nil
}
