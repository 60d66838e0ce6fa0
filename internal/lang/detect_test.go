package lang

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// script writes an executable shell script.
func script(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeEntry is a language whose toolchain is the given binary candidates.
func fakeEntry(t *testing.T, bins []string, resolve *Resolve) *Entry {
	t.Helper()
	e := &Entry{
		Name:     "fake",
		Binaries: bins,
		Resolve:  resolve,
		Version:  VersionProbe{Command: []string{"{bin}", "--version"}, Regex: `fake (\d+\.\d+\.\d+)`},
		Dirs:     []string{"{bindir}", "{bindir}/missing"},
		Source:   "main.fake",
		Run:      []string{"{bin}", "{main}"},
		Test:     SelfTest{Source: "x", Stdout: "x"},
	}
	if err := e.check(); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDetectFake(t *testing.T) {
	t.Parallel()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real := script(t, filepath.Join(dir, "toolchain", "bin", "fake-1.2"), `echo "fake 1.2.3 (build 7)" >&2`)
	shim := script(t, filepath.Join(dir, ".fakeenv", "shims", "fake"), `exec `+real+` "$@"`)
	// A symlink named like the binary resolves to the real file.
	link := filepath.Join(dir, "usr", "bin", "fake")
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	// A symlink to a proxy (rustup-like) is refused unless resolved.
	proxy := script(t, filepath.Join(dir, "cargo", "bin", "rustup"), `echo `+filepath.Dir(filepath.Dir(real)))
	proxyLink := filepath.Join(dir, "cargo", "bin", "fake")
	if err := os.Symlink(proxy, proxyLink); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		bins    []string
		resolve *Resolve
		want    string // "" for ErrNotFound
	}{
		{"real binary", []string{real}, nil, real},
		{"symlink resolved", []string{link}, nil, real},
		{"shim refused", []string{shim}, nil, ""},
		{"shim skipped for the next candidate", []string{shim, link}, nil, real},
		{"missing candidates", []string{filepath.Join(dir, "nope"), "grappe-no-such-binary"}, nil, ""},
		{"proxy refused", []string{proxyLink}, nil, ""},
		{"proxy resolved", []string{proxyLink}, &Resolve{Command: []string{"{bin}"}, Path: "{out}/bin/fake-1.2"}, real},
		{"resolve to a relative path", []string{link}, &Resolve{Command: []string{"/bin/echo", "relative"}}, ""},
		{"failing resolve", []string{link}, &Resolve{Command: []string{"/bin/false"}}, ""},
	} {
		tc, err := DetectEntry(ctx, fakeEntry(t, tt.bins, tt.resolve))
		if tt.want == "" {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: got %+v, %v; want ErrNotFound", tt.name, tc, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tc.Bin != tt.want || tc.Version != "1.2.3" {
			t.Errorf("%s: bin %q version %q, want %q 1.2.3", tt.name, tc.Bin, tc.Version, tt.want)
		}
		if len(tc.Dirs) != 1 || tc.Dirs[0] != filepath.Dir(real) {
			t.Errorf("%s: dirs %v", tt.name, tc.Dirs)
		}
	}
}

func TestDetectVersionMismatch(t *testing.T) {
	t.Parallel()
	bin := script(t, filepath.Join(t.TempDir(), "fake"), `echo "something else"`)
	if _, err := DetectEntry(context.Background(), fakeEntry(t, []string{bin}, nil)); !errors.Is(err, ErrNotFound) {
		t.Errorf("err %v, want ErrNotFound", err)
	}
}

// TestDetectMachine checks detection on this machine's real toolchains.
func TestDetectMachine(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	start := time.Now()
	found := Detect(context.Background(), c)
	took := time.Since(start)
	t.Logf("detected %d toolchains in %v", len(found), took)
	if took > 3*time.Second {
		t.Errorf("detection took %v", took)
	}
	for _, tc := range found {
		t.Logf("%-10s %-8s %s %v", tc.Name(), tc.Version, tc.Bin, tc.Dirs)
		if !filepath.IsAbs(tc.Bin) || tc.Version == "" {
			t.Errorf("%s: bin %q version %q", tc.Name(), tc.Bin, tc.Version)
		}
		if strings.Contains(tc.Bin, "/shims/") || filepath.Base(tc.Bin) == "rustup" {
			t.Errorf("%s: %s is a shim", tc.Name(), tc.Bin)
		}
		if real, err := filepath.EvalSymlinks(tc.Bin); err != nil || real != tc.Bin {
			t.Errorf("%s: %s is a link to %s", tc.Name(), tc.Bin, real)
		}
	}
}
