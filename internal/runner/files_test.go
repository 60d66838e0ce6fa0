package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grappe/grappe/internal/lang"
)

func TestCheckName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"main.c", true},
		{"pkg/util.c", true},
		{"a/b/c/d.h", true},
		{".hidden", true},
		{"with space.py", true},
		{"ünïcødé.py", true},
		{"", false},
		{"/etc/passwd", false},
		{"../escape", false},
		{"a/../../escape", false},
		{"a/../b", false},
		{"..", false},
		{".", false},
		{"./main.c", false},
		{"a//b", false},
		{"a/", false},
		{"a/./b", false},
		{"nul\x00byte", false},
		{"new\nline", false},
		{"tab\tname", false},
		{"-o", false},
		{"dir/-rf", false},
		{strings.Repeat("x", 256), false},
		{strings.Repeat("a/", 600) + "x", false},
	} {
		err := checkName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("checkName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadSpec) {
			t.Errorf("checkName(%q) = %v, not ErrBadSpec", tt.name, err)
		}
	}
}

func TestPrepareFiles(t *testing.T) {
	t.Parallel()
	cat, err := lang.Default()
	if err != nil {
		t.Fatal(err)
	}
	py, _ := cat.Lookup("python")
	java, _ := cat.Lookup("java")
	f := func(name, content string) File { return File{Name: name, Content: []byte(content)} }
	for _, tt := range []struct {
		name  string
		entry *lang.Entry
		in    []File
		names []string // nil: error
		main  int
	}{
		{"unnamed python", py, []File{f("", "print(1)")}, []string{"main.py"}, 0},
		{"main.py not first", py, []File{f("util.py", ""), f("main.py", "")}, []string{"util.py", "main.py"}, 1},
		{"first file is main", py, []File{f("a.py", ""), f("b.py", "")}, []string{"a.py", "b.py"}, 0},
		{"java public class", java, []File{f("", "public class Hello {}")}, []string{"Hello.java"}, 0},
		{"java package", java, []File{f("", "package a.b;\npublic class Hello {}")}, []string{"Hello.java"}, 0},
		{"java no public class", java, []File{f("", "class X {}")}, []string{"Main.java"}, 0},
		{"java main by class name", java, []File{f("Util.java", "public class Util {}"), f("App.java", "public class App {}")}, []string{"Util.java", "App.java"}, 0},
		{"no files", py, nil, nil, 0},
		{"duplicate", py, []File{f("a.py", ""), f("a.py", "")}, nil, 0},
		{"two unnamed", py, []File{f("", ""), f("", "")}, nil, 0},
		{"file and dir", py, []File{f("a", ""), f("a/b.py", "")}, nil, 0},
		{"hostile", py, []File{f("../../etc/cron.d/x", "")}, nil, 0},
	} {
		files, main, err := prepareFiles(tt.entry, tt.in)
		if tt.names == nil {
			if !errors.Is(err, ErrBadSpec) {
				t.Errorf("%s: err %v, want ErrBadSpec", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var names []string
		for _, f := range files {
			names = append(names, f.Name)
		}
		if strings.Join(names, ",") != strings.Join(tt.names, ",") || main != tt.main {
			t.Errorf("%s: names %v main %d, want %v %d", tt.name, names, main, tt.names, tt.main)
		}
	}
}

// TestHostileFilesRejected runs jobs whose file names try to leave the
// work directory: Run refuses them and nothing is written outside.
func TestHostileFilesRejected(t *testing.T) {
	t.Parallel()
	r := need(t, "bash")
	for _, name := range []string{
		"../outside.sh",
		"/tmp/grappe-hostile-abs.sh",
		"a/../../outside.sh",
		"x\x00.sh",
		"-x.sh",
	} {
		_, err := r.Run(context.Background(), &Spec{Language: "bash", Files: []File{
			{Name: "main.sh", Content: []byte("echo hi")},
			{Name: name, Content: []byte("pwned")},
		}}, nil)
		if !errors.Is(err, ErrBadSpec) {
			t.Errorf("%q: err %v, want ErrBadSpec", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(r.cfg.WorkRoot, "outside.sh")); !os.IsNotExist(err) {
		t.Errorf("a file was written outside the work dir: %v", err)
	}
	if _, err := os.Stat("/tmp/grappe-hostile-abs.sh"); !os.IsNotExist(err) {
		t.Errorf("an absolute path was written: %v", err)
	}
}

// TestArtifactsIgnoreSymlinks: a compile step that plants a symlink to a
// host file must not get that file copied into the cache.
func TestArtifactsIgnoreSymlinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	srcs := []File{{Name: "main.c"}}
	os.WriteFile(filepath.Join(dir, "main.c"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "main"), []byte("bin"), 0o755)
	os.MkdirAll(filepath.Join(dir, "pkg"), 0o755)
	os.WriteFile(filepath.Join(dir, "pkg", "A.class"), []byte("c"), 0o644)
	os.MkdirAll(filepath.Join(dir, ".cache", "go"), 0o755)
	os.WriteFile(filepath.Join(dir, ".cache", "go", "x"), []byte("junk"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "passwd"))
	os.Symlink("/etc", filepath.Join(dir, "etc"))
	os.Symlink("/bin/sh", filepath.Join(dir, "link.class"))
	for _, tt := range []struct {
		patterns []string
		want     string
	}{
		{nil, "main,pkg/A.class"},
		{[]string{"main"}, "main"},
		{[]string{"passwd"}, ""},
		{[]string{"*.class", "*/*.class"}, "pkg/A.class"},
	} {
		arts, err := listArtifacts(root, tt.patterns, srcs)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range arts {
			names = append(names, a.Name)
		}
		if got := strings.Join(names, ","); got != tt.want {
			t.Errorf("artifacts %q: %s, want %s", tt.patterns, got, tt.want)
		}
	}
	if _, err := copyOut(root, "passwd", filepath.Join(t.TempDir(), "x"), 0o644); err == nil {
		t.Error("copyOut followed a symlink out of the work dir")
	}
}
