package runner

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/grappe/grappe/internal/jobspec"
	"github.com/grappe/grappe/internal/lang"
)

// prepareFiles names the unnamed files, checks every name and returns the
// files with the index of the main one: the first file named as the
// language's default source (main.py, or for Java the file named after its
// own public class), else the first file.
func prepareFiles(e *lang.Entry, in []File) ([]File, int, error) {
	if len(in) == 0 {
		return nil, 0, fmt.Errorf("%w: no files", ErrBadSpec)
	}
	if len(in) > maxFiles {
		return nil, 0, fmt.Errorf("%w: %d files, at most %d", ErrBadSpec, len(in), maxFiles)
	}
	files := make([]File, len(in))
	seen := make(map[string]bool, len(in))
	main := -1
	for i, f := range in {
		if f.Name == "" {
			f.Name = e.DefaultSourceName(f.Content)
		}
		if err := checkName(f.Name); err != nil {
			return nil, 0, err
		}
		if seen[f.Name] {
			return nil, 0, fmt.Errorf("%w: file %q given twice", ErrBadSpec, f.Name)
		}
		seen[f.Name] = true
		if main < 0 && f.Name == e.DefaultSourceName(f.Content) {
			main = i
		}
		files[i] = f
	}
	// "a" and "a/b" cannot both exist.
	for _, f := range files {
		for d := path.Dir(f.Name); d != "."; d = path.Dir(d) {
			if seen[d] {
				return nil, 0, fmt.Errorf("%w: %q is both a file and a directory", ErrBadSpec, d)
			}
		}
	}
	if main < 0 {
		main = 0
	}
	return files, main, nil
}

// checkName applies the one file-name rule, jobspec.CheckFileName, the
// master's own.
func checkName(name string) error {
	if err := jobspec.CheckFileName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSpec, err)
	}
	return nil
}

// writeFiles writes the files under root, creating sub-directories. root
// refuses any path that would leave the work directory, and O_EXCL refuses
// to write through anything already there.
func writeFiles(root *os.Root, files []File) error {
	for _, f := range files {
		if dir := path.Dir(f.Name); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("%w: %v", ErrBadSpec, err)
			}
		}
		w, err := root.OpenFile(f.Name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o644)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadSpec, err)
		}
		_, err = w.Write(f.Content)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("runner: write %s: %w", f.Name, err)
		}
	}
	return nil
}

// artifact is a file a compile step produced.
type artifact struct {
	Name string      `json:"name"`
	Mode fs.FileMode `json:"mode"`
	Size int64       `json:"size"`
}

// errTooManyArtifacts: a compile left more files than a cache entry may
// hold; it is not cached.
var errTooManyArtifacts = errors.New("runner: too many artifacts to cache")

// listArtifacts lists what a compile produced that the run needs: the
// regular files under root matching one of the language's artifact
// patterns (path.Match), sources excepted. Without patterns (an
// operator's entry that declares none), every regular file that is not a
// source and not under a hidden path is one. Symbolic links never are.
// The walk stops at the depth of the deepest pattern, and at
// errTooManyArtifacts once it has seen more than a few times
// maxEntryFiles entries, so a compile that made 100,000 files costs
// little.
func listArtifacts(root *os.Root, patterns []string, sources []File) ([]artifact, error) {
	src := make(map[string]bool, len(sources))
	for _, f := range sources {
		src[f.Name] = true
	}
	depth := 0 // deepest pattern, in components; 0: no limit
	for _, p := range patterns {
		depth = max(depth, strings.Count(p, "/")+1)
	}
	matches := func(p string) bool {
		if len(patterns) == 0 {
			return true
		}
		return slices.ContainsFunc(patterns, func(pat string) bool {
			ok, _ := path.Match(pat, p)
			return ok
		})
	}
	if len(patterns) > 0 && !slices.ContainsFunc(patterns, hasMeta) {
		return literalArtifacts(root, patterns, src)
	}
	var out []artifact
	seen := 0
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if seen++; seen > 4*maxEntryFiles {
			return errTooManyArtifacts
		}
		if d.IsDir() {
			if len(patterns) == 0 && strings.HasPrefix(d.Name(), ".") || depth > 0 && strings.Count(p, "/")+1 >= depth {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || src[p] || !matches(p) || len(patterns) == 0 && strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		if len(out) == maxEntryFiles {
			return errTooManyArtifacts
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, artifact{Name: p, Mode: info.Mode().Perm(), Size: info.Size()})
		return nil
	})
	slices.SortFunc(out, func(a, b artifact) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

func hasMeta(pattern string) bool { return strings.ContainsAny(pattern, `*?[\\`) }

// literalArtifacts looks up artifacts named in full ("main"): no walk.
func literalArtifacts(root *os.Root, names []string, src map[string]bool) ([]artifact, error) {
	var out []artifact
	for _, name := range names {
		info, err := root.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if info.Mode().IsRegular() && !src[name] {
			out = append(out, artifact{Name: name, Mode: info.Mode().Perm(), Size: info.Size()})
		}
	}
	slices.SortFunc(out, func(a, b artifact) int { return strings.Compare(a.Name, b.Name) })
	return slices.CompactFunc(out, func(a, b artifact) bool { return a.Name == b.Name }), nil
}

// copyOut copies the artifact name from root to dst, refusing anything
// that is not a regular file by the time it is opened.
func copyOut(root *os.Root, name, dst string, mode fs.FileMode) (int64, error) {
	r, err := root.OpenFile(name, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	if fi, err := r.Stat(); err != nil {
		return 0, err
	} else if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s: not a regular file", name)
	}
	w, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(w, r)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// copyIn copies a cached artifact into root. The cache is the worker's
// own, so src is opened normally; the destination is created fresh.
// Artifacts are copied, not hard-linked: a program could otherwise write
// through its link into the cache that other jobs use.
func copyIn(root *os.Root, src, name string, mode fs.FileMode) error {
	r, err := os.Open(src)
	if err != nil {
		return err
	}
	defer r.Close()
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	w, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}
