//go:build linux

package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The paths a command sees: extra read-only paths, layers over a seed,
// and the rewriting that keeps the worker's own paths from it.

func TestLinuxExtraPaths(t *testing.T) {
	l := newTestLinux(t, Config{})
	ro := t.TempDir()
	os.WriteFile(filepath.Join(ro, "tool"), []byte("#!/bin/sh\necho tool\n"), 0o755)
	c := &Cmd{
		Args:          sh(fmt.Sprintf("%s/tool && ! touch %s/no 2>/dev/null", ro, ro)),
		ReadOnlyPaths: []string{ro},
		Limits:        limits,
	}
	o := execOK(t, l, c)
	if o.ExitCode != 0 || string(o.Stdout) != "tool\n" {
		t.Fatalf("outcome %+v %q", o, o.Stderr)
	}
	// Without it, it is not there.
	o = execOK(t, l, &Cmd{Args: sh(fmt.Sprintf("ls %s", ro)), Limits: limits})
	if o.ExitCode == 0 {
		t.Errorf("extra path visible to another command: %q", o.Stdout)
	}
}

// newLayer is a Layer over seed with fresh upper and work directories.
func newLayer(t *testing.T, seed string) Layer {
	dir := t.TempDir()
	ly := Layer{Seed: seed, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work")}
	for _, d := range []string{ly.Upper, ly.Work} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return ly
}

// TestLinuxLayers: a command sees the seed and may add to it and change
// it, but what it writes stays in its own layer: the seed and the next
// command (another job) never see it. Issue 11: one job's compile planted
// a file in the shared tool cache that another job's compile read.
func TestLinuxLayers(t *testing.T) {
	for _, binds := range []bool{false, true} {
		t.Run(fmt.Sprintf("binds=%v", binds), func(t *testing.T) {
			l := newTestLinux(t, Config{forceBinds: binds})
			seed := t.TempDir()
			// Writable by anyone: only the layer protects the seed.
			os.MkdirAll(filepath.Join(seed, "00"), 0o777)
			os.WriteFile(filepath.Join(seed, "00", "entry"), []byte("seed\n"), 0o666)
			os.Chmod(filepath.Join(seed, "00"), 0o777)
			os.Chmod(filepath.Join(seed, "00", "entry"), 0o666)
			first := newLayer(t, seed)
			script := fmt.Sprintf("echo planted > %[1]s/planted && mkdir %[1]s/d && echo x > %[1]s/d/f && ls %[1]s", seed)
			if !binds {
				// Over the seed: its entries are there, and may be replaced.
				script += fmt.Sprintf(" && cat %[1]s/00/entry && echo changed > %[1]s/00/entry && rm -f %[1]s/00/entry", seed)
			}
			o := execOK(t, l, &Cmd{Args: sh(script), Layers: []Layer{first}, Limits: limits})
			if o.ExitCode != 0 {
				t.Fatalf("first: %+v %q", o, o.Stderr)
			}
			if !binds && !strings.Contains(string(o.Stdout), "seed") {
				t.Errorf("the seed was not visible: %q", o.Stdout)
			}
			if _, err := os.Stat(filepath.Join(first.Upper, "planted")); err != nil {
				t.Errorf("the command's write is not in its layer: %v", err)
			}
			if b, err := os.ReadFile(filepath.Join(seed, "00", "entry")); err != nil || string(b) != "seed\n" {
				t.Errorf("the seed changed: %q %v", b, err)
			}
			des, _ := os.ReadDir(seed)
			if len(des) != 1 {
				t.Errorf("the seed holds %d entries, want only 00", len(des))
			}
			// The next command, with its own layer, sees none of it.
			o = execOK(t, l, &Cmd{Args: sh(fmt.Sprintf("cat %[1]s/planted; ls %[1]s", seed)), Layers: []Layer{newLayer(t, seed)}, Limits: limits})
			if strings.Contains(string(o.Stdout), "planted") || strings.Contains(string(o.Stdout), "d\n") {
				t.Errorf("the second command saw the first one's files: %q", o.Stdout)
			}
		})
	}
}

// TestLinuxHidesHostPaths: a command learns none of the worker's paths
// from its arguments and environment (its work directory is /box, a layer
// /cache), and a layer's seed, upper and work directories do not appear
// in its mount table (issue 11: a compile showed the worker's tool cache
// path). A bind mount's line shows its source's path inside its own file
// system: for the work directory, on the worker's private tmpfs, that is
// the job's own directory name; in the fallback without the mount API,
// the layer's upper directory too, which is why only the overlay case
// checks the mount table.
func TestLinuxHidesHostPaths(t *testing.T) {
	for _, binds := range []bool{false, true} {
		t.Run(fmt.Sprintf("binds=%v", binds), func(t *testing.T) {
			l := newTestLinux(t, Config{forceBinds: binds})
			seed := t.TempDir()
			ly := newLayer(t, seed)
			dir := t.TempDir()
			script := `echo "$0 $1 $CACHE $HOME"; cat /proc/self/mountinfo; ls -d "$CACHE"`
			o := execOK(t, l, &Cmd{
				Args: []string{"/bin/sh", "-c", script, seed, dir + "/x"},
				Env:  []string{"CACHE=" + seed, "HOME=" + dir, "PATH=/usr/bin:/bin"},
				Dir:  dir, Layers: []Layer{ly}, Limits: limits,
			})
			if o.ExitCode != 0 {
				t.Fatalf("exit %d: %s", o.ExitCode, o.Stderr)
			}
			out := string(o.Stdout)
			if !strings.HasPrefix(out, "/cache /box/x /cache /box\n") {
				t.Errorf("paths not rewritten: %q", strings.SplitN(out, "\n", 2)[0])
			}
			if binds {
				return
			}
			for _, p := range []string{seed, ly.Upper, ly.Work, filepath.Dir(ly.Upper)} {
				if strings.Contains(out, p) {
					t.Errorf("the command saw the host path %s:\n%s", p, out)
				}
			}
		})
	}
}

func TestRewritePaths(t *testing.T) {
	const dir = "/w/job-1/box"
	for _, c := range []struct{ in, want string }{
		{dir, "/box"},
		{dir + "/main", "/box/main"},
		{"PATH=" + dir + "/bin:/usr/bin", "PATH=/box/bin:/usr/bin"},
		{"ls " + dir + " && cat '" + dir + "'", "ls /box && cat '/box'"},
		{dir + "2/main", dir + "2/main"}, // another directory
	} {
		if got := rewritePaths(c.in, dir, "/box"); got != c.want {
			t.Errorf("rewritePaths(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
