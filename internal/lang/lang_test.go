package lang

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func mustDefault(t *testing.T) *Catalogue {
	t.Helper()
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDefault(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	names := c.Names()
	if !slices.IsSorted(names) {
		t.Errorf("Names not sorted: %v", names)
	}
	for _, want := range []string{"python", "c", "cpp", "java", "javascript", "go", "rust", "bash"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s missing from %v", want, names)
		}
	}
	for _, e := range c.Entries() {
		if e.Test.Stdout == "" {
			t.Errorf("%s: self-test expects no output", e.Name)
		}
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	for _, tt := range []struct{ in, want string }{
		{"python", "python"},
		{"Python", "python"},
		{" py ", "python"},
		{"PYTHON3", "python"},
		{"C++", "cpp"},
		{"g++", "cpp"},
		{"node", "javascript"},
		{"JS", "javascript"},
		{"golang", "go"},
		{"sh", "bash"},
		{"cobol", ""},
		{"", ""},
	} {
		e, ok := c.Lookup(tt.in)
		if got := map[bool]string{true: nameOf(e)}[ok]; got != tt.want {
			t.Errorf("Lookup(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func nameOf(e *Entry) string {
	if e == nil {
		return ""
	}
	return e.Name
}

func TestByExtension(t *testing.T) {
	t.Parallel()
	c := mustDefault(t)
	for _, tt := range []struct{ in, want string }{
		{".py", "python"},
		{"py", "python"},
		{"main.PY", "python"},
		{"dir/x.cc", "cpp"},
		{"Main.java", "java"},
		{"a.b.rs", "rust"},
		{"util.h", ""},
		{"Makefile", ""},
		{"", ""},
	} {
		e, ok := c.ByExtension(tt.in)
		if got := map[bool]string{true: nameOf(e)}[ok]; got != tt.want {
			t.Errorf("ByExtension(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

const minimal = `
  - name: %s
    aliases: [%s]
    extensions: [%s]
    binaries: [/bin/sh]
    version: {command: ["{bin}", "-c", "echo 1.0"], regex: '(\d+\.\d+)'}
    source: main.x
    run: ["{bin}", "{main}", "{args}"]
    test: {source: "echo ok", stdout: "ok\n"}
`

func entryYAML(name, alias, ext string) string {
	s := strings.Replace(minimal, "%s", name, 1)
	s = strings.Replace(s, "%s", alias, 1)
	return strings.Replace(s, "%s", ext, 1)
}

func TestLoadOverride(t *testing.T) {
	t.Parallel()
	base := mustDefault(t)
	file := filepath.Join(t.TempDir(), "languages.yaml")
	data := "languages:" +
		entryYAML("python", "snake", ".py") + // replaces python, drops its aliases
		entryYAML("lua", "py", ".lua") + // takes the built-in alias "py"
		"\n  - name: ruby\n    disabled: true\n"
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(base, file)
	if err != nil {
		t.Fatal(err)
	}
	py, _ := c.Lookup("python")
	if py.Source != "main.x" {
		t.Errorf("python not replaced: source %q", py.Source)
	}
	if e, _ := c.Lookup("snake"); nameOf(e) != "python" {
		t.Errorf("snake → %q", nameOf(e))
	}
	if e, _ := c.Lookup("python3"); e != nil {
		t.Errorf("old alias python3 → %q", nameOf(e))
	}
	if e, _ := c.Lookup("py"); nameOf(e) != "lua" {
		t.Errorf("py → %q, want the operator's lua", nameOf(e))
	}
	if _, ok := c.Lookup("ruby"); ok || slices.Contains(c.Names(), "ruby") {
		t.Error("ruby not disabled")
	}
	if e, _ := c.ByExtension(".lua"); nameOf(e) != "lua" {
		t.Errorf(".lua → %q", nameOf(e))
	}
	// Order: python keeps its place, lua is appended.
	entries := c.Entries()
	if entries[0].Name != "python" || entries[len(entries)-1].Name != "lua" {
		t.Errorf("order: %s … %s", entries[0].Name, entries[len(entries)-1].Name)
	}
	// The base is untouched.
	if e, _ := base.Lookup("py"); nameOf(e) != "python" {
		t.Errorf("base changed: py → %q", nameOf(e))
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	ok := entryYAML("x", "xx", ".x")
	for _, tt := range []struct {
		name, yaml string
	}{
		{"not yaml", "languages: [\n"},
		{"unknown field", "languages:" + ok + "    colour: red\n"},
		{"duplicate", "languages:" + ok + ok},
		{"alias conflict", "languages:" + ok + entryYAML("y", "xx", ".y")},
		{"alias is another name", "languages:" + ok + entryYAML("y", "x", ".y")},
		{"extension conflict", "languages:" + ok + entryYAML("y", "yy", ".x")},
		{"bad extension", "languages:" + entryYAML("x", "xx", "x")},
		{"bad name", "languages:" + entryYAML("X Y", "xx", ".x")},
		{"unknown placeholder", "languages:" + strings.Replace(ok, "{main}", "{mian}", 1)},
		{"list inside a word", "languages:" + strings.Replace(ok, `"{args}"`, `"-a{args}"`, 1)},
		{"compile_args in run", "languages:" + strings.Replace(ok, "{args}", "{compile_args}", 1)},
		{"cache in run", "languages:" + strings.Replace(ok, "{main}", "{cache}", 1)},
		{"no run", "languages:" + strings.Replace(ok, "run:", "compile:", 1)},
		{"bad regex", "languages:" + strings.Replace(ok, `(\d+\.\d+)`, `(`, 1)},
		{"regex without group", "languages:" + strings.Replace(ok, `(\d+\.\d+)`, `\d+`, 1)},
		{"class without rule", "languages:" + strings.Replace(ok, "main.x", "{class}.x", 1)},
		{"no self-test", "languages:" + strings.Replace(ok, `source: "echo ok", `, "", 1)},
		{"env not key=value", "languages:" + ok + "    env: [NOEQUALS]\n"},
	} {
		_, err := Parse(nil, []byte(tt.yaml), tt.name)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", tt.name, err)
		}
	}
	if _, err := Parse(nil, []byte("languages:"+ok), "ok"); err != nil {
		t.Errorf("valid entry: %v", err)
	}
	if _, err := Load(nil, filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	v := &Vars{
		Bin: "/usr/bin/gcc", BinDir: "/usr/bin", Work: "/w", Main: "main.c", Class: "a.Main",
		Cache: "/c", Src: []string{"main.c", "lib/x.c"}, Args: []string{"a b"}, CompileArgs: nil,
	}
	got := Expand([]string{"{bin}", "-o", "main", "{src}", "{compile_args}", "-I{work}/inc", "{{literal}}", "{bindir}/java", "{class}", "{args}", "GOCACHE={cache}"}, v)
	want := []string{"/usr/bin/gcc", "-o", "main", "main.c", "lib/x.c", "-I/w/inc", "{literal}", "/usr/bin/java", "a.Main", "a b", "GOCACHE=/c"}
	if !slices.Equal(got, want) {
		t.Errorf("Expand =\n%q\nwant\n%q", got, want)
	}
}

func TestClassName(t *testing.T) {
	t.Parallel()
	java, _ := mustDefault(t).Lookup("java")
	for _, tt := range []struct {
		file, src, class, source string
	}{
		{"", "public class Hello { }", "Hello", "Hello.java"},
		{"", "import x;\n\npublic final class Final {}", "Final", "Final.java"},
		{"", "public abstract strictfp class Odd {}", "Odd", "Odd.java"},
		{"", "package com.example;\npublic class App {}", "com.example.App", "App.java"},
		{"", "class Hidden {}", "Main", "Main.java"},
		{"Named.java", "class Hidden {}", "Named", "Main.java"},
		{"", "// public class InComment\nclass X {}", "Main", "Main.java"},
		{"", "class A {}\npublic class B {}", "B", "B.java"},
	} {
		if got := java.ClassName(tt.file, []byte(tt.src)); got != tt.class {
			t.Errorf("ClassName(%q, %q) = %q, want %q", tt.file, tt.src, got, tt.class)
		}
		if got := java.DefaultSourceName([]byte(tt.src)); got != tt.source {
			t.Errorf("DefaultSourceName(%q) = %q, want %q", tt.src, got, tt.source)
		}
	}
	py, _ := mustDefault(t).Lookup("python")
	if got := py.ClassName("", []byte("public class X {}")); got != "" {
		t.Errorf("python class %q", got)
	}
	if got := py.DefaultSourceName(nil); got != "main.py" {
		t.Errorf("python source %q", got)
	}
}

// TestArtifactsAndFlagsChecked: the new fields are checked when the
// catalogue is loaded.
func TestArtifactsAndFlagsChecked(t *testing.T) {
	base := `languages:
  - name: x
    binaries: [/bin/sh]
    version: {command: ["{bin}"], regex: '(\d)'}
    source: main.x
    run: ["./main"]
    test: {source: "x"}
`
	for name, extra := range map[string]string{
		"artifacts without compile": "    artifacts: [main]\n",
		"flags without compile":     "    compile_flags: {allow: [\"-O2\"]}\n",
		"bad artifact pattern":      "    compile: [\"{bin}\"]\n    artifacts: [\"[\"]\n",
		"absolute artifact":         "    compile: [\"{bin}\"]\n    artifacts: [\"/etc/x\"]\n",
		"empty flag pattern":        "    compile: [\"{bin}\"]\n    compile_flags: {allow: [\"\"]}\n",
	} {
		if _, err := Parse(nil, []byte(base+extra), "test"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c, err := Parse(nil, []byte(base+"    compile: [\"{bin}\"]\n    artifacts: [main, \"*.class\"]\n    compile_flags: {allow: [\"-O*\"], deny: [\"-Ofast\"], paths: [\"-I\"]}\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := c.Lookup("x"); len(e.Artifacts) != 2 || len(e.CompileFlags.Deny) != 1 {
		t.Errorf("entry %+v", e)
	}
}
