package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/grappe/grappe/internal/lang"
	"github.com/grappe/grappe/internal/sandbox"
)

// The toolchain cache ({cache} in the catalogue, Go's GOCACHE) is never
// writable by two jobs. Each toolchain has a seed, a directory under
// Config.ToolCacheDir that only grappe writes: what its self-test compile
// (the catalogue's own program, no job input) left in the cache. Every
// compile sees the seed at its own path through a layer private to the
// job (sandbox.Layer, an overlay whose upper directory is in the job's
// directory, on the job's file system, removed with it): the standard
// library is already built, and whatever the compile writes or plants
// there goes nowhere else.
//
// A seed is filled once, by the first self-test that finds it empty, and
// appears whole (a copy renamed over the empty directory). It is per
// toolchain version and per compile set-up (the binary, the compile
// command and environment, the self-test), so an upgraded toolchain or a
// changed catalogue entry starts a new one. Seeds no toolchain uses any
// more stay on disk until an operator removes them: a runner sees only
// its own toolchains, and another runner may use them.

// seedDir is the seed of a language's toolchain.
func (r *Runner) seedDir(e *lang.Entry, tc lang.Toolchain) string {
	h := sha256.New()
	for _, s := range slices.Concat([]string{tc.Bin, tc.Version, e.Test.Source}, e.Compile, e.CompileEnv) {
		writeField(h, []byte(s))
	}
	version := strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '-' {
			return c
		}
		return '_'
	}, tc.Version)
	return filepath.Join(r.toolDir, e.Name+"-"+version+"-"+hex.EncodeToString(h.Sum(nil))[:12]+".seed")
}

// toolCache prepares the job's layer over its toolchain's seed.
func (j *job) toolCache() (*sandbox.Layer, error) {
	seed := j.r.seedDir(j.entry, j.tc)
	if err := os.MkdirAll(seed, 0o755); err != nil {
		return nil, fmt.Errorf("runner: tool cache: %w", err)
	}
	dir := filepath.Join(j.dir, "toolcache")
	ly := &sandbox.Layer{Seed: seed, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work")}
	for _, d := range []string{dir, ly.Upper, ly.Work} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("runner: tool cache: %w", err)
		}
	}
	return ly, nil
}

// fillSeed makes what a self-test compile wrote in its layer (upper) the
// seed of its toolchain, unless the seed holds something already. Only
// directories and regular files are copied, owned by the worker and open
// to all: a compile may add, change and remove entries as the toolchain
// wants, and it all happens in the compile's own layer (an overlay copies
// a file up before it is written).
func (r *Runner) fillSeed(e *lang.Entry, tc lang.Toolchain, upper string) error {
	seed := r.seedDir(e, tc)
	if des, err := os.ReadDir(seed); err != nil || len(des) > 0 {
		return err
	}
	tmp, err := os.MkdirTemp(r.toolDir, ".seed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := copyTree(upper, tmp); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	// rename(2) replaces an empty directory, atomically; a seed filled
	// meanwhile by another self-test is not empty, and stays.
	if err := replaceEmptyDir(tmp, seed); err != nil {
		if errors.Is(err, fs.ErrExist) || isNotEmpty(err) {
			return nil
		}
		return err
	}
	r.log.Info("toolchain cache seeded", "language", e.Name, "version", tc.Version)
	return nil
}

// copyTree copies the directories and regular files under src to dst,
// following no symbolic link.
func copyTree(src, dst string) error {
	root, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer root.Close()
	return fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		to := filepath.Join(dst, filepath.FromSlash(p))
		switch {
		case d.IsDir():
			if err := os.Mkdir(to, 0o777); err != nil {
				return err
			}
			return os.Chmod(to, 0o777) // whatever the umask
		case d.Type().IsRegular():
			if _, err := copyOut(root, p, to, 0o666); err != nil {
				return err
			}
			return os.Chmod(to, 0o666)
		}
		return nil // links, devices (overlay whiteouts): never
	})
}

// removeLegacyToolCache removes what older workers kept in the tool cache
// directory: one directory per language that every compile could write
// (issue 11), and seeds half-copied by a crash.
func (r *Runner) removeLegacyToolCache() {
	des, err := os.ReadDir(r.toolDir)
	if err != nil {
		return
	}
	for _, de := range des {
		name := de.Name()
		_, legacy := r.cfg.Catalogue.Lookup(name)
		stale := strings.HasPrefix(name, ".seed-")
		if stale {
			if info, err := de.Info(); err != nil || time.Since(info.ModTime()) < time.Hour {
				stale = false // perhaps another runner's fill in progress
			}
		}
		if legacy && !strings.HasSuffix(name, ".seed") || stale {
			if err := os.RemoveAll(filepath.Join(r.toolDir, name)); err != nil {
				r.log.Warn("cannot remove an old tool cache", "dir", name, "err", err)
			}
		}
	}
}

// SeedReady reports whether a toolchain that keeps a cache ({cache}, Go's
// GOCACHE) has its seed filled; it is always true for the others. A
// self-test verdict kept from an earlier start must not be trusted
// without the seed: the self-test is what fills it, and without it every
// Go job would build the standard library again.
func (r *Runner) SeedReady(tc lang.Toolchain) bool {
	if !tc.Entry.UsesCache() {
		return true
	}
	des, err := os.ReadDir(r.seedDir(tc.Entry, tc))
	return err == nil && len(des) > 0
}
