package lang

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned by DetectEntry when no candidate binary of a
// language is usable on this machine.
var ErrNotFound = errors.New("lang: toolchain not found")

// probeTimeout bounds each detection command. Detection runs every
// language at once, so the total is about the slowest probe (javac
// -version, a few hundred ms).
const probeTimeout = 5 * time.Second

// Toolchain is a language's toolchain found on this machine.
type Toolchain struct {
	Entry   *Entry
	Bin     string   // absolute path of the real binary, symlinks resolved
	Version string   // e.g. "3.11.2"
	Dirs    []string // directories the toolchain needs, symlinks resolved
}

// Name is the language's catalogue name.
func (t Toolchain) Name() string { return t.Entry.Name }

// Detect finds the toolchains of the catalogue's languages on this machine,
// probing all languages concurrently. Languages that are not found are
// left out; use DetectEntry to learn why. The result is in catalogue order.
func Detect(ctx context.Context, c *Catalogue) []Toolchain {
	entries := c.Entries()
	found := make([]*Toolchain, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		wg.Go(func() {
			if t, err := DetectEntry(ctx, e); err == nil {
				found[i] = &t
			}
		})
	}
	wg.Wait()
	var out []Toolchain
	for _, t := range found {
		if t != nil {
			out = append(out, *t)
		}
	}
	return out
}

// DetectEntry finds one language's toolchain: the first candidate binary
// that exists, is not a version-manager shim, resolves to a real binary
// and answers its version command. Probes run with the worker's own
// environment (a rustup proxy needs HOME to find its toolchains).
func DetectEntry(ctx context.Context, e *Entry) (Toolchain, error) {
	var errs []error
	for _, cand := range candidates(e.Binaries) {
		t, err := detectBinary(ctx, e, cand)
		if err == nil {
			return t, nil
		}
		if ctx.Err() != nil {
			return Toolchain{}, ctx.Err()
		}
		errs = append(errs, err)
	}
	return Toolchain{}, fmt.Errorf("%w: %s: %w", ErrNotFound, e.Name, errors.Join(errs...))
}

// candidates orders absolute paths before names to look up on PATH, so a
// system binary wins over whatever a user's PATH puts first.
func candidates(bins []string) []string {
	var abs, rel []string
	for _, b := range bins {
		if filepath.IsAbs(b) {
			abs = append(abs, b)
		} else {
			rel = append(rel, b)
		}
	}
	return append(abs, rel...)
}

func detectBinary(ctx context.Context, e *Entry, cand string) (Toolchain, error) {
	p, err := exec.LookPath(cand)
	if err != nil {
		return Toolchain{}, err
	}
	if p, err = filepath.Abs(p); err != nil {
		return Toolchain{}, err
	}
	// A shim picks its binary by directory and user config: never run it.
	// A proxy (rustup) is fine to ask where the real binary is, but not to
	// keep.
	if err := rejectShim(p, e.Resolve == nil); err != nil {
		return Toolchain{}, err
	}
	if e.Resolve != nil {
		out, err := probe(ctx, Expand(e.Resolve.Command, &Vars{Bin: p, BinDir: filepath.Dir(p)}))
		if err != nil {
			return Toolchain{}, fmt.Errorf("%s: resolve: %w", p, err)
		}
		line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
		tmpl := e.Resolve.Path
		if tmpl == "" {
			tmpl = "{out}"
		}
		r := filepath.Clean(ExpandString(tmpl, &Vars{Out: strings.TrimSpace(line)}))
		if !filepath.IsAbs(r) {
			return Toolchain{}, fmt.Errorf("%s: resolve gave %q, not an absolute path", p, r)
		}
		if _, err := exec.LookPath(r); err != nil {
			return Toolchain{}, fmt.Errorf("%s: resolve: %w", p, err)
		}
		if err := rejectShim(r, true); err != nil {
			return Toolchain{}, err
		}
		p = r
	}
	p, err = realBinary(p)
	if err != nil {
		return Toolchain{}, err
	}
	v := &Vars{Bin: p, BinDir: filepath.Dir(p)}
	out, err := probe(ctx, Expand(e.Version.Command, v))
	if err != nil {
		return Toolchain{}, fmt.Errorf("%s: version: %w", p, err)
	}
	m := e.versionRE.FindStringSubmatch(out)
	if m == nil || m[1] == "" {
		return Toolchain{}, fmt.Errorf("%s: version: %q does not match %q", p, firstLine(out), e.Version.Regex)
	}
	return Toolchain{Entry: e, Bin: p, Version: m[1], Dirs: dirs(e.Dirs, v)}, nil
}

// proxies are binaries that stand in for a toolchain chosen per user or
// per directory; running one in a sandbox would find no toolchain (or the
// wrong one). Candidates that resolve to them are rejected.
var proxyNames = map[string]bool{"rustup": true, "volta-shim": true, "proto-shim": true}

// rejectShim refuses version-manager shims: pyenv, rbenv, asdf, nodenv and
// jenv all put theirs in a directory named "shims"; rustup and volta use
// symlinks to a proxy binary, refused too when proxies is set.
func rejectShim(p string, proxies bool) error {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	for _, q := range []string{p, target} {
		if filepath.Base(filepath.Dir(q)) == "shims" {
			return fmt.Errorf("%s: version-manager shim", p)
		}
	}
	if proxies && proxyNames[filepath.Base(target)] {
		return fmt.Errorf("%s: proxy for %s", p, target)
	}
	return nil
}

// realBinary resolves symlinks (/usr/bin/gcc → x86_64-linux-gnu-gcc-12,
// /usr/bin/java → /usr/lib/jvm/…/bin/java) unless the target's name does
// not contain the link's: multi-call binaries (busybox) behave according to
// the name they are run as, so those keep the link.
func realBinary(p string) (string, error) {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	if strings.Contains(filepath.Base(target), filepath.Base(p)) {
		return target, nil
	}
	return p, nil
}

// probe runs a detection command and returns its stdout and stderr.
func probe(ctx context.Context, argv []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// A probe that leaves a child holding the pipe must not hang detection.
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, firstLine(out.String()))
	}
	return out.String(), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if len(line) > 200 {
		line = line[:200]
	}
	return line
}

// dirs expands the entry's directories, resolves their symlinks and drops
// the missing ones and duplicates.
func dirs(tmpl []string, v *Vars) []string {
	var out []string
	for _, d := range Expand(tmpl, v) {
		target, err := filepath.EvalSymlinks(filepath.Clean(d))
		if err != nil {
			continue
		}
		if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
			continue
		}
		if !slices.Contains(out, target) {
			out = append(out, target)
		}
	}
	return out
}
